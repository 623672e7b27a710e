"""The source studies' hub sets read offline from hand-written exports in each hub's own columns.

Every fixture in tests/fixtures/hub/ is synthetic; the hub copy itself is never downloaded here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune.data import HUB_SETS, DataError, MCQRecord, QARecord, load_dataset_source
from finetune.mixing import load_mix

FIXTURES = Path(__file__).parent / "fixtures" / "hub"

# name -> (fixture file, records kept, dropped by reason)
EXPECTED = {
    "chatdoctor-healthcaremagic": ("chatdoctor-healthcaremagic.jsonl", 3, {}),
    "chatdoctor-icliniq": ("chatdoctor-icliniq.jsonl", 2, {"empty": 1}),
    "medical-flashcards": ("medical-flashcards.jsonl", 3, {}),
    "mental-health-counselling": ("mental-health-counselling.jsonl", 3, {"duplicate question": 1}),
    "ai-medical-chatbot": ("ai-medical-chatbot.jsonl", 2, {"question length": 1}),
    "medical-dataset-chat": ("medical-dataset-chat.jsonl", 3, {}),
    "medicationqa": ("medicationqa.csv", 3, {}),
    "medmcqa": ("medmcqa.csv", 3, {"malformed": 1}),
}


def test_every_studies_set_has_a_fixture() -> None:
    assert set(EXPECTED) <= set(HUB_SETS)
    assert all((FIXTURES / file).exists() for file, _, _ in EXPECTED.values())


@pytest.mark.parametrize("name", EXPECTED)
def test_export_loads_through_the_same_cleaning(name: str) -> None:
    file, kept, dropped = EXPECTED[name]
    data = load_dataset_source(f"{name}={FIXTURES / file}")
    assert data.source == f"{name}={FIXTURES / file}"
    assert (data.report.kept, data.report.dropped) == (kept, dropped)
    assert all(record.source == name for record in data.records)  # the hub set, not the file
    assert all("Synthetic fixture" in record.question for record in data.records)


def test_rows_map_onto_questions_and_answers() -> None:
    icliniq = load_dataset_source(f"chatdoctor-icliniq={FIXTURES / 'chatdoctor-icliniq.jsonl'}").records
    assert all(isinstance(r, QARecord) and r.answer.startswith("Synthetic fixture iCliniq") for r in icliniq)
    chat = load_dataset_source(f"medical-dataset-chat={FIXTURES / 'medical-dataset-chat.jsonl'}").records
    assert all(r.answer.startswith("Synthetic fixture ChatDoctor answer:") for r in chat)
    drugs = load_dataset_source(f"medicationqa={FIXTURES / 'medicationqa.csv'}").records
    assert [(r.focus, r.category) for r in drugs] == [
        ("Ibuprofen", "Interaction"),
        ("Amoxicillin", "Action"),
        ("Metformin", "Dose"),
    ]
    chatbot = load_dataset_source(f"ai-medical-chatbot={FIXTURES / 'ai-medical-chatbot.jsonl'}").records
    assert chatbot[0].question.startswith("Synthetic fixture: Hi doctor") and chatbot[0].focus.startswith(
        "Q."
    )


def test_medmcqa_cop_is_a_zero_based_label() -> None:
    data = load_dataset_source(f"medmcqa={FIXTURES / 'medmcqa.csv'}")
    assert data.kind == "multiple_choice"
    by_id = {r.id: r for r in data.records}
    assert all(isinstance(r, MCQRecord) for r in data.records)
    assert [(by_id[i].answer, by_id[i].options[by_id[i].answer]) for i in sorted(by_id)] == [
        ("B", "Phrenic"),
        ("A", "Ethosuximide"),
        ("C", "150,000-450,000"),
    ]
    assert by_id["synthetic-0001"].category == "Anatomy"


def test_parquet_and_jsonl_exports_hash_alike(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    jsonl = FIXTURES / "medical-flashcards.jsonl"
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    parquet = tmp_path / "flashcards.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    from_parquet = load_dataset_source(f"medical-flashcards={parquet}")
    from_jsonl = load_dataset_source(f"medical-flashcards={jsonl}")
    assert from_parquet.content_hash == from_jsonl.content_hash


def test_an_export_in_another_layout_is_refused_in_one_sentence() -> None:
    with pytest.raises(DataError, match=r"not an export of lavita/ChatDoctor-iCliniq: .*answer_icliniq"):
        load_dataset_source(f"chatdoctor-icliniq={FIXTURES / 'medical-flashcards.jsonl'}")
    with pytest.raises(DataError, match="NAME=FILE"):
        load_dataset_source(f"no-such-set={FIXTURES / 'medmcqa.csv'}")


def test_studies_sets_mix_by_weight() -> None:
    mix = (
        f"chatdoctor-healthcaremagic={FIXTURES / 'chatdoctor-healthcaremagic.jsonl'}:0.5,"
        f"medical-flashcards={FIXTURES / 'medical-flashcards.jsonl'}:0.5"
    )
    data, provenance = load_mix(mix, limit=4)
    assert [p["records"] for p in provenance] == [2, 2]
    assert {r.source for r in data.records} == {"chatdoctor-healthcaremagic", "medical-flashcards"}
