"""Measure the patient-data rules (arena/pii.py) on a labelled set: recall, false alarms and how often
"Redact and send" removes every fragment of every identifier.

A labelled set is JSON: ``{"provenance": "...", "cases": [{"text": ..., "identifiers": [{"kind": ...,
"text": ...}]}]}``; a case without identifiers is a (hard) negative. The held-out sets are
tests/fixtures/phi_holdout.json (the default; written before the rules of issue #21) and
tests/fixtures/phi_holdout2.json (written before the phi branch's rules); both were measured out of
sample once, and later rules were written with their misses in view (tests/test_pii_holdout.py).

- recall: identifiers overlapped by at least one finding, over all identifiers (any finding kind counts:
  the clinician is warned either way);
- false alarms: negatives with any finding, over all negatives;
- complete redaction: positive cases where, after `redact`, no word of any identifier is left (a word
  that also occurs outside the identifiers is only counted if it survives more often than it occurs there;
  the placeholders' own words, "90" in "[AGE 90+]", are not leftovers).

Run as: python -m arena.pii_eval [tests/fixtures/phi_holdout2.json]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from arena.pii import PLACEHOLDERS, find_pii, redact

HOLDOUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "phi_holdout.json"
_WORD = re.compile(r"[^\W_]+")
# a placeholder's own words ("90" in "[AGE 90+]") are no leftover of the identifier it replaced
_PLACEHOLDER = re.compile("|".join(re.escape(placeholder) for placeholder in PLACEHOLDERS.values()))


@dataclass(frozen=True)
class Identifier:
    kind: str
    text: str


@dataclass(frozen=True)
class LabelledCase:
    text: str
    identifiers: tuple[Identifier, ...]


@dataclass(frozen=True)
class PhiScore:
    """Figures on one labelled set, with the cases behind every miss."""

    identifiers: int
    found: int
    negatives: int
    alarms: int
    positive_cases: int
    completely_redacted: int
    missed: tuple[tuple[str, str, str], ...]  # (kind, identifier, case text)
    false_alarms: tuple[tuple[str, tuple[str, ...]], ...]  # (case text, flagged spans)
    fragments: tuple[tuple[str, tuple[str, ...]], ...]  # (redacted text, the words left)
    detected_fragments: tuple[tuple[str, str], ...]  # (identifier, redacted text): found, yet partly left
    recall_by_kind: dict[str, tuple[int, int]]  # kind -> (found, total)

    @property
    def recall(self) -> float:
        return self.found / self.identifiers if self.identifiers else 1.0

    @property
    def false_alarm_rate(self) -> float:
        return self.alarms / self.negatives if self.negatives else 0.0

    @property
    def complete_redaction_rate(self) -> float:
        return self.completely_redacted / self.positive_cases if self.positive_cases else 1.0


def load_labelled(path: Path = HOLDOUT) -> list[LabelledCase]:
    """The cases of a labelled set; refuses a file without provenance or with an identifier not in its text."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not str(data.get("provenance", "")).strip():
        raise ValueError(f"{path} has no provenance: say who wrote it, when, and whether it tuned the rules.")
    cases = []
    for raw in data["cases"]:
        identifiers = tuple(Identifier(item["kind"], item["text"]) for item in raw["identifiers"])
        for identifier in identifiers:
            if identifier.text not in raw["text"]:
                raise ValueError(f"{path}: {identifier.text!r} is not in its case {raw['text']!r}.")
        cases.append(LabelledCase(raw["text"], identifiers))
    return cases


def _spans(case: LabelledCase) -> list[tuple[Identifier, int, int]]:
    spans, searched_from = [], Counter[str]()
    for identifier in case.identifiers:
        # the identifier as a whole word where it is one ("Pat", not the "Pat" of "Patient" before it)
        whole = re.compile(rf"(?<!\w){re.escape(identifier.text)}(?!\w)")
        match = whole.search(case.text, searched_from[identifier.text])
        start = match.start() if match else case.text.index(identifier.text, searched_from[identifier.text])
        searched_from[identifier.text] = start + 1
        spans.append((identifier, start, start + len(identifier.text)))
    return spans


def leftover_words(case: LabelledCase, redacted: str) -> list[str]:
    """Words (two characters or more) of the case's identifiers still in `redacted` more often than
    they occur outside the identifiers in the original text (a placeholder's own text, "[AGE 90+]", is
    none)."""
    spans = _spans(case)
    outside = case.text
    for _, start, end in sorted(spans, key=lambda span: -span[1]):
        outside = outside[:start] + " " + outside[end:]
    outside_counts = Counter(_WORD.findall(outside))
    redacted_counts = Counter(_WORD.findall(_PLACEHOLDER.sub(" ", redacted)))
    words = {word for identifier, _, _ in spans for word in _WORD.findall(identifier.text) if len(word) >= 2}
    return sorted(word for word in words if redacted_counts[word] > outside_counts[word])


def score(cases: list[LabelledCase]) -> PhiScore:
    """Recall, false alarms and complete-redaction rate of `find_pii`/`redact` on `cases`."""
    identifiers = found = negatives = alarms = positives = complete = 0
    missed, false_alarms, fragments, detected_fragments = [], [], [], []
    by_kind: dict[str, list[int]] = {}
    for case in cases:
        findings = find_pii(case.text)
        if not case.identifiers:
            negatives += 1
            if findings:
                alarms += 1
                false_alarms.append((case.text, tuple(finding.text for finding in findings)))
            continue
        positives += 1
        for identifier, start, end in _spans(case):
            hit = any(finding.start < end and start < finding.end for finding in findings)
            identifiers += 1
            found += hit
            tally = by_kind.setdefault(identifier.kind, [0, 0])
            tally[0] += hit
            tally[1] += 1
            if not hit:
                missed.append((identifier.kind, identifier.text, case.text))
        redacted = redact(case.text, findings)
        for identifier, start, end in _spans(case):
            detected = any(finding.start < end and start < finding.end for finding in findings)
            if detected and leftover_words(LabelledCase(case.text, (identifier,)), redacted):
                detected_fragments.append((identifier.text, redacted))
        left = leftover_words(case, redacted)
        if left:
            fragments.append((redacted, tuple(left)))
        else:
            complete += 1
    return PhiScore(
        identifiers,
        found,
        negatives,
        alarms,
        positives,
        complete,
        tuple(missed),
        tuple(false_alarms),
        tuple(fragments),
        tuple(detected_fragments),
        {kind: (hits, total) for kind, (hits, total) in sorted(by_kind.items())},
    )


def report(result: PhiScore) -> str:
    """The figures and every miss, false alarm and fragment, as text."""
    lines = [
        f"recall {result.recall:.1%} ({result.found}/{result.identifiers} identifiers), "
        f"false alarms {result.false_alarm_rate:.1%} ({result.alarms}/{result.negatives} negatives), "
        f"complete redaction {result.complete_redaction_rate:.1%} "
        f"({result.completely_redacted}/{result.positive_cases} cases)",
        "by kind: "
        + ", ".join(f"{kind} {hits}/{total}" for kind, (hits, total) in result.recall_by_kind.items()),
    ]
    lines += [f"  missed {kind}: {text!r} in {case!r}" for kind, text, case in result.missed]
    lines += [f"  false alarm: {spans} in {case!r}" for case, spans in result.false_alarms]
    lines += [f"  fragment {list(words)} left in {redacted!r}" for redacted, words in result.fragments]
    lines += [
        f"  DETECTED yet partly left: {text!r} in {redacted!r}"
        for text, redacted in result.detected_fragments
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the figures for a labelled set (default: the first holdout)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=HOLDOUT)
    args = parser.parse_args(argv)
    print(report(score(load_labelled(args.path))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
