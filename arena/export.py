"""Export the arena's votes (each joined with its battle) to CSV and/or JSON Lines for analysis.

Usage::

    python -m arena.export   # $MEDARENA_VOTES_DB or ./votes.db -> ./votes.csv and ./votes.jsonl
    python -m arena.export --db /data/votes.db --format csv --out results/

Writes ``votes.csv`` and/or ``votes.jsonl`` into ``--out`` and prints each path with its vote count. A
missing database is an error (exit status 1): the exporter never creates an empty one.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from arena.store import ArenaStore, default_db_path

FORMATS = ("csv", "jsonl")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m arena.export", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", type=Path, default=None, help="vote database (default: $MEDARENA_VOTES_DB or ./votes.db)"
    )
    parser.add_argument(
        "--format", choices=[*FORMATS, "both"], default="both", help="what to write (default: both)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("."), help="folder for votes.csv / votes.jsonl (default: .)"
    )
    return parser.parse_args(argv)


def export_votes(store: ArenaStore, out_dir: Path, formats: tuple[str, ...]) -> list[tuple[Path, int]]:
    """Write the requested formats into ``out_dir``; returns (path, vote count) for each file written."""
    writers = {"csv": store.export_votes_csv, "jsonl": store.export_votes_jsonl}
    written = []
    for file_format in formats:
        path = out_dir / f"votes.{file_format}"
        written.append((path, writers[file_format](path)))
    return written


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    db_path: Path = args.db if args.db is not None else default_db_path()
    if not db_path.is_file():
        print(f"error: no vote database at {db_path} (pass --db or set MEDARENA_VOTES_DB)", file=sys.stderr)
        return 1
    formats = FORMATS if args.format == "both" else (args.format,)
    try:
        written = export_votes(ArenaStore(db_path), args.out, formats)
    except (sqlite3.Error, OSError) as error:
        print(f"error: could not export votes from {db_path}: {error}", file=sys.stderr)
        return 1
    for path, count in written:
        print(f"{path}: {count} votes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
