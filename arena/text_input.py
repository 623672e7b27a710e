"""Text that arrives from a browser or an API call, checked and normalised in one place.

Every free-text field the service takes (question, rationale, voter role and specialty, follow-up turns)
passes through here first, in this order, so no other work ever sees an unbounded or unnormalised string:

1. `bounded(value, field)`: the type and the length, before anything else looks at the text. Gradio does
   not enforce a Textbox's ``max_length`` on the server, so an API call can send any length; the raw
   length is checked, so the refusal costs O(1) whatever was sent.
2. `normalise(text, single_line=...)`: NFC, then control characters, zero-width/format characters and
   known blank fillers removed (so ``cardio\u200blogy`` and ``cardiology`` are one specialty), Unicode
   line separators turned into newlines, and for one-line fields every run of whitespace made one space.
3. `has_visible_text(text)`: whether anything would show on screen. Visible means a letter, number,
   punctuation or symbol (Unicode categories L*, N*, P*, S*) that is not a known blank filler (Hangul
   fillers, Braille blank, ...). Separators, controls, format characters, unassigned and private-use
   code points and combining marks on their own show nothing.

All three are linear in the length of their input (no regular expressions).

    from arena.text_input import bounded, normalise, FieldSpec
    text = normalise(bounded(raw, RATIONALE), single_line=True)

Run as: python -m pytest tests/test_text_input.py -q
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from typing import Any

from arena.votes import VOTER_ROLES, VoteInput

MAX_QUESTION_CHARS = 4000
MAX_FOLLOW_UP_CHARS = 2000
MAX_RATIONALE_CHARS = 500
MAX_VOTER_FIELD_CHARS = 80
MAX_ID_CHARS = 64  # battle, bank question and session ids

# Code points that are letters or symbols by category but render as blank space (used to fake
# "non-empty" text): Hangul fillers, the halfwidth Hangul filler, the Braille blank, and the
# Mongolian vowel separator (Cf since Unicode 6.3, listed for older tables).
BLANK_FILLERS: frozenset[str] = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")
VISIBLE_CATEGORY_GROUPS = frozenset("LNPS")  # letters, numbers, punctuation, symbols
# Controls kept in multi-line text; everything else in category Cc is removed.
KEPT_CONTROLS = frozenset("\n\t")
LINE_SEPARATORS = frozenset("\r\u2028\u2029\x85\x0b\x0c")


class InputRefused(ValueError):
    """A text field that cannot be taken; the message is one sentence for the person who typed it."""


@dataclass(frozen=True)
class FieldSpec:
    """A free-text field: its name in messages, its length limit and whether it is one line."""

    label: str
    max_chars: int
    single_line: bool


QUESTION = FieldSpec("question", MAX_QUESTION_CHARS, single_line=False)
FOLLOW_UP = FieldSpec("follow-up question", MAX_FOLLOW_UP_CHARS, single_line=False)
RATIONALE = FieldSpec("rationale", MAX_RATIONALE_CHARS, single_line=True)
VOTER_ROLE = FieldSpec("role", MAX_VOTER_FIELD_CHARS, single_line=True)
VOTER_SPECIALTY = FieldSpec("specialty", MAX_VOTER_FIELD_CHARS, single_line=True)


def bounded(value: Any, spec: FieldSpec) -> str:
    """`value` if it is text within the field's limit (None reads as ""), else InputRefused.

    Checks only the type and the raw length, so it costs the same for 10 characters and 10 MB."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputRefused(f"The {spec.label} must be text.")
    if len(value) > spec.max_chars:
        raise InputRefused(
            f"The {spec.label} is {len(value):,} characters long; please keep it to {spec.max_chars:,}."
        )
    return value


def bounded_id(value: Any, what: str) -> str:
    """An id sent by the browser: text of at most MAX_ID_CHARS characters ("" for None)."""
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_ID_CHARS:
        raise InputRefused(f"The {what} is malformed; please reload the page.")
    return value


def _is_invisible_format(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category == "Cf" or category in ("Cs", "Cn", "Co") or ch in BLANK_FILLERS


def normalise(text: str, *, single_line: bool) -> str:
    """NFC text without controls, zero-width/format characters or blank fillers, stripped at both ends.

    Newlines and tabs survive in multi-line text (tabs become spaces); in one-line text every run of
    whitespace becomes one space. A lone surrogate (a broken paste) is refused with a sentence."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputRefused(
            "The text contains a broken character (an unpaired surrogate) and cannot be stored; "
            "please retype it."
        ) from None
    kept: list[str] = []
    for ch in unicodedata.normalize("NFC", text).replace("\r\n", "\n"):
        if ch in LINE_SEPARATORS:
            ch = "\n"
        if ch == "\t":
            ch = " "
        category = unicodedata.category(ch)
        if category == "Cc" and ch not in KEPT_CONTROLS:
            continue
        if _is_invisible_format(ch) and category != "Co":
            continue
        kept.append(ch)
    cleaned = "".join(kept)
    if single_line:
        return " ".join(cleaned.split())
    lines = [" ".join(line.split()) for line in cleaned.split("\n")]
    return "\n".join(lines).strip()


def is_visible(ch: str) -> bool:
    """Whether one code point shows something on its own (see the module docstring)."""
    return unicodedata.category(ch)[0] in VISIBLE_CATEGORY_GROUPS and ch not in BLANK_FILLERS


def has_visible_text(text: str) -> bool:
    """Whether any code point of `text` is visible."""
    return any(is_visible(ch) for ch in text)


def clean_field(value: Any, spec: FieldSpec) -> str:
    """`bounded`, then `normalise`: what the service stores for a free-text field."""
    return normalise(bounded(value, spec), single_line=spec.single_line)


ROLE_LABELS: tuple[str, ...] = ("(self-reported)", "(verified)")


def checked_vote_text(vote: VoteInput) -> VoteInput:
    """The vote with its ids length-checked and its free text bounded and normalised, all before any
    scanner runs; a role outside `VOTER_ROLES` is refused. Raises InputRefused with a sentence."""
    bounded_id(vote.battle_id, "battle id")
    bounded_id(vote.session_id, "session id")
    fields = {
        "rationale": bounded(vote.rationale, RATIONALE),
        "voter_role": bounded(vote.voter_role, VOTER_ROLE),
        "voter_specialty": bounded(vote.voter_specialty, VOTER_SPECIALTY),
    }
    specs = {"rationale": RATIONALE, "voter_role": VOTER_ROLE, "voter_specialty": VOTER_SPECIALTY}
    cleaned = {name: normalise(value, single_line=specs[name].single_line) for name, value in fields.items()}
    # a listed role, as typed or as the UI labels it: "(self-reported)", or "(verified)" by an invite code
    labelled = {f"{role} {label}" for role in VOTER_ROLES if role for label in ROLE_LABELS}
    if cleaned["voter_role"] not in VOTER_ROLES and cleaned["voter_role"] not in labelled:
        choices = ", ".join(role for role in VOTER_ROLES if role)
        raise InputRefused(f"{cleaned['voter_role'][:40]!r} is not a role we list; choose one of {choices}.")
    return replace(vote, **cleaned)
