"""What the table code shares between the SQLite and Postgres stores: the base class that says how a store
opens a transaction or a read (`SqlStoreBase`), plain-SQL builders for inserts and updates, and the field
checks of evaluation and cache rows. The tables themselves are `arena.store.eval_tables`, `arena.store.reads` and
`arena.store.battles`; the connections are `arena.store.sqlite_db` (SQLite) and `arena.store.postgres`.

Run as: python -m pytest tests/test_store.py -q
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from arena.store.protocol import InvalidRecord, SqlSession


class SqlStoreBase(ABC):
    """A store's connection side: one transaction, one read, the clock. Holds no open transaction, so one
    instance serves every thread."""

    problem: str | None = None  # a sentence for a banner when the store cannot take votes
    location: str = ""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[SqlSession]:
        """A write transaction: committed when the block ends, rolled back if it raises."""

    @abstractmethod
    def _connection(self) -> AbstractContextManager[SqlSession]:
        """A read (no transaction needed beyond the statement)."""

    @abstractmethod
    def now(self) -> datetime:
        """The store's clock (what stamps rows), for callers computing cut-offs such as stale battles."""

    def _now(self) -> str:
        return self.now().astimezone(UTC).isoformat(timespec="microseconds")

    def close(self) -> None:  # noqa: B027 - optional hook: only a store holding a pool overrides it
        """Release connections (nothing to release unless a subclass holds a pool)."""


def lock_for_update(session: SqlSession) -> str:
    """Suffix for a SELECT that the transaction will update: Postgres locks the row for the rest of the
    transaction; SQLite's ``BEGIN IMMEDIATE`` has already locked the whole database."""
    return " FOR UPDATE" if session.dialect == "postgres" else ""


def insert_sql(table: str, row: Mapping[str, Any], replace_on: str | None = None) -> tuple[str, list[Any]]:
    """An INSERT of one row with ``?`` placeholders; with `replace_on`, the row with that key is
    overwritten (``ON CONFLICT ... DO UPDATE``, which SQLite and Postgres both speak)."""
    columns = list(row)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    if replace_on is not None:
        updates = ", ".join(f"{column} = excluded.{column}" for column in columns if column != replace_on)
        sql += f" ON CONFLICT ({replace_on}) DO UPDATE SET {updates}"
    return sql, [row[column] for column in columns]


def update_sql(table: str, key_column: str, key: Any, updates: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """An UPDATE of one row by its key, with ``?`` placeholders."""
    assignments = ", ".join(f"{column} = ?" for column in updates)
    return f"UPDATE {table} SET {assignments} WHERE {key_column} = ?", [*updates.values(), key]


def is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_fields(
    what: str, row: Mapping[str, Any], required: tuple[str, ...], optional: tuple[str, ...]
) -> None:
    """Refuse a row with a missing required or an unknown field, naming them."""
    missing = [field for field in required if row.get(field) is None]
    if missing:
        raise InvalidRecord(f"{what} is missing {', '.join(missing)}.")
    unknown = sorted(set(row) - set(required) - set(optional))
    if unknown:
        raise InvalidRecord(f"{what} has unknown field(s) {', '.join(unknown)}.")
