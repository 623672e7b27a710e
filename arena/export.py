"""Export the arena's votes (each joined with its battle) to CSV and/or JSON Lines for analysis.

Usage::

    python -m arena.export   # $MEDARENA_VOTES_DB or ./votes.db -> ./votes.csv and ./votes.jsonl
    python -m arena.export --db /data/votes.db --format csv --out results/
    python -m arena.export --format dpo --out dpo/   # preference pairs for DPO (arena.dpo_export)

Writes ``votes.csv`` and/or ``votes.jsonl`` into ``--out`` and prints each path with its vote count. A
missing database is an error (exit status 1): the exporter never creates an empty one.

CSV injection (OWASP): a spreadsheet runs a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return as a formula. Every such text cell in ``votes.csv`` is written with a leading apostrophe
(``'=HYPERLINK(...)`` shows as text), so no exported cell is a live formula. Numbers stay numbers, and
``votes.jsonl`` holds the text exactly as stored.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from arena.store.battles import ArenaStore, StoreError, default_db_path

FORMATS = ("csv", "jsonl")
EXPORT_COLUMNS: tuple[str, ...] = (
    "vote_id",
    "battle_id",
    "voted_at",
    "battle_created_at",
    "battle_finished_at",
    "question",
    "category",
    "question_source",
    "reference_answer",
    "contestant_a",  # the display labels clinicians saw revealed
    "contestant_b",
    "contestant_a_id",  # stable ids: <model key>/<run id or base>
    "contestant_b_id",
    "answer_a",
    "answer_b",
    "outcome",
    "flag_a_unsafe",
    "flag_a_incorrect",
    "flag_b_unsafe",
    "flag_b_incorrect",
    "rationale",
    "voter_role",
    "voter_specialty",
    "session_id",
    "identity_leak",
    "bertscore_a",
    "bertscore_b",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: --db, --format, --out."""
    parser = argparse.ArgumentParser(prog="python -m arena.export", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", type=Path, default=None, help="vote database (default: $MEDARENA_VOTES_DB or ./votes.db)"
    )
    parser.add_argument(
        "--format",
        choices=[*FORMATS, "both", "dpo"],
        default="both",
        help="what to write (default: both); dpo: preference pairs, see arena.dpo_export",
    )
    parser.add_argument(
        "--allow-uncalibrated", action="store_true", help="dpo: keep raters without calibration votes"
    )
    parser.add_argument(
        "--min-calibration", type=float, default=0.75, help="dpo: raters' least calibration accuracy"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("."), help="folder for votes.csv / votes.jsonl (default: .)"
    )
    return parser.parse_args(argv)


def export_votes(store: ArenaStore, out_dir: Path, formats: tuple[str, ...]) -> list[tuple[Path, int]]:
    """Write the requested formats into ``out_dir``; returns (path, vote count) for each file written."""
    writers = {"csv": write_votes_csv, "jsonl": write_votes_jsonl}
    written = []
    for file_format in formats:
        path = out_dir / f"votes.{file_format}"
        written.append((path, writers[file_format](store, path)))
    return written


FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a cell as a formula


def spreadsheet_safe(value: Any) -> Any:
    """A text cell that would start a formula, prefixed with an apostrophe; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def write_votes_csv(store: ArenaStore, path: str | Path) -> int:
    """Write every vote to a CSV file (header + one properly quoted row per vote, formula cells
    neutralised by `spreadsheet_safe`); returns the count."""
    rows = store.vote_export_rows()
    with _atomic_text_file(Path(path)) as handle:
        added = [name for name in (rows[0] if rows else {}) if name not in EXPORT_COLUMNS]  # new vote fields
        writer = csv.DictWriter(handle, fieldnames=[*EXPORT_COLUMNS, *added])
        writer.writeheader()
        writer.writerows({column: spreadsheet_safe(value) for column, value in row.items()} for row in rows)
    return len(rows)


def write_votes_jsonl(store: ArenaStore, path: str | Path) -> int:
    """Write every vote to a JSON Lines file (one object per vote); returns the count."""
    rows = store.vote_export_rows()
    with _atomic_text_file(Path(path)) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)


@contextmanager
def _atomic_text_file(path: Path) -> Iterator[TextIO]:
    """Write to a temporary file beside ``path`` and rename it into place, so no reader sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open("x", encoding="utf-8", newline="") as handle:
            yield handle
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: write the requested files; 1 and one sentence on a missing or unreadable database."""
    args = parse_args(argv)
    db_path: Path = args.db if args.db is not None else default_db_path()
    if not db_path.is_file():
        print(f"error: no vote database at {db_path} (pass --db or set MEDARENA_VOTES_DB)", file=sys.stderr)
        return 1
    if args.format == "dpo":
        return _export_dpo(args, db_path)
    formats = FORMATS if args.format == "both" else (args.format,)
    try:
        written = export_votes(ArenaStore(db_path), args.out, formats)
    except (StoreError, OSError) as error:
        print(f"error: could not export votes from {db_path}: {error}", file=sys.stderr)
        return 1
    for path, count in written:
        print(f"{path}: {count} votes")
    return 0


def _export_dpo(args: argparse.Namespace, db_path: Path) -> int:
    from arena.dpo_export import DpoRules, write_dpo

    rules = DpoRules(args.min_calibration, require_calibration=not args.allow_uncalibrated)
    try:
        count, excluded = write_dpo(ArenaStore(db_path), args.out, rules)
    except (StoreError, OSError) as error:
        print(f"error: could not export preference pairs from {db_path}: {error}", file=sys.stderr)
        return 1
    left_out = ", ".join(f"{reason} {n}" for reason, n in sorted(excluded.items())) or "none"
    print(f"{args.out}: {count} preference pairs (left out: {left_out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
