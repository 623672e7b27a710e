"""Identity-leak detection (arena/leaks.py) on a labelled set of answers
(tests/fixtures/identity_leaks.jsonl): leaks naming models, families and developers, and medical
answers that mention eponyms, drug makers, meta-analyses and tech companies without leaking.

Pure regex, well under a second. Run as: python -m pytest tests/test_leaks.py -q -s
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arena.integrity import leaks_identity as integrity_leaks_identity
from arena.leaks import find_identity_leaks, leaks_identity

LABELLED = Path(__file__).parent / "fixtures" / "identity_leaks.jsonl"


def labelled() -> list[dict]:
    return [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_recall_and_false_alarms_on_the_labelled_answers() -> None:
    rows = labelled()
    leaks = [row["answer"] for row in rows if row["leak"]]
    clean = [row["answer"] for row in rows if not row["leak"]]
    assert len(rows) >= 60 and len(clean) >= 40
    missed = [answer for answer in leaks if not leaks_identity(answer)]
    false_alarms = [answer for answer in clean if leaks_identity(answer)]
    recall = 1 - len(missed) / len(leaks)
    false_alarm_rate = len(false_alarms) / len(clean)
    print(f"\nidentity leaks: recall {recall:.1%} ({len(leaks) - len(missed)}/{len(leaks)}), "
          f"false alarms {false_alarm_rate:.1%} ({len(false_alarms)}/{len(clean)} medical answers)")  # fmt: skip
    assert recall >= 0.95, missed
    assert false_alarm_rate <= 0.05, false_alarms


@pytest.mark.parametrize(
    ("answer", "kind", "name"),
    [
        ("As an AI developed by Meta, I cannot examine you.", "developer", "Meta"),
        ("I'm Qwen2.5-7B-Instruct.", "model", "Qwen2.5-7B-Instruct"),
        ("I am Llama, an assistant.", "family", "Llama"),
        ("My creators at Hugging Face trained me.", "developer", "Hugging Face"),
    ],
)
def test_each_leak_says_what_it_named(answer: str, kind: str, name: str) -> None:
    assert any(leak.kind == kind and leak.name == name for leak in find_identity_leaks(answer))


def test_the_integrity_check_the_service_calls_is_this_detector() -> None:
    assert integrity_leaks_identity("I was developed by DeepSeek-AI.") is True
    assert integrity_leaks_identity("Nanobodies derived from llama antibodies are promising.") is False
