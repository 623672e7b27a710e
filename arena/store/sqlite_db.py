"""The SQLite store's connection layer: open (WAL, or a rollback journal where WAL cannot lock), one
short-lived connection per operation, `BEGIN IMMEDIATE` transactions with writers taking turns on a lock
file, the schema step (`arena.store.schema`) and the start-up read-only/full-disk check. Each operation
runs on a `SqliteSession` (sqlite-utils underneath); sqlite3 errors leave it as `StoreUnavailable` or
`UniqueViolation`. `arena.store.battles.ArenaStore` puts the shared table code on `StoreConnection`.

    from arena.store.sqlite_db import StoreConnection
    StoreConnection(path).problem   # None, or a sentence for a banner

Run as: python -m pytest tests/test_store_hardening.py -q
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlite_utils import Database

from arena.store.protocol import StoreError, StoreUnavailable, UniqueViolation
from arena.store.schema import apply_schema
from arena.store.sql import SqlStoreBase, insert_sql
from finetune.paths import project_paths

MIN_FREE_DISK_BYTES = 16 * 2**20  # below this a start-up check reports the disk as (nearly) full


def default_db_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the vote database lives: ``$MEDARENA_VOTES_DB`` if set, else ``votes.db`` of the checkout.

    Resolved by `finetune.paths` (never the working directory). On a Hugging Face Space the app sets
    ``MEDARENA_VOTES_DB=/data/votes.db`` so that votes land on the persistent volume.
    """
    return project_paths(environ).votes_db


def utc_now() -> datetime:
    """The current time, timezone-aware (the store's default clock)."""
    return datetime.now(UTC)


class SqliteSession:
    """One SQLite connection inside a transaction or a read, as the shared table code sees it."""

    dialect: Literal["sqlite"] = "sqlite"

    def __init__(self, db: Database) -> None:
        self.db = db

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(row) for row in self.db.query(sql, list(params))]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.db.execute(sql, list(params)).rowcount

    def insert(self, table: str, row: Mapping[str, Any], *, replace_on: str | None = None) -> None:
        sql, params = insert_sql(table, row, replace_on)
        try:
            self.db.execute(sql, params)
        except sqlite3.IntegrityError as error:
            if error.sqlite_errorname in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
                raise UniqueViolation(f"A {table} row repeats a unique key ({error}).") from None
            raise


class StoreConnection(SqlStoreBase):
    """Connections, transactions and the clock of one SQLite vote database (the tables' methods live in
    `arena.store.battles`, `arena.store.reads` and `arena.store.eval_tables`)."""

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout_s: float = 30.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """Open or create the database at ``path`` (parent folders included), in WAL mode (a rollback
        journal, with a warning in ``self.warnings``, where the filesystem cannot lock WAL).

        ``busy_timeout_s`` is how long a writer waits for another writer's lock before failing;
        ``clock`` must return timezone-aware datetimes and is what stamps every row.
        """
        if str(path) == ":memory:":
            raise ValueError("ArenaStore needs a file path: ':memory:' would lose data between operations.")
        super().__init__()  # self.warnings: for the person running the arena (e.g. no WAL here)
        self.path = Path(path)
        self.location = str(self.path)
        self._busy_timeout_s = busy_timeout_s
        self._clock = clock
        self.problem: str | None = None  # a sentence for a banner when the file cannot take votes
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fallback = _enable_wal_or_rollback_journal(self.path, busy_timeout_s)
            if fallback:
                logging.getLogger(__name__).warning(fallback)
                self.warnings.append(fallback)
            with self._transaction() as session:
                apply_schema(session)
            self.problem = self.check_writable()
        except StoreUnavailable as error:
            self.problem = _storage_problem(self.path, error.__cause__ or error)
        except StoreError as error:  # e.g. a file from a newer schema version
            self.problem = str(error)
        except (sqlite3.Error, OSError) as error:
            self.problem = _storage_problem(self.path, error)

    def check_writable(self) -> str | None:
        """Write a heartbeat row for real; a read-only file or a full disk comes back as a sentence."""
        try:
            free = shutil.disk_usage(self.path.parent).free
            with self._transaction() as session:
                session.insert("meta", {"key": "checked_at", "value": self._now()}, replace_on="key")
        except StoreUnavailable as error:
            return _storage_problem(self.path, error.__cause__ or error)
        except (sqlite3.Error, OSError) as error:
            return _storage_problem(self.path, error)
        if free < MIN_FREE_DISK_BYTES:
            return (
                f"The disk holding {self.path} has only {free / 2**20:.1f} MB free; votes may fail to save. "
                "Free some space and restart."
            )
        return None

    # -- connections -------------------------------------------------------------------------------

    @contextmanager
    def _open(self) -> Iterator[Database]:
        connection = sqlite3.connect(self.path, timeout=self._busy_timeout_s)
        try:
            db = Database(connection, execute_plugins=False)
            db.execute("PRAGMA foreign_keys = ON")
            # FULL (not WAL's usual NORMAL) so an acknowledged vote also survives a power cut.
            db.execute("PRAGMA synchronous = FULL")
            yield db
        finally:
            connection.close()

    @contextmanager
    def _connection(self) -> Iterator[SqliteSession]:
        with _mapped_errors(self.path), self._open() as db:
            yield SqliteSession(db)

    @contextmanager
    def _transaction(self) -> Iterator[SqliteSession]:
        # IMMEDIATE takes the write lock up front: a deferred transaction that reads and then writes can
        # fail with "database is locked" under contention instead of waiting its turn.
        with _mapped_errors(self.path), _writer_turn(self.path), self._open() as db:
            db.conn.execute("BEGIN IMMEDIATE")
            try:
                yield SqliteSession(db)
            except BaseException:
                db.rollback()
                raise
            try:
                db.conn.execute("COMMIT")
            except BaseException:
                db.rollback()
                raise

    def now(self) -> datetime:
        """The store's clock (what stamps rows), for callers computing cut-offs such as stale battles."""
        return self._clock()


@contextmanager
def _mapped_errors(path: Path) -> Iterator[None]:
    """sqlite3's exceptions leave the store as `StoreUnavailable` carrying the storage sentence (read-only,
    disk full, or the error itself), naming the file."""
    try:
        yield
    except sqlite3.Error as error:
        raise StoreUnavailable(_storage_problem(path, error)) from error


def _enable_wal_or_rollback_journal(path: Path, timeout_s: float) -> str | None:
    """Put the database in WAL mode if this filesystem can lock it; else use a rollback journal.

    WAL needs shared memory beside the file (``-shm``), which network filesystems (NFS, some FUSE
    mounts such as a Space's ``/data``) may not support: there the mode switch succeeds but the first
    write fails. So a write transaction is tried; on failure the file is switched back, in exclusive
    locking mode (which needs no shared memory), to the rollback journal, and a warning is returned.
    """
    connection = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return None
    except sqlite3.OperationalError as error:
        reason = str(error)
    finally:
        connection.close()
    connection = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
    try:
        connection.execute("PRAGMA locking_mode = EXCLUSIVE")
        connection.execute("PRAGMA journal_mode = DELETE")
    finally:
        connection.close()
    return (
        f"The filesystem holding {path} does not support SQLite's WAL locking ({reason}), so the vote "
        "database uses a rollback journal instead: votes are still safe, but concurrent voters wait longer."
    )


def _storage_problem(path: Path, error: BaseException) -> str:
    text = str(error).lower()
    # access() also answers EROFS for root, whose permission bits are otherwise ignored
    read_only = not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK))
    if (
        read_only
        or "readonly" in text
        or "read-only" in text
        or "read only" in text
        or isinstance(error, PermissionError)
    ):
        return f"The vote database {path} is read-only, so votes cannot be saved. Fix its permissions and restart."
    if "full" in text or getattr(error, "errno", None) == 28:
        return f"The disk holding the vote database {path} is full, so votes cannot be saved. Free space and restart."
    return f"The vote database {path} cannot be written ({type(error).__name__}: {error}); votes cannot be saved."


@contextmanager
def _writer_turn(path: Path) -> Iterator[None]:
    """Queue writers (threads and processes alike) on a kernel file lock beside the database.

    SQLite's own busy handler polls with sleeps of up to 100 ms, so 16 contending voters measured a
    p99 vote latency of ~1 s; a blocking flock wakes the next writer the moment the lock is free.
    The kernel drops the lock of a killed process. Where the lock file cannot be made (a read-only
    folder), SQLite's busy handler alone does the queueing.
    """
    try:
        handle = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock
