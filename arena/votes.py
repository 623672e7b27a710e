"""The one vote type: the outcome enum and the vote input shared by the UI, service, store and ratings.

Pure (no I/O). The store checks every field of a `VoteInput` and refuses a bad one with a sentence, so a
`VoteInput` may carry what a browser sent, unchecked.

    from arena.votes import VoteInput, VoteOutcome
    service.vote(VoteInput(battle_id, VoteOutcome.MODEL_A, session_id=sid, flag_b_incorrect=True))

Run as: python -m pytest tests/test_store.py -q -k vote
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class VoteOutcome(StrEnum):
    """What the clinician chose; a StrEnum, so each member equals its stored text ("model_a", ...)."""

    MODEL_A = "model_a"
    MODEL_B = "model_b"
    TIE = "tie"
    BOTH_BAD = "both_bad"


OUTCOMES: frozenset[str] = frozenset(VoteOutcome)
# The roles a voter may report ("" when not given); the UI offers exactly these, the service refuses others.
VOTER_ROLES: tuple[str, ...] = (
    "",
    "Physician",
    "Nurse",
    "Pharmacist",
    "Medical student",
    "Allied health professional",
    "Researcher",
    "Other",
)


@dataclass(frozen=True)
class VoteInput:
    """One vote as submitted: the battle, the outcome, the session that cast it, flags and free text.

    Fields are typed for what a well-behaved caller sends; the store checks them all anyway (a browser
    can send anything), which is why `outcome` also accepts the plain text of an outcome.
    """

    battle_id: str
    outcome: VoteOutcome | str
    session_id: str | None = None
    flag_a_unsafe: bool = False
    flag_a_incorrect: bool = False
    flag_b_unsafe: bool = False
    flag_b_incorrect: bool = False
    rationale: str = ""
    voter_role: str = ""
    voter_specialty: str = ""

    def flags(self) -> dict[str, Any]:
        """The four flags by their column names."""
        return {
            "flag_a_unsafe": self.flag_a_unsafe,
            "flag_a_incorrect": self.flag_a_incorrect,
            "flag_b_unsafe": self.flag_b_unsafe,
            "flag_b_incorrect": self.flag_b_incorrect,
        }
