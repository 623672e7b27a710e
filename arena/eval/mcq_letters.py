"""Reading which option a multiple-choice answer chose: pure, rule-based, one letter or None.

`finetune.scores.mcq_metrics` scores the letters this returns.

    from arena.eval.mcq_letters import extract_option_letter
    extract_option_letter("The answer is (b).", {"A": "Amoxicillin", "B": "Metformin"})  # -> "B"

Run as: python -m pytest tests/test_metrics.py -q -k extract_option_letter
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from finetune.scores import MetricInputError

# A letter after a cue: "(b)" anywhere, or a plain letter that ends there (space, punctuation or end).
_LETTER = (
    r"(?:\(\s*(?P<bracketed>[A-Za-z])\s*\)|\[\s*(?P<squared>[A-Za-z])\s*\]"
    r"|(?P<plain>[A-Za-z])(?![A-Za-z0-9'’-]))"
)
# Phrases after which a letter is the model's claim: "answer is", "correct option:", "I'd choose",
# "it's". Singular "option"/"answer" only, so "Options A and C are wrong" claims nothing.
_ANSWER_CUE = re.compile(
    r"\b(?:"
    r"(?:answer|option|choice)(?:\s+(?:is|would\s+be|should\s+be|will\s+be|must\s+be|=))?"
    r"|(?:choose|choosing|select|selecting|pick|picking|go\s+with|going\s+with)"
    r"|it(?:'s|\s+is|\s+would\s+be|\s+must\s+be|\s+should\s+be)"
    r")\s*[:=\-–—]?\s*(?:(?:option|choice|letter)\s*)?" + _LETTER,
    re.IGNORECASE,
)
# "C is correct", "(D) is the right answer".
_LETTER_IS_CORRECT = re.compile(
    r"(?<![A-Za-z0-9'’])(?:\(\s*(?P<bracketed>[A-Za-z])\s*\)|(?P<plain>[A-Z]))"
    r"\s+(?i:is\s+(?:the\s+)?(?:correct|right|best|most\s+likely))\b"
)
# "(C) ...", "C. ...", "c) ...", "C: ...", "C - ..." at the very start of the response.
_LEADING_LETTER = re.compile(
    r"^(?:\(\s*(?P<bracketed>[A-Za-z])\s*\)|(?P<plain>[A-Za-z])\s*[.):]|(?P<dashed>[A-Za-z])\s+[-–—])(?=\s|$)"
)
_LEADING_WORD = re.compile(r"^(?P<letter>[A-Za-z])\s+(?P<rest>.+)$")
_BARE_LETTER = re.compile(r"^[\s\"'(\[]*(?P<letter>[A-Za-z])[\s\"')\].:!]*$")
# A claim the model itself negates: "Option A is incorrect because...".
_NEGATED_AFTER = re.compile(
    r"^\s+(?:is|are)\s+(?:not|incorrect|wrong|unlikely|less\s+likely)\b", re.IGNORECASE
)
# The English words "a" and "I" look like option letters; lower-case ones only count when punctuated.
_WORD_LIKE_LETTERS = frozenset({"a", "i"})


def extract_option_letter(text: str, options: Mapping[str, str]) -> str | None:
    """Read which option a model chose, returning its key in `options`, or None when unreadable.

    Accepted, in this order: the whole response (or its first line) being a letter ("C", "(c)", "C.");
    letters after answer phrases ("Answer: C", "the correct option is (b)", "I think it's C"); "C is
    correct"; a leading "C." / "(C)" / "C -" or a leading letter followed by that option's text. If these
    claim two different letters the answer is ambiguous (None). With no letter claimed, the option whose
    text alone appears in the response wins (case-insensitive, whitespace-normalised), longer texts first
    so "type 1 diabetes with ketoacidosis" does not also count as "type 1 diabetes". Negations such as
    "not metformin" are not understood by that last fallback.
    """
    key_of = _option_keys(options)
    cleaned = _clean_response(text)
    if not cleaned:
        return None
    whole = _BARE_LETTER.match(cleaned)
    if whole:
        return key_of.get(whole.group("letter").upper())

    claims: set[str] = set()
    first_line = _BARE_LETTER.match(_clean_markdown(text).strip().splitlines()[0])
    if first_line:
        claims.add(first_line.group("letter").upper())
    for pattern in (_ANSWER_CUE, _LETTER_IS_CORRECT):
        for match in pattern.finditer(cleaned):
            letter = _claimed_letter(match, cleaned)
            if letter is not None:
                claims.add(letter)
    claims |= _leading_claims(cleaned, options, key_of)

    valid_claims = {letter for letter in claims if letter in key_of}
    if len(valid_claims) == 1:
        return key_of[valid_claims.pop()]
    if valid_claims:
        return None
    return _option_by_text(cleaned, options)


def _option_keys(options: Mapping[str, str]) -> dict[str, str]:
    key_of: dict[str, str] = {}
    for key in options:
        letter = key.strip().upper()
        if len(letter) != 1 or not letter.isalpha() or letter in key_of:
            raise MetricInputError(f"Option keys must be distinct single letters, got {list(options)!r}.")
        key_of[letter] = key
    return key_of


def _clean_markdown(text: str) -> str:
    text = text.replace("’", "'").replace("‘", "'")
    return re.sub(r"\*\*|__|`|^#+\s*", "", text, flags=re.MULTILINE)


def _clean_response(text: str) -> str:
    return " ".join(_clean_markdown(text).split())


def _claimed_letter(match: re.Match[str], cleaned: str) -> str | None:
    groups = match.groupdict()
    letter = groups.get("bracketed") or groups.get("squared")
    if letter is None:
        letter = groups["plain"]
        after = cleaned[match.end() :]
        # "the answer is a bacterial infection": a lower-case word-like letter needs punctuation or end.
        if letter in _WORD_LIKE_LETTERS and after and after[0] not in ".,:;)!?":
            return None
    if _NEGATED_AFTER.match(cleaned[match.end() :]):
        return None
    return letter.upper()


def _leading_claims(cleaned: str, options: Mapping[str, str], key_of: Mapping[str, str]) -> set[str]:
    leading = _LEADING_LETTER.match(cleaned)
    if leading:
        letter = leading.group("bracketed") or leading.group("plain") or leading.group("dashed")
        return {letter.upper()}
    # "B Metformin ..." counts; "A patient ..." does not, because "patient" is not option A's text.
    word = _LEADING_WORD.match(cleaned)
    if word and word.group("letter").upper() in key_of:
        option_text = _normalise_option_text(options[key_of[word.group("letter").upper()]])
        rest = word.group("rest").lower()
        if option_text and re.match(re.escape(option_text) + r"(?![a-z0-9])", rest):
            return {word.group("letter").upper()}
    return set()


def _normalise_option_text(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".")


def _option_by_text(cleaned: str, options: Mapping[str, str]) -> str | None:
    remaining = cleaned.lower()
    matched: list[str] = []
    by_length = sorted(options.items(), key=lambda item: len(_normalise_option_text(item[1])), reverse=True)
    for key, option_text in by_length:
        needle = _normalise_option_text(option_text)
        if not needle:
            continue
        pattern = re.compile(r"(?<![a-z0-9])" + re.escape(needle) + r"(?![a-z0-9])")
        if pattern.search(remaining):
            matched.append(key)
            # Blank the match out so a shorter option contained in it is not counted again.
            remaining = pattern.sub(lambda found: " " * len(found.group()), remaining)
    return matched[0] if len(matched) == 1 else None
