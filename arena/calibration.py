"""Calibration battles: a reference answer against a deliberately degraded copy of itself, built
offline from the question bank by fixed rules (no model), so the right vote is known.

Three degradations, each a pure function that returns None when it does not apply:

- wrong drug: a named drug swapped for one a clinician must not confuse it with (`DRUG_SWAPS`);
- wrong dose unit: a number's unit scaled by a factor of 1000 (mg -> g, micrograms -> mg, mL -> L);
- reversed recommendation: "should" <-> "should not", "avoid" -> "use", "do not" -> "do", ...

    from arena.calibration import build_calibration_items
    items = build_calibration_items(bank_records)   # one item per (record, degradation) that applies

    python -m arena.calibration --data bundled --out calibration.jsonl   # inspect what raters will see

Run as: python -m pytest tests/test_calibration.py -q
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path


class Degradation(StrEnum):
    """How the degraded copy differs from the reference."""

    WRONG_DRUG = "wrong_drug"
    WRONG_DOSE_UNIT = "wrong_dose_unit"
    REVERSED_RECOMMENDATION = "reversed_recommendation"


DEGRADATION_LABELS = {
    Degradation.WRONG_DRUG: "a wrong drug",
    Degradation.WRONG_DOSE_UNIT: "a wrong dose unit",
    Degradation.REVERSED_RECOMMENDATION: "a reversed recommendation",
}

# Swaps that change the treatment in a way no clinician should prefer.
DRUG_SWAPS: dict[str, str] = {
    "aspirin": "warfarin",
    "warfarin": "aspirin",
    "metformin": "glibenclamide",
    "insulin": "metformin",
    "antibiotics": "corticosteroids",
    "antibiotic": "corticosteroid",
    "corticosteroids": "antibiotics",
    "steroids": "antibiotics",
    "ibuprofen": "codeine",
    "paracetamol": "ibuprofen",
    "acetaminophen": "ibuprofen",
    "statins": "beta-blockers",
    "statin": "beta-blocker",
    "heparin": "vitamin K",
    "levothyroxine": "carbimazole",
    "salbutamol": "propranolol",
    "amoxicillin": "ciprofloxacin",
    "adrenaline": "atropine",
    "epinephrine": "atropine",
    "morphine": "naloxone",
}
_DRUG_PATTERN = re.compile(
    r"\b(" + "|".join(sorted(DRUG_SWAPS, key=len, reverse=True)) + r")\b", re.IGNORECASE
)

# A number followed by a unit; the unit becomes one 1000 times larger.
_DOSE_UNITS = {"mg": "g", "milligrams": "grams", "mcg": "mg", "µg": "mg", "micrograms": "milligrams",
               "ml": "L", "millilitres": "litres", "milliliters": "liters", "g": "kg"}  # fmt: skip
_DOSE_PATTERN = re.compile(
    r"(?<![\w.])(\d+(?:[.,]\d+)?(?:\s*(?:-|to|–)\s*\d+(?:[.,]\d+)?)?)\s?("
    + "|".join(sorted((re.escape(unit) for unit in _DOSE_UNITS), key=len, reverse=True))
    + r")\b",
    re.IGNORECASE,
)

# Ordered: longer phrases first, so "should not" is never read as "should".
_REVERSALS: tuple[tuple[str, str], ...] = (
    (r"\bshould not\b", "should"),
    (r"\bshouldn't\b", "should"),
    (r"\bdo not\b", "do"),
    (r"\bdon't\b", "do"),
    (r"\bis not recommended\b", "is recommended"),
    (r"\bis recommended\b", "is not recommended"),
    (r"\bare recommended\b", "are not recommended"),
    (r"\bavoid\b", "use"),
    (r"\bshould\b", "should not"),
    (r"\bmust\b", "must not"),
    (r"\bincreases\b", "decreases"),
    (r"\breduces\b", "increases"),
)
_REVERSAL_PATTERN = re.compile("|".join(f"({pattern})" for pattern, _ in _REVERSALS), re.IGNORECASE)


def _keep_case(original: str, replacement: str) -> str:
    return replacement[:1].upper() + replacement[1:] if original[:1].isupper() else replacement


def wrong_drug(answer: str) -> str | None:
    """Every named drug of `DRUG_SWAPS` swapped for its confusable partner; None without one."""
    if not _DRUG_PATTERN.search(answer):
        return None
    return _DRUG_PATTERN.sub(lambda m: _keep_case(m.group(0), DRUG_SWAPS[m.group(0).lower()]), answer)


def wrong_dose_unit(answer: str) -> str | None:
    """Every dose's unit made 1000 times larger ("500 mg" -> "500 g"); None without a dose."""

    def swap(match: re.Match[str]) -> str:
        unit = match.group(2)
        bigger = _DOSE_UNITS[unit.lower()] if unit.lower() in _DOSE_UNITS else _DOSE_UNITS[unit]
        return f"{match.group(1)} {bigger}"

    if not _DOSE_PATTERN.search(answer):
        return None
    return _DOSE_PATTERN.sub(swap, answer)


def reversed_recommendation(answer: str) -> str | None:
    """The first recommendation of each sentence that has one turned around; None without one."""
    changed = False

    def flip_sentence(sentence: str) -> str:
        nonlocal changed
        match = _REVERSAL_PATTERN.search(sentence)
        if match is None:
            return sentence
        index = next(i for i, group in enumerate(match.groups()) if group is not None)
        changed = True
        replacement = _keep_case(match.group(0), _REVERSALS[index][1])
        return sentence[: match.start()] + replacement + sentence[match.end() :]

    result = "".join(flip_sentence(part) for part in re.split(r"(?<=[.!?])(\s+)", answer))
    return result if changed else None


DEGRADERS: dict[Degradation, Callable[[str], str | None]] = {
    Degradation.WRONG_DRUG: wrong_drug,
    Degradation.WRONG_DOSE_UNIT: wrong_dose_unit,
    Degradation.REVERSED_RECOMMENDATION: reversed_recommendation,
}


@dataclass(frozen=True)
class CalibrationItem:
    """One calibration battle's material: the bank question, its reference and the degraded copy."""

    question_id: str
    question: str
    category: str
    reference: str
    degraded: str
    degradation: Degradation


def build_calibration_items(
    records: Iterable[object], degradations: Sequence[Degradation] = tuple(Degradation)
) -> list[CalibrationItem]:
    """One item per (record, degradation) that changes the record's reference answer."""
    items = []
    for record in records:
        reference = getattr(record, "answer", "")
        if getattr(record, "options", None) or not reference.strip():
            continue  # MCQ keys are letters, not answers to degrade
        for degradation in degradations:
            degraded = DEGRADERS[degradation](reference)
            if degraded is not None and degraded != reference:
                items.append(
                    CalibrationItem(
                        record.id, record.question, getattr(record, "category", "") or "", reference,
                        degraded, degradation,
                    )
                )  # fmt: skip
    return items


def main(argv: list[str] | None = None) -> int:
    """CLI: write the calibration items of a data source as JSON Lines and print the count per kind."""
    from finetune.data import DataError, load_dataset_source

    parser = argparse.ArgumentParser(prog="python -m arena.calibration", description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="bundled", help="a data source name (default: bundled)")
    parser.add_argument("--out", type=Path, required=True, help="JSON Lines file to write")
    args = parser.parse_args(argv)
    try:
        records = load_dataset_source(args.data).records
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    items = build_calibration_items(records)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(asdict(item), ensure_ascii=False) + "\n")
    for degradation in Degradation:
        print(f"{degradation}: {sum(item.degradation == degradation for item in items)}")
    print(f"{args.out}: {len(items)} items from {len(records)} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
