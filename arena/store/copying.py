"""Copy a SQLite vote database into another store (a Postgres server, or another SQLite file): battles,
votes, evaluation results and cached answers. Idempotent and resumable: rows go over in batches of
`BATCH_ROWS`, one transaction each, and a row whose key is already in the target is skipped (battles by
id, votes by battle, evaluation results by run/contestant/dataset/split/metric, cached answers by key), so
a copy that was killed is finished by running it again, and a second run copies nothing. A source or
target written by a different schema version is refused before anything is copied.

    python -m arena.store copy --from votes.db --to postgresql://arena@db.internal/medarena

Run as: python -m pytest tests/test_store_copy.py -q
"""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from arena.store.opening import open_store
from arena.store.protocol import SchemaMismatch, StoreError, StoreUnavailable
from arena.store.schema import SCHEMA_VERSION, current_tables
from arena.store.sql import SqlStoreBase

BATCH_ROWS = 500
# (table, the order rows are read in, columns left for the target to number)
_COPIED_TABLES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("battles", "created_at, id", ()),
    ("votes", "id", ("id",)),  # a vote is known by its battle; the target numbers it
    ("eval_results", "id", ("id",)),
    ("eval_cache", "key", ()),
)


@dataclass(frozen=True)
class TableCopy:
    """How one table's copy went: rows read from the source, rows new in the target."""

    table: str
    read: int
    copied: int


def source_version(path: Path) -> int:
    """The schema version of a SQLite file, read without changing it."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return int(connection.execute("PRAGMA user_version").fetchone()[0])
    finally:
        connection.close()


def _source_batches(path: Path, table: str, order: str, columns: list[str]) -> Iterator[list[dict]]:
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    connection.row_factory = sqlite3.Row
    try:
        cursor = connection.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}")
        while rows := cursor.fetchmany(BATCH_ROWS):
            yield [dict(row) for row in rows]
    finally:
        connection.close()


def copy_votes(source: Path, target: str | Path) -> list[TableCopy]:
    """Copy every table of the SQLite file `source` into `target` (URL or path); see the module doc."""
    if not Path(source).is_file():
        raise StoreError(f"There is no vote database at {source} to copy from.")
    found = source_version(Path(source))
    if found != SCHEMA_VERSION:
        raise SchemaMismatch(
            f"{source} is at schema version {found}, but this MedArena writes version {SCHEMA_VERSION}. "
            "Open it once with this version's app (which migrates it in place), then copy it."
        )
    store = open_store(target)
    try:
        if store.problem:
            raise StoreError(store.problem)
        assert isinstance(store, SqlStoreBase)
        tables = current_tables()
        report = []
        for table, order, numbered_by_target in _COPIED_TABLES:
            columns = [name for name in tables[table].column_names() if name not in numbered_by_target]
            placeholders = ", ".join("?" for _ in columns)
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) ON CONFLICT DO NOTHING"
            read = copied = 0
            for batch in _source_batches(Path(source), table, order, columns):
                with store._transaction() as session:
                    for row in batch:
                        copied += session.execute(sql, [row[column] for column in columns])
                read += len(batch)
            report.append(TableCopy(table, read, copied))
        return report
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m arena.store", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    copy = commands.add_parser("copy", help="copy a SQLite vote database into Postgres (or another file)")
    copy.add_argument("--from", dest="source", type=Path, required=True, help="the SQLite votes.db to read")
    copy.add_argument("--to", dest="target", required=True, help="postgresql://... URL or a SQLite path")
    args = parser.parse_args(argv)
    try:
        report = copy_votes(args.source, args.target)
    except StoreUnavailable as error:  # mid-copy: the batches committed so far stay
        print(f"Copy stopped: {error} Rows already copied stay; the same command resumes.")
        return 2
    except StoreError as error:  # refused before anything was copied
        print(f"Nothing copied: {error}")
        return 2
    for line in report:
        print(f"{line.table}: {line.copied} copied, {line.read - line.copied} already there")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
