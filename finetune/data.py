"""Medical QA data: load any source into one record shape, clean it, split it deterministically.

Sources (`--data`):
- `bundled` / `bundled-mcq`: the team's own demonstration sets in `data/` (offline default);
- a path to a `.jsonl` or `.csv` file in the free-text `{id, question, answer, source, focus}` or
  multiple-choice `{id, question, options, answer}` shape (e.g. `../shared/data/medquad/medquad.jsonl`);
- a hub set through `datasets` when a hub is reachable (`HUB_SETS`: `medquad`, `wikidoc`, `medqa-usmle`,
  `medical-o1`, `pubmedqa`, and the source studies' `chatdoctor-healthcaremagic`, `chatdoctor-icliniq`,
  `medical-flashcards`, `mental-health-counselling`, `ai-medical-chatbot`, `medical-dataset-chat`,
  `medicationqa`, `medmcqa`);
- `NAME=FILE`: a local JSONL/CSV/Parquet export of hub set NAME in the hub's own columns, read
  exactly as the hub copy (offline), e.g. `chatdoctor-icliniq=exports/icliniq.parquet`.

Every source goes through the same `clean()` and its per-reason report.
`python -m finetune.data_describe SOURCE` (or `python -m finetune.data --describe SOURCE`) prints and plots what a source holds (finetune/data_describe.py).

    python -c "from finetune.data import load_dataset_source; print(load_dataset_source('bundled').report)"
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_FILES = {"bundled": "medarena_qa.jsonl", "bundled-mcq": "medarena_mcq.jsonl"}


def bundled_dir() -> Path:
    """The bundled sets: data/ of a checkout, else the copy a wheel installs (finetune/bundled_data/)."""
    from finetune.paths import PACKAGED_DATA_DIR

    checkout = PROJECT_ROOT / "data"
    if (checkout / BUNDLED_FILES["bundled"]).exists() or not PACKAGED_DATA_DIR.exists():
        return checkout  # reading a missing file then fails naming it
    return PACKAGED_DATA_DIR


BUNDLED = {name: bundled_dir() / filename for name, filename in BUNDLED_FILES.items()}


class DataError(ValueError):
    """A data source that cannot be used; the message says why in one sentence."""


@dataclass(frozen=True)
class QARecord:
    """A free-text question with its reference answer."""

    id: str
    question: str
    answer: str
    source: str
    focus: str = ""
    category: str = ""

    options = None  # free-text records have no options; lets callers treat both shapes alike


@dataclass(frozen=True)
class MCQRecord:
    """A multiple-choice question; `answer` is the correct option's letter."""

    id: str
    question: str
    options: dict[str, str]
    answer: str
    source: str = ""
    category: str = ""


Record = QARecord | MCQRecord


@dataclass
class CleaningReport:
    """How many records each cleaning rule removed; nothing is dropped silently."""

    read: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        """Count one dropped record under `reason`."""
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def summary(self) -> str:
        """'read N, kept M, dropped ...' for the log and run.json."""
        detail = ", ".join(f"{count} {reason}" for reason, count in sorted(self.dropped.items()))
        return f"read {self.read}, kept {self.kept}" + (f", dropped {detail}" if detail else "")


@dataclass(frozen=True)
class CleaningRules:
    min_question_chars: int = 10
    max_question_chars: int = 4000
    min_answer_chars: int = 1  # one letter is a whole multiple-choice answer
    max_answer_chars: int = 4000


@dataclass(frozen=True)
class Split:
    train: list[Record]
    validation: list[Record]
    test: list[Record]

    def sizes(self) -> dict[str, int]:
        """Records per split."""
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


@dataclass(frozen=True)
class LoadedData:
    source: str
    kind: str  # "free_text" or "multiple_choice"
    records: list[Record]
    report: CleaningReport
    content_hash: str  # sha256 over the cleaned records: provenance for adapters and results


_SPACES = re.compile(r"[ \t\u00a0]+")


def normalise_text(text: str) -> str:
    """NFC, collapsed runs of spaces, trimmed lines, no blank-line runs."""
    text = unicodedata.normalize("NFC", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _as_record(raw: Mapping[str, Any], source: str, index: int) -> Record:
    """Build a record from one raw row, or raise KeyError/TypeError/ValueError for a bad row."""
    question = raw["question"]
    if not isinstance(question, str):
        raise TypeError("question is not text")
    record_id = str(raw.get("id") or f"{Path(source).stem}-{index:06d}")
    context = raw.get("context")
    if isinstance(context, str) and context.strip():  # PubMedQA: the abstract the question is about
        question = f"{context}\n\nQuestion: {question}"
    options = raw.get("options")
    if isinstance(options, str) and options.strip().startswith("{"):  # CSV cells hold JSON
        options = json.loads(options)
    if options:
        if not isinstance(options, Mapping) or not all(isinstance(v, str) for v in options.values()):
            raise TypeError("options must map letters to text")
        answer = str(raw["answer"]).strip().upper()
        if answer not in options:
            raise ValueError("answer letter is not one of the options")
        return MCQRecord(
            id=record_id,
            question=normalise_text(question),
            options={str(k).upper(): normalise_text(v) for k, v in options.items()},
            answer=answer,
            source=str(raw.get("source") or source),
            category=str(raw.get("category") or raw.get("subject") or ""),
        )
    answer = raw["answer"]
    if not isinstance(answer, str):
        raise TypeError("answer is not text")
    return QARecord(
        id=record_id,
        question=normalise_text(question),
        answer=normalise_text(answer),
        source=str(raw.get("source") or source),
        focus=str(raw.get("focus") or ""),
        category=str(raw.get("category") or raw.get("qtype") or ""),
    )


def clean(
    raw_rows: Iterable[Mapping[str, Any] | None], source: str, rules: CleaningRules = CleaningRules()
) -> tuple[list[Record], CleaningReport]:
    """Normalise rows into records; count every malformed, empty, too long or duplicate row."""
    report = CleaningReport()
    records: list[Record] = []
    seen_questions: set[str] = set()
    for index, raw in enumerate(raw_rows):
        report.read += 1
        if raw is None:
            report.drop("malformed")
            continue
        try:
            record = _as_record(raw, source, index)
        except (KeyError, TypeError, ValueError, json.JSONDecodeError):
            report.drop("malformed")
            continue
        answer_text = record.answer if isinstance(record, QARecord) else record.options[record.answer]
        if not record.question or not answer_text:
            report.drop("empty")
        elif (
            len(record.question) < rules.min_question_chars or len(record.question) > rules.max_question_chars
        ):
            report.drop("question length")
        elif isinstance(record, QARecord) and not (
            rules.min_answer_chars <= len(record.answer) <= rules.max_answer_chars
        ):
            report.drop("answer length")
        elif (key := record.question.casefold()) in seen_questions:
            report.drop("duplicate question")
        else:
            seen_questions.add(key)
            records.append(record)
    report.kept = len(records)
    return records, report


def _read_jsonl(path: Path) -> Iterable[Mapping[str, Any] | None]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                yield None  # counted as malformed by clean()
                continue
            yield row if isinstance(row, dict) else None


def _read_csv(path: Path) -> Iterable[Mapping[str, Any]]:
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


def _read_parquet(path: Path) -> Iterable[Mapping[str, Any]]:
    import pyarrow.parquet as pq  # installed with datasets

    return pq.read_table(path).to_pylist()


def _read_file(path: Path) -> list[Mapping[str, Any] | None]:
    if not path.exists():
        raise DataError(f"data file {path} does not exist")
    readers: dict[str, Callable[[Path], Iterable[Mapping[str, Any] | None]]] = {
        ".jsonl": _read_jsonl,
        ".csv": _read_csv,
        ".parquet": _read_parquet,
    }
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"data file {path} must be .jsonl, .csv or .parquet")
    try:
        return list(reader(path))
    except (UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"data file {path} is not readable text ({error})") from error
    except OSError as error:  # pyarrow: not a Parquet file, truncated footer
        raise DataError(f"data file {path} is not a readable table ({error})") from error


# Hub sets: dataset id, config, split, and how one row maps onto our record shape.
def _medquad_row(row: Mapping[str, Any]) -> dict[str, Any]:
    # question_id is per question; document_id is per source page and repeats across its questions.
    return {
        "id": row.get("question_id") or None,
        "question": row.get("question"),
        "answer": row.get("answer"),
        "focus": row.get("question_focus"),
        "category": row.get("question_type"),
    }


def _medqa_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"question": row.get("question"), "options": row.get("options"), "answer": row.get("answer_idx")}


def _o1_row(row: Mapping[str, Any]) -> dict[str, Any]:
    # The seeds train on the chain of thought followed by the response: the reasoning goes in think
    # tags, so prompts with thinking off learn (and evaluation scores) the final Response alone.
    from finetune.prompt import with_thinking

    reasoning, response = row.get("Complex_CoT") or "", row.get("Response") or ""
    answer = with_thinking(reasoning, response) if reasoning.strip() else response
    return {"question": row.get("Question"), "answer": answer}


def _pubmedqa_row(row: Mapping[str, Any]) -> dict[str, Any]:
    # The same shape as the local PubMedQA file (`context` + `question`), so _as_record renders
    # both alike. The hub's contexts are labelled sections, like the local file's lines.
    context = row.get("context") or {}
    labels = context.get("labels") or []
    sections = context.get("contexts") or []
    padded = [*labels, *[""] * (len(sections) - len(labels))]
    lines = [f"{label}: {text}" if label else text for label, text in zip(padded, sections, strict=True)]
    letter = {"yes": "A", "no": "B", "maybe": "C"}.get(str(row.get("final_decision")), "")
    return {
        "id": f"pubmedqa-{row.get('pubid')}",
        "question": row.get("question"),
        "context": "\n".join(lines),
        "options": {"A": "yes", "B": "no", "C": "maybe"},
        "answer": letter,
    }


def _medmcqa_row(row: Mapping[str, Any]) -> dict[str, Any]:
    # The hub's `cop` is a 0-based class label (0 -> A); the GitHub release's was 1-based.
    try:
        letter = "ABCD"[int(row.get("cop"))]  # a CSV export holds the number as text
    except (TypeError, ValueError, IndexError):
        letter = ""
    return {
        "id": row.get("id") or None,
        "question": row.get("question"),
        "options": {key: row.get(f"op{key.lower()}") for key in "ABCD"},
        "answer": letter,
        "category": row.get("subject_name"),
    }


def _input_output_row(row: Mapping[str, Any]) -> dict[str, Any]:
    # Alpaca layout (Medical Meadow's WikiDoc and flashcards, ChatDoctor-HealthCareMagic):
    # `instruction` is the same fixed system text on every row, so the question is `input`.
    return {"question": row.get("input"), "answer": row.get("output")}


def _icliniq_row(row: Mapping[str, Any]) -> dict[str, Any]:
    # The iCliniq doctor's own answer; the set also carries ChatGPT's and ChatDoctor's for comparison.
    return {"question": row.get("input"), "answer": row.get("answer_icliniq")}


def _medical_dataset_chat_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"question": row.get("input"), "answer": row.get("answer_chatdoctor")}


def _counselling_row(row: Mapping[str, Any]) -> dict[str, Any]:
    # One Context often has several counsellors' Responses: clean() keeps the first, counting the rest.
    return {"question": row.get("Context"), "answer": row.get("Response")}


def _ai_medical_chatbot_row(row: Mapping[str, Any]) -> dict[str, Any]:
    # Description is a one-line title of the patient's message ("Q. What does ... mean?").
    return {"question": row.get("Patient"), "answer": row.get("Doctor"), "focus": row.get("Description")}


def _medicationqa_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "question": row.get("Question"),
        "answer": row.get("Answer"),
        "focus": row.get("Focus (Drug)"),
        "category": row.get("Question Type"),
    }


@dataclass(frozen=True)
class HubSet:
    """A hub data set: where it lives, the columns a row of it has, and how a row maps onto a record.

    `columns` are the hub's own column names that `to_row` reads; a local export (JSONL, CSV or
    Parquet written from the hub split, e.g. with `Dataset.to_json`) must have them, so
    `--data NAME=FILE` reads it exactly as the hub copy.
    """

    repo: str
    config: str | None
    split: str
    to_row: Callable[[Mapping[str, Any]], dict[str, Any]]
    columns: tuple[str, ...]
    licence: str


HUB_SETS: dict[str, HubSet] = {
    "medquad": HubSet(
        "lavita/MedQuAD", None, "train", _medquad_row, ("question", "answer"), "CC BY 4.0"
    ),
    "wikidoc": HubSet(
        "medalpaca/medical_meadow_wikidoc", None, "train", _input_output_row, ("input", "output"), "CC BY-SA 4.0"
    ),
    "medqa-usmle": HubSet(
        "GBaker/MedQA-USMLE-4-options", None, "train", _medqa_row,
        ("question", "options", "answer_idx"), "MIT",
    ),
    "medical-o1": HubSet(
        "FreedomIntelligence/medical-o1-reasoning-SFT", "en", "train", _o1_row,
        ("Question", "Complex_CoT", "Response"), "Apache-2.0",
    ),
    "pubmedqa": HubSet(
        "qiaojin/PubMedQA", "pqa_labeled", "train", _pubmedqa_row,
        ("pubid", "question", "context", "final_decision"), "MIT",
    ),
    # The source studies' training sets.
    "chatdoctor-healthcaremagic": HubSet(
        "lavita/ChatDoctor-HealthCareMagic-100k", None, "train", _input_output_row,
        ("input", "output"), "none stated on the hub card (ChatDoctor release, research use)",
    ),
    "chatdoctor-icliniq": HubSet(
        "lavita/ChatDoctor-iCliniq", None, "train", _icliniq_row,
        ("input", "answer_icliniq"), "none stated on the hub card (ChatDoctor release, research use)",
    ),
    "medical-flashcards": HubSet(
        "medalpaca/medical_meadow_medical_flashcards", None, "train", _input_output_row,
        ("input", "output"), "CC (the hub card names no variant)",
    ),
    "mental-health-counselling": HubSet(
        "Amod/mental_health_counseling_conversations", None, "train", _counselling_row,
        ("Context", "Response"), "not verified offline (see the hub card; answers from counselchat.com)",
    ),
    "ai-medical-chatbot": HubSet(
        "ruslanmv/ai-medical-chatbot", None, "train", _ai_medical_chatbot_row,
        ("Description", "Patient", "Doctor"), "none stated on the hub card",
    ),
    "medical-dataset-chat": HubSet(
        "jayantdocplix/medical_dataset_chat", None, "train", _medical_dataset_chat_row,
        ("input", "answer_chatdoctor"), "none stated on the hub card",
    ),
    "medicationqa": HubSet(
        "truehealth/medicationqa", None, "train", _medicationqa_row,
        ("Question", "Focus (Drug)", "Question Type", "Answer"),
        "none stated on the hub card (Ben Abacha et al., MedInfo 2019)",
    ),
    "medmcqa": HubSet(
        "openlifescienceai/medmcqa", None, "train", _medmcqa_row,
        ("question", "opa", "opb", "opc", "opd", "cop"), "Apache-2.0",
    ),
}  # fmt: skip


def _read_hub(name: str) -> list[Mapping[str, Any] | None]:
    hub = HUB_SETS[name]
    try:
        import datasets

        rows = datasets.load_dataset(hub.repo, hub.config, split=hub.split)
    except Exception as error:  # offline, gated, renamed: all end the same way for the user
        raise DataError(
            f"hub data set {hub.repo} could not be loaded ({type(error).__name__}); use --data bundled, "
            f"a local .jsonl/.csv file, or a local export of it as --data {name}=FILE"
        ) from error
    return [hub.to_row(row) for row in rows]


def _read_export(name: str, path: Path) -> list[Mapping[str, Any] | None]:
    """A local export of hub set `name` in the hub's own columns, mapped as the hub copy is."""
    hub = HUB_SETS[name]
    rows = _read_file(path)
    present = next((row for row in rows if row is not None), None) or {}
    missing = [column for column in hub.columns if column not in present]
    if missing:
        raise DataError(
            f"data file {path} is not an export of {hub.repo}: it lacks the column(s) {', '.join(missing)}"
        )
    return [None if row is None else hub.to_row(row) for row in rows]


def content_hash(records: list[Record]) -> str:
    """sha256 over the records' text: the data set's identity in run.json."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps(asdict(record), sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def load_dataset_source(
    source: str, *, limit: int | None = None, rules: CleaningRules = CleaningRules(), seed: int = 42
) -> LoadedData:
    """Read, normalise and clean one source. Raises DataError with one sentence when unusable."""
    name, is_export, export_path = source.partition("=")
    record_source = None  # the `source` each record carries, when it differs from the label
    if source in BUNDLED:
        raw_rows, label = _read_file(BUNDLED[source]), source
    elif source in HUB_SETS:
        raw_rows, label = _read_hub(source), source
    elif is_export and name in HUB_SETS:
        # Records name the hub set, not the file: an export hashes the same as the hub copy it came from.
        path = Path(export_path).expanduser()
        raw_rows, label, record_source = _read_export(name, path), f"{name}={path}", name
    else:
        path = Path(source).expanduser()
        if is_export or not path.suffix:
            valid = ", ".join([*BUNDLED, *HUB_SETS])
            raise DataError(
                f"unknown data source {source!r}; use a .jsonl/.csv/.parquet path, one of: {valid}, "
                "or NAME=FILE for a local export of a hub set"
            )
        raw_rows, label = _read_file(path), str(path)
    records, report = clean(raw_rows, record_source or label, rules)
    if not records:
        raise DataError(f"data source {label} has no usable records after cleaning ({report.summary()})")
    kinds = {type(record) for record in records}
    if len(kinds) > 1:
        raise DataError(f"data source {label} mixes free-text and multiple-choice records; split it in two")
    if limit is not None and limit < len(records):
        # A seeded random sample in file order: the first N of a file are often one topic.
        keep = sorted(random.Random(seed).sample(range(len(records)), limit))
        records = [records[i] for i in keep]
    kind = "multiple_choice" if kinds == {MCQRecord} else "free_text"
    return LoadedData(
        source=label, kind=kind, records=records, report=report, content_hash=content_hash(records)
    )


def split_records(
    records: list[Record], *, seed: int = 42, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> Split:
    """Deterministic train/validation/test split: records ordered by a seeded hash of their id.

    Hash order (rather than a shuffled list) keeps each record's side stable when the file
    gains or loses other records.
    """
    ordered = sorted(
        records, key=lambda r: hashlib.sha256(f"{seed}|{r.id}|{r.question}".encode()).hexdigest()
    )
    n = len(ordered)
    n_train = round(n * fractions[0])
    n_validation = round(n * fractions[1])
    if n >= 3:  # every side gets at least one record, so validation loss always exists
        n_validation = max(1, n_validation)
        n_train = min(max(1, n_train), n - n_validation - 1)
    return Split(
        train=ordered[:n_train],
        validation=ordered[n_train : n_train + n_validation],
        test=ordered[n_train + n_validation :],
    )


def target_text(record: Record, thinking: bool = True) -> str:
    """What the model learns to answer: the reference text, or 'Answer: X. <option>'.

    With `thinking=False` a reference's think block (medical-o1's chain of thought) is left out.
    """
    from finetune.prompt import final_answer, mcq_target

    if isinstance(record, MCQRecord):
        return mcq_target(record.answer, record.options)
    return record.answer if thinking else final_answer(record.answer)


def reference_text(record: Record) -> str:
    """What a free-text answer is scored against: the reference's final answer, no think block."""
    from finetune.prompt import final_answer

    return final_answer(record.answer)


if __name__ == "__main__":  # `python -m finetune.data --describe SOURCE ...`: the command's first name
    import runpy
    import sys

    # runpy, not an import: the describer imports this module, so it runs above it, not beside it
    if sys.argv[1:2] != ["--describe"]:
        sys.exit(
            "usage: python -m finetune.data --describe SOURCE [options of python -m finetune.data_describe]"
        )
    sys.argv = ["finetune.data_describe", *sys.argv[2:]]
    runpy.run_module("finetune.data_describe", run_name="__main__", alter_sys=True)
