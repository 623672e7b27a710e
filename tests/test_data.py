"""Tests for finetune/data.py on real files: the shared MedQuAD and MedQA-USMLE subsets, the
bundled sets, and small hand-written JSONL/CSV files with every kind of bad record.

Run: ``python -m pytest tests/test_data.py -q``
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from finetune.data import (
    DataError,
    MCQRecord,
    QARecord,
    content_hash,
    load_dataset_source,
    split_records,
    target_text,
)

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
MEDQUAD = SHARED_DATA / "medquad" / "medquad.jsonl"
MEDQA = SHARED_DATA / "medqa_usmle" / "medqa_usmle.jsonl"

needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"shared data folder {SHARED_DATA} is absent on this machine"
)


def write_jsonl(path: Path, rows: list[dict | str]) -> Path:
    """Rows given as dicts are JSON-encoded; strings are written verbatim (for malformed lines)."""
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def qa(n: int, **extra: str) -> dict[str, str]:
    return {
        "id": f"q{n}",
        "question": f"What is the usual first treatment for condition number {n}?",
        "answer": f"Treatment {n} is rest and fluids.",
    } | extra


def mcq(n: int, answer: str = "B") -> dict:
    return {
        "id": f"m{n}",
        "question": f"Which drug is first line for condition number {n}?",
        "options": {"A": "Aspirin", "B": "Metformin", "C": "Insulin", "D": "Warfarin"},
        "answer": answer,
    }


# --- real shared data -------------------------------------------------------------------------------


@needs_shared_data
def test_medquad_loads_as_free_text() -> None:
    data = load_dataset_source(str(MEDQUAD))
    assert data.kind == "free_text"
    assert data.report.read == 3000
    assert data.report.kept == len(data.records) == 3000
    assert all(isinstance(record, QARecord) for record in data.records)
    first = data.records[0]
    assert first.id == "medquad-1-0000001_1-3"
    assert first.question == "How to diagnose Adult Acute Lymphoblastic Leukemia?"
    assert first.source == "MedQuAD/CancerGov"
    assert first.focus == "Adult Acute Lymphoblastic Leukemia"
    assert first.answer.startswith("Tests that examine the blood and bone marrow")
    assert target_text(first) == first.answer
    assert len({record.id for record in data.records}) == 3000
    assert len(data.content_hash) == 64


@needs_shared_data
def test_medqa_usmle_loads_as_multiple_choice() -> None:
    data = load_dataset_source(str(MEDQA))
    assert data.kind == "multiple_choice"
    assert data.report.read == 973
    assert len(data.records) == 973
    for record in data.records:
        assert isinstance(record, MCQRecord)
        assert sorted(record.options) == ["A", "B", "C", "D"]
        assert record.answer in record.options
    first = data.records[0]
    assert first.id == "medqa-us4-test-0000"
    assert first.answer == "B"
    assert target_text(first) == f"Answer: B. {first.options['B']}"


@needs_shared_data
def test_medquad_split_is_eighty_ten_ten() -> None:
    split = split_records(load_dataset_source(str(MEDQUAD)).records, seed=42)
    assert split.sizes() == {"train": 2400, "validation": 300, "test": 300}


@needs_shared_data
def test_limit_takes_a_seeded_random_sample_in_file_order() -> None:
    full = load_dataset_source(str(MEDQUAD))
    limited = load_dataset_source(str(MEDQUAD), limit=40)
    position = {r.id: i for i, r in enumerate(full.records)}
    picked = [position[r.id] for r in limited.records]
    assert len(picked) == 40 and picked == sorted(picked)
    assert picked != list(range(40))  # not the first 40 (the file starts with one CancerGov topic)
    assert max(picked) > len(full.records) // 2
    assert limited.content_hash == content_hash(limited.records) != full.content_hash
    assert [r.id for r in load_dataset_source(str(MEDQUAD), limit=40).records] == [
        r.id for r in limited.records
    ]
    other_seed = load_dataset_source(str(MEDQUAD), limit=40, seed=7)
    assert [r.id for r in other_seed.records] != [r.id for r in limited.records]


def test_length_filters_are_config_fields_used_by_training_data(tmp_path: Path) -> None:
    from finetune.batching import prepare_data
    from finetune.config import build_config

    path = write_jsonl(
        tmp_path / "lengths.jsonl",
        [
            {"question": f"Question number {i} about hypertension?", "answer": "x" * (20 * (i + 1))}
            for i in range(6)
        ],
    )
    config = build_config(flags={"data": {"source": str(path), "max_answer_chars": "70"}})
    data, _, _ = prepare_data(config)
    assert data.report.kept == 3 and data.report.dropped == {"answer length": 3}


def test_hub_rows_map_onto_the_local_shapes() -> None:
    from finetune.data import HUB_SETS, clean
    from finetune.prompt import final_answer

    medquad = HUB_SETS["medquad"].to_row
    rows = [
        {"document_id": "0000001", "question_id": f"0000001-{i}", "question": f"What is condition {i} about?",
         "answer": "An answer.", "question_focus": "x", "question_type": "information"}
        for i in range(2)
    ]  # fmt: skip
    records, _ = clean([medquad(row) for row in rows], "medquad")
    assert [r.id for r in records] == ["0000001-0", "0000001-1"]  # document_id repeats per page

    o1 = HUB_SETS["medical-o1"].to_row
    (record,), _ = clean(
        [
            o1(
                {
                    "Question": "Which drug first for anaphylaxis?",
                    "Complex_CoT": "Airway first.",
                    "Response": "Adrenaline IM.",
                }
            )
        ],
        "medical-o1",
    )
    assert record.answer == "<think>\nAirway first.\n</think>\n\nAdrenaline IM."
    assert final_answer(record.answer) == "Adrenaline IM." == target_text(record, thinking=False)

    pubmed = HUB_SETS["pubmedqa"].to_row
    hub_row = {
        "pubid": 10135926, "question": "Is intubation impaired in the helicopter?", "final_decision": "yes",
        "context": {"contexts": ["Patients need airways.", "BO-105."], "labels": ["INTRODUCTION", "SETTING"]},
    }  # fmt: skip
    local_row = {
        "id": "pubmedqa-10135926", "question": "Is intubation impaired in the helicopter?",
        "options": {"A": "yes", "B": "no", "C": "maybe"}, "answer": "A",
        "context": "INTRODUCTION: Patients need airways.\nSETTING: BO-105.",
    }  # fmt: skip
    (from_hub,), _ = clean([pubmed(hub_row)], "pubmedqa")
    (from_file,), _ = clean([local_row], "pubmedqa")
    assert from_hub == from_file


# --- bundled sets -------------------------------------------------------------------------------------


def test_bundled_free_text_set() -> None:
    data = load_dataset_source("bundled")
    assert (data.source, data.kind, len(data.records)) == ("bundled", "free_text", 193)
    assert data.report.dropped == {}
    assert all(isinstance(r, QARecord) and r.question and r.answer for r in data.records)
    assert split_records(data.records).sizes() == {"train": 154, "validation": 19, "test": 20}


def test_bundled_mcq_set() -> None:
    data = load_dataset_source("bundled-mcq")
    assert (data.source, data.kind, len(data.records)) == ("bundled-mcq", "multiple_choice", 83)
    assert all(isinstance(r, MCQRecord) and r.answer in r.options for r in data.records)
    assert split_records(data.records).sizes() == {"train": 66, "validation": 8, "test": 9}


def test_content_hash_is_stable_across_loads() -> None:
    assert load_dataset_source("bundled").content_hash == load_dataset_source("bundled").content_hash
    assert load_dataset_source("bundled").content_hash != load_dataset_source("bundled-mcq").content_hash


# --- split ----------------------------------------------------------------------------------------------


def ids(records: list) -> list[str]:
    return [record.id for record in records]


def test_split_is_deterministic_disjoint_and_covering() -> None:
    records = load_dataset_source("bundled").records
    first, again = split_records(records, seed=7), split_records(records, seed=7)
    assert ids(first.train) == ids(again.train)
    assert ids(first.validation) == ids(again.validation)
    assert ids(first.test) == ids(again.test)
    train, validation, test = set(ids(first.train)), set(ids(first.validation)), set(ids(first.test))
    assert not train & validation and not train & test and not validation & test
    assert train | validation | test == set(ids(records))
    # Input order does not matter: the side of each record depends on its id and the seed only.
    shuffled = split_records(list(reversed(records)), seed=7)
    assert set(ids(shuffled.test)) == test


def test_different_seed_gives_a_different_split() -> None:
    records = load_dataset_source("bundled").records
    one, other = split_records(records, seed=1), split_records(records, seed=2)
    assert one.sizes() == other.sizes()
    assert set(ids(one.test)) != set(ids(other.test))


def test_tiny_split_still_has_a_validation_record() -> None:
    records = load_dataset_source("bundled", limit=3).records
    assert split_records(records).sizes() == {"train": 1, "validation": 1, "test": 1}


# --- bad records are counted, never dropped silently ----------------------------------------------------


def test_every_bad_free_text_record_is_counted(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "messy.jsonl",
        [
            qa(1),
            qa(2),
            "{this is not json",
            {"id": "no-answer", "question": "What causes a headache after exercise?"},
            qa(3, question="   "),
            qa(4, question=qa(1)["question"].upper()),  # same question, other case
            qa(5, question="Why " + "very " * 1000 + "long?"),
            mcq(6, answer="E"),  # answer letter not among the options
            qa(7),
        ],
    )
    data = load_dataset_source(str(path))
    assert data.kind == "free_text"
    assert ids(data.records) == ["q1", "q2", "q7"]
    assert data.report.read == 9
    assert data.report.kept == 3
    assert data.report.dropped == {
        "malformed": 3,
        "empty": 1,
        "duplicate question": 1,
        "question length": 1,
    }
    assert data.report.summary() == (
        "read 9, kept 3, dropped 1 duplicate question, 1 empty, 3 malformed, 1 question length"
    )


def test_mcq_whose_answer_is_not_an_option_is_malformed(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "mcq.jsonl", [mcq(1), mcq(2, answer="E"), mcq(3, answer="c"), mcq(4)])
    data = load_dataset_source(str(path))
    assert data.kind == "multiple_choice"
    assert ids(data.records) == ["m1", "m3", "m4"]
    assert data.records[1].answer == "C"  # letters are upper-cased
    assert data.report.dropped == {"malformed": 1}


def test_mixed_free_text_and_mcq_file_is_refused(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "mixed.jsonl", [qa(1), mcq(2)])
    with pytest.raises(DataError, match="mixes free-text and multiple-choice"):
        load_dataset_source(str(path))


# --- CSV ----------------------------------------------------------------------------------------------


def test_csv_free_text_and_mcq(tmp_path: Path) -> None:
    free = tmp_path / "free.csv"
    with free.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "question", "answer", "focus"])
        writer.writeheader()
        writer.writerow({**qa(1), "focus": "asthma"})
        writer.writerow({**qa(2), "focus": ""})
        writer.writerow({"id": "blank", "question": "", "answer": "nothing", "focus": ""})
    data = load_dataset_source(str(free))
    assert (data.kind, ids(data.records)) == ("free_text", ["q1", "q2"])
    assert data.records[0].focus == "asthma"
    assert data.records[0].source == str(free)
    assert data.report.dropped == {"empty": 1}

    choice = tmp_path / "choice.csv"
    with choice.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "question", "options", "answer"])
        writer.writeheader()
        for n in (1, 2):
            row = mcq(n)
            writer.writerow({**row, "options": json.dumps(row["options"])})
    data = load_dataset_source(str(choice))
    assert data.kind == "multiple_choice"
    assert data.records[0].options == mcq(1)["options"]


# --- unusable sources: one clear sentence ---------------------------------------------------------------


def test_unknown_source_name_lists_the_valid_names() -> None:
    with pytest.raises(DataError) as caught:
        load_dataset_source("no-such-set")
    message = str(caught.value)
    assert "unknown data source 'no-such-set'" in message
    for name in ("bundled", "bundled-mcq", "medquad", "medqa-usmle"):
        assert name in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing\.jsonl does not exist"):
        load_dataset_source(str(tmp_path / "missing.jsonl"))


def test_unsupported_suffix(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("question,answer\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"must be \.jsonl, \.csv or \.parquet"):
        load_dataset_source(str(path))


def test_all_garbage_file_raises(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "garbage.jsonl", ["not json", "[1, 2, 3]", '"just a string"'])
    with pytest.raises(
        DataError, match=r"no usable records after cleaning \(read 3, kept 0, dropped 3 malformed\)"
    ):
        load_dataset_source(str(path))


def test_empty_after_cleaning_raises(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "short.jsonl", [qa(1, question="Why?"), qa(2, answer="")])
    with pytest.raises(DataError) as caught:
        load_dataset_source(str(path))
    assert "no usable records after cleaning" in str(caught.value)
    assert "1 empty" in str(caught.value) and "1 question length" in str(caught.value)


def test_non_utf8_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(qa(1)).encode() + b"\n\xff\xfe caf\xe9\n")
    with pytest.raises(DataError, match="not readable text"):
        load_dataset_source(str(path))
