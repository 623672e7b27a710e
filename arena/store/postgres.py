"""The Postgres vote store: the same tables and checks as the SQLite store (`arena.store.battles.BattleTables`),
on a server several app replicas share. psycopg 3 with a connection pool; each write is one transaction;
the row a vote or a finish depends on is locked (``SELECT ... FOR UPDATE``); the unique index on
``votes.battle_id`` makes a double vote from two replicas store one row. psycopg's exceptions leave the
store as `StoreUnavailable` or `UniqueViolation` (`arena.store.protocol`), never as psycopg types.

    from arena.store.postgres import PostgresStore
    store = PostgresStore("postgresql://arena@db.internal/medarena")   # or MEDARENA_VOTES_URL / --votes-url
    store.problem                                                      # None, or a sentence for a banner

Run as: python -m pytest tests/test_store.py -q -k postgres
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal

from arena.store.battles import BattleTables
from arena.store.protocol import StoreError, StoreUnavailable, UniqueViolation
from arena.store.schema import apply_schema
from arena.store.sql import insert_sql
from arena.store.sqlite_db import utc_now

POSTGRES_URL_PREFIXES = ("postgresql://", "postgres://")
# Any fixed number: every replica opening the store takes this lock, so two never create tables at once.
_SCHEMA_LOCK_KEY = 20_202_020


def is_postgres_url(location: object) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL, False for a file path."""
    return isinstance(location, str) and location.startswith(POSTGRES_URL_PREFIXES)


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _placeholders(sql: str) -> str:
    """The shared table code writes ``?``; psycopg wants ``%s`` (and a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresSession:
    """One pooled connection inside a transaction (or an autocommit read), as the table code sees it."""

    dialect: Literal["postgres"] = "postgres"

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.connection.cursor() as cursor:
            cursor.execute(_placeholders(sql), list(params))
            return [dict(row) for row in cursor.fetchall()]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self.connection.cursor() as cursor:
            cursor.execute(_placeholders(sql), list(params))
            return cursor.rowcount

    def insert(self, table: str, row: Mapping[str, Any], *, replace_on: str | None = None) -> None:
        import psycopg

        sql, params = insert_sql(table, row, replace_on)
        try:
            self.execute(sql, params)
        except psycopg.errors.UniqueViolation as error:
            raise UniqueViolation(f"A {table} row repeats a unique key ({error}).") from None


class PostgresConnection:
    """Pool, transactions and clock of one Postgres vote database (mixed into `PostgresStore`)."""

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 16,
        connect_timeout_s: float = 10.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """Open a pool on ``url`` and bring the schema up to date; a server that cannot be reached or
        written leaves a sentence in ``self.problem`` instead of raising."""
        import psycopg
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        self.warnings: list[str] = []
        self.url = url
        self.location = redact_url(url)
        self._clock = clock
        self.problem: str | None = None
        self._errors: tuple[type[BaseException], ...] = (psycopg.Error,)
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "connect_timeout": max(1, round(connect_timeout_s)),
            },
            timeout=connect_timeout_s,
            open=False,
            name="medarena-votes",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout_s)
            with self._transaction() as session:
                session.query("SELECT pg_advisory_xact_lock(?)", [_SCHEMA_LOCK_KEY])
                apply_schema(session)
            self.problem = self.check_writable()
        except StoreError as error:
            self.problem = str(error)
        except Exception as error:  # the pool's own timeout when the server is down
            self.problem = self._unreachable(error)

    def _unreachable(self, error: BaseException) -> str:
        return (
            f"The Postgres vote database {self.location} cannot be reached or written ({type(error).__name__}: "
            f"{str(error).strip()}); votes cannot be saved."
        )

    def check_writable(self) -> str | None:
        """Write a heartbeat row for real; a server that refuses comes back as a sentence."""
        try:
            with self._transaction() as session:
                session.insert("meta", {"key": "checked_at", "value": self._now()}, replace_on="key")
        except StoreError as error:
            return self._unreachable(error.__cause__ or error)
        return None

    @contextmanager
    def _mapped_errors(self) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except self._errors as error:
            raise StoreUnavailable(self._unreachable(error)) from error
        except Exception as error:
            from psycopg_pool import PoolTimeout

            if isinstance(error, PoolTimeout):
                raise StoreUnavailable(self._unreachable(error)) from error
            raise

    @contextmanager
    def _connection(self) -> Iterator[PostgresSession]:
        with self._mapped_errors(), self._pool.connection() as connection:
            yield PostgresSession(connection)

    @contextmanager
    def _transaction(self) -> Iterator[PostgresSession]:
        with self._mapped_errors(), self._pool.connection() as connection, connection.transaction():
            yield PostgresSession(connection)

    def now(self) -> datetime:
        """The store's clock (what stamps rows), for callers computing cut-offs such as stale battles."""
        return self._clock()

    def close(self) -> None:
        """Close the pool's connections (the store cannot be used afterwards)."""
        self._pool.close()


class PostgresStore(PostgresConnection, BattleTables):
    """The arena's votes on a Postgres server: what replicas behind a load balancer share."""
