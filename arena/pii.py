"""Rules that find patient-identifiable details in free text, and redact them.

Presidio (presidio-analyzer) installs here without changing any package, but its recognisers for
names and addresses need a spaCy model, and the official spaCy models are not on PyPI (they download
from GitHub, which this machine cannot reach), so the arena uses these rules instead. They cover the
identifiers a clinician is likely to paste: names with a title or after "patient"/"name is", street
addresses and postcodes, full dates (birth, admission), phone numbers, e-mail addresses, SSNs, NHS
numbers, and record/insurance/policy numbers. Year ranges ("2010-2015"), blood pressures ("120/80"),
doses, ages on their own and IP addresses are not flagged. tests/test_pii.py holds the labelled set
(recall and false-alarm rate are in the README).

    from arena.pii import find_pii, redact
    redact("Mrs Jane Doe, DOB 03/04/1961")   # -> "[NAME], DOB [DATE]"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class PiiKind(StrEnum):
    NAME = "name"
    ADDRESS = "address"
    DATE = "date"
    PHONE = "phone"
    EMAIL = "email"
    SSN = "ssn"
    NHS = "nhs"
    RECORD = "record"


LABELS: dict[PiiKind, str] = {
    PiiKind.NAME: "a person's name",
    PiiKind.ADDRESS: "a street address or postcode",
    PiiKind.DATE: "a full date (birth, admission or visit)",
    PiiKind.PHONE: "a phone number",
    PiiKind.EMAIL: "an e-mail address",
    PiiKind.SSN: "a social security number",
    PiiKind.NHS: "an NHS number",
    PiiKind.RECORD: "a medical record, insurance or patient number",
}
PLACEHOLDERS: dict[PiiKind, str] = {kind: f"[{kind.value.upper()}]" for kind in PiiKind}


@dataclass(frozen=True)
class PiiFinding:
    kind: PiiKind
    start: int
    end: int
    text: str

    @property
    def label(self) -> str:
        """The placeholder this kind of identifier is redacted to, e.g. [NAME]."""
        return LABELS[self.kind]


_MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_NAME_WORD = r"[A-Z][a-z'’-]+"
_FULL_NAME = rf"{_NAME_WORD}(?:\s+[A-Z]\.?(?![a-z]))?(?:\s+{_NAME_WORD}){{0,2}}"
_STREET_TYPES = (
    r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Close|Court|Ct|Boulevard|Blvd|Way|Place|Pl|"
    r"Crescent|Terrace|Gardens|Square|Sq|Highway|Hwy|Parkway|Row|Mews|Grove)\b\.?"
)

# Order matters only for overlapping matches: the first kind listed wins the span.
_RULES: tuple[tuple[PiiKind, re.Pattern[str]], ...] = (
    # starts only where a run of local-part characters starts, and never gives characters back (++):
    # linear time on long runs of word characters (the unanchored form was quadratic)
    (PiiKind.EMAIL, re.compile(r"(?<![\w.+-])[\w.+-]++@[\w-]+\.[\w.-]*\w")),
    (PiiKind.SSN, re.compile(r"\b(?:SSN|social security(?: number)?)?\s*:?\s*\b\d{3}-\d{2}-\d{4}\b", re.I)),
    (
        PiiKind.NHS,
        re.compile(r"\bNHS\s*(?:no\.?|number|#)?\s*:?\s*\d{3}[\s-]?\d{3}[\s-]?\d{4}\b", re.I),
    ),
    (
        PiiKind.RECORD,
        re.compile(
            r"\b(?:MRN|NHI|CHI|hospital|record|patient|insurance|policy|member|medicare|medicaid|"
            r"case|chart|account)\s*(?:no\.?|number|num|#|id|ID)?\s*[:#]?\s*[A-Z]{0,3}\d[\d-]{4,}\b",
            re.I,
        ),
    ),
    (
        PiiKind.DATE,
        re.compile(
            r"\b(?:\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTHS + r",?\s+\d{4}"
            r"|" + _MONTHS + r"\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}"
            r"|\d{1,2}[/.]\d{1,2}[/.](?:\d{4}|\d{2})"
            r"|\d{4}-\d{2}-\d{2})\b",
            re.I,
        ),
    ),
    (
        PiiKind.PHONE,
        re.compile(
            r"(?<![\w.])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,5}\)[\s.-]?)?\d{2,5}(?:[\s.-]\d{2,6}){1,3}(?!\w|\.\d)"
        ),
    ),
    (
        PiiKind.ADDRESS,
        re.compile(
            rf"\b\d{{1,5}}[A-Za-z]?\s+(?:{_NAME_WORD}\s+){{1,3}}{_STREET_TYPES}"
            r"|\b[A-Z]{1,2}\d[A-Z\d]?\s+\d[A-Z]{2}\b"  # UK postcode
            r"|\b(?:AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|"
            r"NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY)\s+\d{5}(?:-\d{4})?\b"
        ),
    ),
    (
        PiiKind.NAME,
        re.compile(
            rf"\b(?:Mrs|Mr|Ms|Miss|Mx|Dr|Prof|Sir|Dame)\.?\s+{_FULL_NAME}"
            rf"|\b(?:[Nn]amed?(?:\s+is)?|[Cc]alled|[Pp]atient|[Pp]t\.?)\s*:?\s+{_NAME_WORD}\s+{_NAME_WORD}"
            r"(?:\s+[A-Z][a-z'’-]+)?"
        ),
    ),
)

# Words that start a capitalised phrase after "patient" without being a name ("patient Has chest pain").
_NOT_NAMES = {
    "has", "had", "is", "was", "with", "without", "presents", "presented", "reports", "complains", "who",
    "the", "and", "taking", "on", "in", "at", "from", "diabetes", "type", "history", "female", "male",
}  # fmt: skip
_PHONE_MIN_DIGITS = 9  # shorter digit groups are doses, lab values or years


def _keep(kind: PiiKind, text: str) -> bool:
    digits = sum(ch.isdigit() for ch in text)
    if kind == PiiKind.PHONE:
        if digits < _PHONE_MIN_DIGITS:
            return False
        # "2010-2015", "1990 2000": year ranges, not numbers to dial
        return not re.fullmatch(r"(?:19|20)\d{2}\s*[-–/ ]\s*(?:19|20)\d{2}", text.strip())
    if kind == PiiKind.NAME:
        words = re.findall(r"[A-Za-z'’-]+", text)
        title = words[0].lower().rstrip(".") in {"mrs", "mr", "ms", "miss", "mx", "dr", "prof", "sir", "dame"}
        rest = words[1:] if title else words[-2:]
        if (title and not rest) or re.search(r"['’]s$", text):
            return False  # a title alone, or an eponym ("Dr Foster's rule")
        return not any(word.lower() in _NOT_NAMES for word in rest)
    return True


def find_pii(text: str) -> list[PiiFinding]:
    """Non-overlapping findings in text order; earlier rules win overlapping spans.

    Linear in the text: each rule's matches arrive in order, and are merged against the (sorted,
    disjoint) spans earlier rules took in one sweep, never compared pairwise."""
    taken: list[PiiFinding] = []
    for kind, pattern in _RULES:
        candidates: list[PiiFinding] = []
        for match in pattern.finditer(text):
            start, end = match.span()
            # trim the leading blanks a rule with an optional keyword may have eaten
            while start < end and text[start].isspace():
                start += 1
            if start < end and _keep(kind, text[start:end]):
                candidates.append(PiiFinding(kind, start, end, text[start:end]))
        taken = _merge_disjoint(taken, candidates)
    return taken


def _merge_disjoint(taken: list[PiiFinding], candidates: list[PiiFinding]) -> list[PiiFinding]:
    """`taken` plus every candidate that overlaps none of it, sorted by start (both inputs are)."""
    merged: list[PiiFinding] = []
    index = 0
    for candidate in candidates:
        while index < len(taken) and taken[index].end <= candidate.start:
            merged.append(taken[index])
            index += 1
        if index < len(taken) and taken[index].start < candidate.end:
            continue  # overlaps a span an earlier rule took
        merged.append(candidate)
    merged.extend(taken[index:])
    return merged


def pii_kinds(text: str) -> set[PiiKind]:
    """The kinds of identifier found in `text`."""
    return {finding.kind for finding in find_pii(text)}


def redact(text: str, findings: list[PiiFinding] | None = None) -> str:
    """Replace every finding with a placeholder such as [NAME] or [DATE]."""
    findings = find_pii(text) if findings is None else findings
    out, last = [], 0
    for finding in sorted(findings, key=lambda f: f.start):
        out.append(text[last : finding.start])
        out.append(PLACEHOLDERS[finding.kind])
        last = finding.end
    out.append(text[last:])
    return "".join(out)


def describe(findings: list[PiiFinding]) -> str:
    """'a person's name, a full date (…)' — each kind once, in order of appearance."""
    labels = list(dict.fromkeys(finding.label for finding in findings))
    return ", ".join(labels)
