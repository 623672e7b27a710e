"""The vote store's contract: the `VoteStore` Protocol the service, UI, export and evaluation code talk
to, the rows it returns, and the store's own exceptions. Two stores implement it: `arena.store.battles.ArenaStore`
(SQLite, the embedded default) and `arena.store.postgres.PostgresStore` (several app replicas on one
server). A driver's exception (sqlite3, psycopg) never leaves a store: it becomes `StoreUnavailable` (the
database cannot be reached or written) or one of the refusals below, each a sentence fit to show a person.

    from arena.store.opening import open_store
    store: VoteStore = open_store("votes.db")            # or "postgresql://user@host/medarena"

`SqlSession` is the narrow SQL surface the shared table code (`arena.store.battles`, `arena.store.reads`,
`arena.store.eval_tables`) runs on: one transaction (or one autocommit read) of either database, with ``?``
placeholders.

Run as: python -m pytest tests/test_store.py -q
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol

from arena.votes import VoteInput, VoteOutcome

if TYPE_CHECKING:
    from arena.rubric import SideRubric

Dialect = Literal["sqlite", "postgres"]


class StoreError(Exception):
    """Base class for the store's refusals; the message is a sentence fit to show a person."""


class InvalidRecord(StoreError, ValueError):
    """A battle, evaluation result or cache row has missing, unknown or malformed fields."""


class VoteRejected(StoreError):
    """A vote was refused (forged or unknown battle, battle not finished, double vote, bad input)."""


class BattleStateError(StoreError):
    """A battle cannot be finished or voided: it does not exist, or its status does not allow it."""


class StoreUnavailable(StoreError):
    """The database could not be reached, read or written (a driver error, mapped); nothing was stored."""


class UniqueViolation(StoreError):
    """A row repeats a key that must be unique (raised by `SqlSession.insert`; the tables turn it into a
    refusal that names what was repeated)."""


class SchemaMismatch(StoreError):
    """The database was written by a different schema version than this code's."""


class BattleStatus(StrEnum):
    """Where a battle is: generating its answers, finished (votable) or voided."""

    GENERATING = "generating"
    FINISHED = "finished"
    VOIDED = "voided"


@dataclass(frozen=True)
class BattleRow:
    """One battle as stored: question, contestants, answers, telemetry, status."""

    id: str
    created_at: str
    finished_at: str | None
    question: str
    category: str | None
    reference_answer: str | None
    question_source: str
    contestant_a: str
    contestant_b: str
    answer_a: str | None
    answer_b: str | None
    telemetry_a: dict[str, Any]
    telemetry_b: dict[str, Any]
    generation_settings: dict[str, Any]
    status: BattleStatus
    void_reason: str | None
    identity_leak: bool
    bertscore_a: float | None
    bertscore_b: float | None
    session_id: str | None = None


@dataclass(frozen=True)
class VoteRow:
    """The one vote of a battle as stored."""

    id: int
    battle_id: str
    outcome: VoteOutcome
    flag_a_unsafe: bool
    flag_a_incorrect: bool
    flag_b_unsafe: bool
    flag_b_incorrect: bool
    rationale: str
    voter_role: str
    voter_specialty: str
    session_id: str
    created_at: str
    details: dict[str, Any] = field(default_factory=dict)  # vote columns added by migrations, by name


class SqlSession(Protocol):
    """One transaction (or autocommit read) on either database; SQL uses ``?`` placeholders."""

    dialect: Dialect

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts."""
        ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it changed."""
        ...

    def insert(self, table: str, row: Mapping[str, Any], *, replace_on: str | None = None) -> None:
        """Insert one row (overwrite the row with the same `replace_on` key when given); a repeated unique
        key raises `UniqueViolation`."""
        ...


class VoteStore(Protocol):
    """What the service, UI, export, ratings and evaluation code may ask of a vote store."""

    problem: str | None  # a sentence for a banner when the store cannot take votes, else None
    warnings: list[str]  # messages for the person running the arena
    location: str  # the file path or the URL without its password, for messages

    def now(self) -> datetime: ...

    # battles
    def create_battle(
        self,
        question: str,
        contestant_a: str,
        contestant_b: str,
        generation_settings: dict[str, Any],
        category: str | None = None,
        reference_answer: str | None = None,
        question_source: str = "typed",
        *,
        session_id: str,
        contestant_a_id: str | None = None,
        contestant_b_id: str | None = None,
    ) -> str: ...

    def finish_battle(
        self,
        battle_id: str,
        answer_a: str,
        answer_b: str,
        telemetry_a: dict[str, Any],
        telemetry_b: dict[str, Any],
        identity_leak: bool,
        bertscore_a: float | None = None,
        bertscore_b: float | None = None,
    ) -> None: ...

    def void_battle(self, battle_id: str, reason: str) -> None: ...
    def void_if_generating(self, battle_id: str, reason: str) -> bool: ...
    def void_stale_battles(self, started_before: datetime, reason: str) -> int: ...
    def generating_battles(self, session_id: str) -> list[str]: ...
    # arena processes (arena.store.owners): heartbeats, and start-up voids only orphaned battles
    def beat(self, owner_id: str) -> None: ...
    def retire(self, owner_id: str) -> None: ...
    def void_orphaned_battles(self, owner_id: str, alive_since: datetime, reason: str) -> int: ...
    def get_battle(self, battle_id: str) -> BattleRow | None: ...

    # votes
    def record_vote(self, vote: VoteInput) -> VoteRow: ...
    def get_vote(self, battle_id: str) -> VoteRow | None: ...

    # reads for ratings, board, pairing, export, sync
    def vote_count(self) -> int: ...
    def rated_battles(self, *, include_identity_leaks: bool = False) -> list[dict[str, Any]]: ...
    def contestant_battle_counts(self) -> dict[str, int]: ...
    def pair_battle_counts(self) -> dict[tuple[str, str], int]: ...
    def telemetry_samples(self) -> dict[str, list[dict[str, Any]]]: ...
    def vote_export_rows(self) -> list[dict[str, Any]]: ...

    # evaluation tables
    def add_eval_results(self, rows: list[dict[str, Any]]) -> None: ...
    def eval_results(self, contestant: str | None = None) -> list[dict[str, Any]]: ...
    def cache_get(self, key: str) -> dict[str, Any] | None: ...
    def cache_put(self, key: str, row: Mapping[str, Any]) -> None: ...

    # clinical judgement (arena.store.judgement_tables): rubrics, vote quality, raters, invites, follow-ups
    def record_rubric(self, battle_id: str, session_id: str, sides: Mapping[str, SideRubric]) -> int: ...
    def rubric_rows(self) -> list[dict[str, Any]]: ...
    def record_vote_quality(
        self,
        battle_id: str,
        *,
        rater_id: str,
        rater_source: str,
        client_id: str,
        dwell_s: float,
        min_dwell_s: float,
        calibration_correct: bool | None,
    ) -> None: ...
    def vote_quality(self) -> dict[str, dict[str, Any]]: ...
    def calibration_results(self) -> list[tuple[str, bool]]: ...
    def reserve_candidate(self, rater_id: str, draw: float) -> dict[str, Any] | None: ...
    def agreement_items(self) -> list[dict[str, Any]]: ...
    def create_invite(self, role: str) -> str: ...
    def redeem_invite(self, code: str) -> tuple[str, str]: ...
    def verified_raters(self) -> dict[str, str]: ...
    def add_turn(self, battle_id: str, session_id: str, question: str, max_turns: int) -> int: ...
    def finish_turn(
        self,
        battle_id: str,
        turn: int,
        answers: tuple[str, str],
        telemetry: tuple[dict[str, Any], dict[str, Any]],
        identity_leak: bool,
    ) -> None: ...
    def void_turn(self, battle_id: str, turn: int, reason: str) -> bool: ...
    def battle_turns(self, battle_id: str) -> list[dict[str, Any]]: ...
    def turn_generating(self, battle_id: str) -> bool: ...

    def close(self) -> None:
        """Release connections (a no-op for SQLite, which holds none between operations)."""
        ...
