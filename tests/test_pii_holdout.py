"""The patient-data rules measured out of sample: tests/fixtures/phi_holdout.json (108 cases across
HIPAA Safe Harbor identifier kinds, 66 hard negatives), written before the rules of issue #21 item 5
and never used to tune them, plus the bank's real questions (which hold no patient data) as negatives.

Run as: python -m pytest tests/test_pii_holdout.py -q -s   (prints the figures in the README)
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from arena.pii import find_pii, redact
from arena.pii_eval import HOLDOUT, load_labelled, report, score
from tests.conftest import SHARED_DATA

SAFE_HARBOR_KINDS = {
    "name", "geographic", "date", "age90", "phone", "fax", "email", "ssn", "mrn", "health_plan", "account",
    "license", "vehicle", "device", "url", "ip", "other_number",
}  # fmt: skip


def test_the_holdout_is_large_labelled_and_says_where_it_came_from() -> None:
    data = json.loads(HOLDOUT.read_text(encoding="utf-8"))
    assert "never used to tune the rules" in data["provenance"]
    cases = load_labelled(HOLDOUT)  # refuses an identifier that is not in its case
    positives = [case for case in cases if case.identifiers]
    assert len(positives) >= 100 and len(cases) - len(positives) >= 50
    assert {identifier.kind for case in positives for identifier in case.identifiers} >= SAFE_HARBOR_KINDS
    negatives = Counter(raw.get("hard_negative") for raw in data["cases"] if not raw["identifiers"])
    assert {"eponym", "lab value", "dose", "guideline year"} <= set(negatives)


def test_out_of_sample_recall_false_alarms_and_redaction() -> None:
    result = score(load_labelled())
    print("\n" + report(result))
    # Issue targets: recall >= 95%, false alarms <= 5%, no fragment left. Met for false alarms and for
    # every identifier the rules find; recall and complete redaction are floors below the target (README).
    assert result.false_alarm_rate <= 0.05
    assert result.detected_fragments == ()  # nothing that was found is left in part
    assert result.recall >= 0.90 and result.complete_redaction_rate >= 0.90


def test_the_banks_real_questions_raise_almost_no_alarm() -> None:
    files = sorted(SHARED_DATA.glob("*/*.jsonl"))
    if not files:
        pytest.skip(f"no shared data at {SHARED_DATA}")
    questions = [
        json.loads(line)["question"]
        for path in files
        for line in path.read_text(encoding="utf-8").split("\n")
        if line
    ]
    sample = questions[::8]  # every eighth question of every set, the same each run
    flagged = [question for question in sample if find_pii(question)]
    print(f"\n{len(flagged)} of {len(sample)} real bank questions flagged: {[q[:60] for q in flagged]}")
    assert len(sample) > 800 and len(flagged) / len(sample) <= 0.01


@pytest.mark.parametrize(
    ("text", "left"),
    [
        ("Mrs O'Brien's INR is 5.2", "[NAME]'s INR is 5.2"),
        ("Dr Jan van der Berg saw her", "[NAME] saw her"),
        ("Kofi Boateng, MRN AB-7720154, fell", "[NAME], MRN [RECORD], fell"),
        ("Birth certificate no. 2001-332-998877 please", "Birth certificate no. [ID] please"),
        ("Health card 1234-567-890-AB expired", "Health card [NATIONAL ID] expired"),
    ],
)
def test_redaction_leaves_no_fragment(text: str, left: str) -> None:
    assert redact(text) == left
