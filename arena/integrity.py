"""Pure checks that keep battles blind and questions safe to send.

- `validate_question`: empty, whitespace-only, invisible-only (zero-width characters), over-long and
  badly encoded (lone surrogate) questions are refused with a message.
- `pii_warnings`: what in a question looks patient-identifiable (rules in arena/pii.py).
- `leaks_identity`: an answer that names its model, family or developer ("I am Llama", "developed by
  Meta") makes a battle non-blind (rules in arena/leaks.py); Chatbot Arena keeps such battles but
  leaves them out of the ratings.

    from arena.integrity import validate_question; validate_question("What is sepsis?")
"""

from __future__ import annotations

import unicodedata

from arena.leaks import find_identity_leaks
from arena.pii import find_pii

MAX_QUESTION_CHARS = 4000


class QuestionRejected(ValueError):
    """A question that cannot be sent; the message says why."""


def _visible(text: str) -> str:
    """The text without format characters (zero-width spaces/joiners, BOM, direction marks)."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def check_encodable(text: str, what: str = "The question") -> None:
    """Refuse text that cannot be stored as UTF-8 (a lone surrogate from a broken paste)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise QuestionRejected(
            f"{what} contains a broken character (an unpaired surrogate) and cannot be stored; "
            "please retype it."
        ) from None


def validate_question(question: str | None) -> str:
    """The question as it will be stored, or QuestionRejected with a sentence saying why."""
    if question is not None and not isinstance(question, str):
        raise QuestionRejected("The question must be text.")
    text = (question or "").strip()
    check_encodable(text)
    if not _visible(text).strip():
        raise QuestionRejected("Please type a medical question first.")
    if len(text) > MAX_QUESTION_CHARS:
        raise QuestionRejected(
            f"The question is {len(text):,} characters long; please keep it under {MAX_QUESTION_CHARS:,}."
        )
    return text


def pii_warnings(question: str) -> list[str]:
    """What the question seems to contain that could identify a patient, each kind once (empty: nothing)."""
    return list(dict.fromkeys(finding.label for finding in find_pii(question)))


def leaks_identity(answer: str) -> bool:
    """True when an answer names its model, family or developer, so the vote is no longer blind
    (rules and their measured recall in arena/leaks.py)."""
    return find_identity_leaks(answer) != []
