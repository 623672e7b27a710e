"""Pure checks that keep battles blind and questions safe to send.

- `validate_question`: over-long (checked first, before any other work), badly encoded (lone
  surrogate) and invisible questions (nothing visible by `arena.text_input.has_visible_text`) are
  refused with a message; the rest come back normalised (NFC, no controls or zero-width characters).
- `pii_warnings`: what in a question looks patient-identifiable (rules in arena/pii.py).
- `leaks_identity`: an answer that names its model, family or developer ("I am Llama", "developed by
  Meta") makes a battle non-blind (rules in arena/leaks.py); Chatbot Arena keeps such battles but
  leaves them out of the ratings.

    from arena.integrity import validate_question; validate_question("What is sepsis?")
"""

from __future__ import annotations

from arena.leaks import find_identity_leaks
from arena.pii import find_pii
from arena.text_input import MAX_QUESTION_CHARS as MAX_QUESTION_CHARS  # re-exported
from arena.text_input import QUESTION, FieldSpec, InputRefused, bounded, has_visible_text, normalise


class QuestionRejected(ValueError):
    """A question that cannot be sent; the message says why."""


def validate_question(question: object, spec: FieldSpec = QUESTION) -> str:
    """The question as it will be stored (length-checked first, then normalised by
    `arena.text_input`), or QuestionRejected with a sentence saying why."""
    try:
        text = normalise(bounded(question, spec), single_line=spec.single_line)
    except InputRefused as refused:
        raise QuestionRejected(str(refused)) from None
    if not has_visible_text(text):
        raise QuestionRejected(f"Please type a medical {spec.label} first.")
    return text


def pii_warnings(question: str) -> list[str]:
    """What the question seems to contain that could identify a patient, each kind once (empty: nothing)."""
    return list(dict.fromkeys(finding.label for finding in find_pii(question)))


def leaks_identity(answer: str) -> bool:
    """True when an answer names its model, family or developer, so the vote is no longer blind
    (rules and their measured recall in arena/leaks.py)."""
    return find_identity_leaks(answer) != []
