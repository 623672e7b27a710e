"""Question validation, PII warnings and identity-leak detection."""

from __future__ import annotations

import pytest

from arena.integrity import QuestionRejected, leaks_identity, pii_warnings, validate_question


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Patient reachable on +44 7700 900123, what dose of amoxicillin?", ["a phone number"]),
        ("Email me at jane.doe@example.org about her INR", ["an e-mail address"]),
        ("MRN 12345678 has a raised troponin, next step?", ["a medical record, insurance or patient number"]),
        ("DOB 03/04/1961, new AF, anticoagulate?", ["a full date (birth, admission or visit)"]),
        ("SSN 123-45-6789, NHS number 943 476 5919", ["a social security number", "an NHS number"]),
        ("What is the first-line treatment for hypertension in a 55-year-old?", []),
        ("Is 120/80 mmHg a normal blood pressure?", []),
    ],
)
def test_pii_warnings(question: str, expected: list[str]) -> None:
    assert pii_warnings(question) == expected


@pytest.mark.parametrize(
    ("answer", "leaks"),
    [
        ("I am Llama, a model trained by Meta.", True),
        ("As Gemma, I cannot give medical advice.", True),
        ("I'm an AI model called Qwen.", True),
        ("I was trained by Microsoft.", True),
        ("Metformin is first line for type 2 diabetes.", False),
        ("As a clinician you should check renal function first.", False),
    ],
)
def test_identity_leaks(answer: str, leaks: bool) -> None:
    assert leaks_identity(answer) is leaks


def test_question_validation() -> None:
    assert validate_question("  What is sepsis?  ") == "What is sepsis?"
    # lone surrogate (a broken paste) and zero-width-only text are refused, not crashed on
    for bad in ("", "  ", None, "a" * 4001, "What is \ud800 sepsis?", "\u200b\u200c\u200d\ufeff \u2060", 42):
        with pytest.raises(QuestionRejected):
            validate_question(bad)
