"""Question categories (arena/categories.py): task type and specialty accuracy on 150 labelled
questions written for this purpose, and on 30 held-out questions written after the rules were fixed.

Pure regex, well under a second. Run as: python -m pytest tests/test_categories.py -q -s
"""

from __future__ import annotations

import json
from pathlib import Path

from arena.categories import SPECIALTIES, TaskType, classify_question

FIXTURES = Path(__file__).parent / "fixtures"


def accuracy(name: str) -> tuple[float, float, int]:
    rows = [json.loads(line) for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines() if line]
    assert all(row["task"] in set(TaskType) and row["specialty"] in SPECIALTIES for row in rows)
    predicted = [classify_question(row["question"]) for row in rows]
    task = sum(p.task == row["task"] for p, row in zip(predicted, rows, strict=True)) / len(rows)
    specialty = sum(p.specialty == row["specialty"] for p, row in zip(predicted, rows, strict=True)) / len(
        rows
    )
    return task, specialty, len(rows)


def test_task_type_accuracy_on_the_labelled_questions() -> None:
    task, specialty, count = accuracy("question_categories.jsonl")
    print(f"\nlabelled set ({count} questions): task type {task:.1%}, specialty {specialty:.1%}")
    assert count >= 150
    assert task >= 0.80 and specialty >= 0.80


def test_task_type_accuracy_on_held_out_questions() -> None:
    task, specialty, count = accuracy("question_categories_heldout.jsonl")
    print(
        f"\nheld-out set ({count} questions, written after the rules): task type {task:.1%}, specialty {specialty:.1%}"
    )
    assert task >= 0.80
    assert specialty >= 0.60  # specialty vocabulary generalises less well; stated in the README


def test_every_question_gets_a_category_and_the_label_reads_well() -> None:
    category = classify_question("zzz")
    assert category.task == TaskType.EDUCATION and category.specialty == "general"
    assert classify_question("Paracetamol dose for a 12 kg toddler with fever?").label.startswith(
        "Treatment / dosing"
    )
