"""The DPO export folder both halves agree on: its file names, and reading its pairs back with their
hash checked against `snapshot.json`. The arena writes the folder (`arena.dpo_export`, `python -m
arena.export --format dpo`); `python -m finetune --dpo DIR` reads it here, so finetune never imports
the arena.

    from finetune.dpo_pairs import read_pairs
    pairs, snapshot = read_pairs(Path("dpo"))   # raises SnapshotMismatch if pairs.jsonl was edited

Run as: python -m pytest tests/test_dpo_export.py -q
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

PAIRS_FILE, DATASET_DIR, SNAPSHOT_FILE = "pairs.jsonl", "dataset", "snapshot.json"


class SnapshotMismatch(ValueError):
    """pairs.jsonl does not match the snapshot.json beside it."""


def read_pairs(folder: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The pairs of an export folder and its snapshot, after checking the pairs' hash against it."""
    pairs_path, snapshot_path = folder / PAIRS_FILE, folder / SNAPSHOT_FILE
    if not pairs_path.is_file() or not snapshot_path.is_file():
        raise SnapshotMismatch(
            f"{folder} is not a DPO export (needs {PAIRS_FILE} and {SNAPSHOT_FILE}); "
            "write one with python -m arena.export --format dpo"
        )
    raw = pairs_path.read_bytes()
    snapshot = json.loads(snapshot_path.read_text(encoding="utf-8"))
    if hashlib.sha256(raw).hexdigest() != snapshot.get("pairs_sha256"):
        raise SnapshotMismatch(
            f"{pairs_path} was changed after export: its sha256 differs from {snapshot_path}."
        )
    pairs = [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]
    return pairs, snapshot
