"""Evaluation data: load, clean and split a QA source the way training does, and the evaluation errors.

    from arena.eval.data import load_eval_set
    eval_set = load_eval_set("bundled", "test", limit=20)

Run as: python -c "from arena.eval.data import load_eval_set; print(len(load_eval_set('bundled', 'test', 5).records))"
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune.data import DataError, Record, content_hash, load_dataset_source
from finetune.data import split_records as deterministic_split

SPLITS = ("test", "validation", "train", "all")


class EvaluationError(ValueError):
    """An evaluation that cannot run as asked; the message is one sentence fit for a person."""


class UnknownAdapterError(EvaluationError):
    """The asked-for adapter run does not exist for that model."""


class ReferenceFreeDataError(EvaluationError):
    """The data set has questions but no reference answers, so reference metrics cannot be computed."""


class EmptySplitError(EvaluationError):
    """The chosen split of the data set holds no record."""


@dataclass(frozen=True)
class EvalSet:
    """The records one evaluation scores, and how to name them in results."""

    label: str  # short name stored in the `dataset` column
    source: str  # what load_dataset_source was given
    kind: str  # "free_text" or "multiple_choice"
    split: str
    records: list[Record]

    @property
    def content_hash(self) -> str:
        """Hash of the evaluated records only: the same hash means the very same questions and references."""
        return content_hash(self.records)


def dataset_label(source: str) -> str:
    """'bundled', a hub set name, or a file's stem ('../shared/data/medquad/medquad.jsonl' -> 'medquad')."""
    path = Path(source)
    return path.stem if path.suffix else source


def load_eval_set(source: str, split: str, limit: int | None, *, split_seed: int = 42) -> EvalSet:
    """Load, clean and split a source the way training does, then keep the first `limit` of `split`."""
    if split not in SPLITS:
        raise EvaluationError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    try:
        loaded = load_dataset_source(source)
    except DataError:
        if _has_questions_without_answers(source):
            raise ReferenceFreeDataError(
                f"data set {source} has questions but no reference answers, so reference metrics "
                "(BERTScore, embedding score, ROUGE, MCQ accuracy) cannot be computed; put it in the arena instead"
            ) from None
        raise
    if split == "all":
        records = loaded.records
    else:
        records = getattr(deterministic_split(loaded.records, seed=split_seed), split)
    if not records:
        raise EmptySplitError(
            f"the {split} split of {loaded.source} is empty ({len(loaded.records)} records in all); "
            "use --split all for a file this small"
        )
    if limit is not None:
        records = records[:limit]
    return EvalSet(
        label=dataset_label(loaded.source),
        source=loaded.source,
        kind=loaded.kind,
        split=split,
        records=list(records),
    )


def _has_questions_without_answers(source: str) -> bool:
    """True for a local .jsonl/.csv whose rows carry questions and not a single non-empty answer."""
    path = Path(source).expanduser()
    if path.suffix.lower() not in {".jsonl", ".csv"} or not path.is_file():
        return False
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            if path.suffix.lower() == ".csv":
                rows: list[Any] = list(csv.DictReader(handle))
            else:
                rows = [json.loads(line) for line in handle if line.strip()]
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error):
        return False
    rows = [row for row in rows if isinstance(row, dict)]

    def filled(row: Mapping[str, Any], key: str) -> bool:
        value = row.get(key)
        return isinstance(value, str) and bool(value.strip())

    return any(filled(row, "question") for row in rows) and not any(filled(row, "answer") for row in rows)
