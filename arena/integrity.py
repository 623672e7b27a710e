"""Pure checks that keep battles blind and questions safe to send.

- `validate_question`: empty, whitespace-only and over-long questions are refused with a message.
- `pii_warnings`: questions that look like they carry patient-identifiable information
  (phone numbers, e-mail addresses, record numbers, dates of birth) are flagged before sending.
- `leaks_identity`: an answer that names its model or maker ("I am Llama", "as Gemma") makes a
  battle non-blind; Chatbot Arena keeps such battles but leaves them out of the ratings.
"""

from __future__ import annotations

import re

MAX_QUESTION_CHARS = 4000


class QuestionRejected(ValueError):
    """A question that cannot be sent; the message says why."""


def validate_question(question: str | None) -> str:
    text = (question or "").strip()
    if not text:
        raise QuestionRejected("Please type a medical question first.")
    if len(text) > MAX_QUESTION_CHARS:
        raise QuestionRejected(
            f"The question is {len(text):,} characters long; please keep it under {MAX_QUESTION_CHARS:,}."
        )
    return text


_PII_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an e-mail address", re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")),
    ("a phone number", re.compile(r"(?<!\w)(?:\+?\d[\d\s().-]{8,}\d)(?!\w)")),
    (
        "a medical record or patient number",
        re.compile(
            r"\b(?:MRN|NHS|record|patient|hospital)\s*(?:no\.?|number|#|id)?\s*[:#]?\s*\d{5,}\b", re.I
        ),
    ),
    (
        "a date of birth",
        re.compile(
            r"\b(?:DOB|D\.O\.B\.?|date of birth|born(?: on)?)\s*[:\-]?\s*"
            r"(?:\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}|\d{1,2}\s+\w+\s+\d{4}|\w+\s+\d{1,2},?\s+\d{4})",
            re.I,
        ),
    ),
)


def pii_warnings(question: str) -> list[str]:
    """What the question seems to contain that could identify a patient (empty when nothing)."""
    return [label for label, pattern in _PII_PATTERNS if pattern.search(question)]


# Model families and makers; an answer naming one of these about itself is not blind.
IDENTITY_NAMES = (
    "llama",
    "meta ai",
    "gemma",
    "medgemma",
    "google",
    "deepmind",
    "qwen",
    "alibaba",
    "phi",
    "microsoft",
    "mistral",
    "deepseek",
    "smollm",
    "hugging ?face",
    "chatgpt",
    "openai",
    "gpt-?[34]",
    "claude",
    "anthropic",
)
_SELF_REFERENCE = re.compile(
    r"\b(?:i am|i'm|i was (?:created|trained|developed|made|built) by|as|my name is|called|"
    r"(?:created|trained|developed|made|built) by)\s+(?:an?\s+|the\s+)?(?:ai\s+(?:model|assistant)\s+)?"
    r"(?:named\s+|called\s+)?(" + "|".join(IDENTITY_NAMES) + r")\b",
    re.I,
)


def leaks_identity(answer: str) -> bool:
    return _SELF_REFERENCE.search(answer) is not None
