"""The vote database's connection layer: open (WAL, or a rollback journal where WAL cannot lock), one
short-lived connection per operation, `BEGIN IMMEDIATE` transactions with writers taking turns on a lock
file, the schema step (`arena.store_schema`) and the start-up read-only/full-disk check.
`arena.store` builds the tables' methods on `StoreConnection`.

    from arena.store_db import StoreConnection
    StoreConnection(path).problem   # None, or a sentence for a banner

Run as: python -m pytest tests/test_store_hardening.py -q
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from arena.store_schema import create_schema
from finetune.paths import project_paths

MIN_FREE_DISK_BYTES = 16 * 2**20  # below this a start-up check reports the disk as (nearly) full


class StoreError(Exception):
    """Base class for the store's refusals; the message is a sentence fit to show a person."""


class InvalidRecord(StoreError, ValueError):
    """A battle, evaluation result or cache row has missing, unknown or malformed fields."""


def default_db_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the vote database lives: ``$MEDARENA_VOTES_DB`` if set, else ``votes.db`` of the checkout.

    Resolved by `finetune.paths` (never the working directory). On a Hugging Face Space the app sets
    ``MEDARENA_VOTES_DB=/data/votes.db`` so that votes land on the persistent volume.
    """
    return project_paths(environ).votes_db


def utc_now() -> datetime:
    """The current time, timezone-aware (the store's default clock)."""
    return datetime.now(UTC)


class StoreConnection:
    """Connections, transactions and the clock of one SQLite vote database (the tables' methods live in
    `arena.store.ArenaStore` and `arena.store_eval.EvalTables`)."""

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
        self.path = Path(path)
        self._busy_timeout_s = busy_timeout_s
        self._clock = clock
        self.problem: str | None = None  # a sentence for a banner when the file cannot take votes
        # Messages for the person running the arena (e.g. no WAL on this filesystem); app.py shows them.
        self.warnings: list[str] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fallback = _enable_wal_or_rollback_journal(self.path, busy_timeout_s)
            if fallback:
                logging.getLogger(__name__).warning(fallback)
                self.warnings.append(fallback)
            with self._transaction() as db:
                create_schema(db)
            self.problem = self.check_writable()
        except (sqlite3.Error, OSError) as error:
            self.problem = _storage_problem(self.path, error)

    def check_writable(self) -> str | None:
        """Write a heartbeat row for real; a read-only file or a full disk comes back as a sentence."""
        try:
            free = shutil.disk_usage(self.path.parent).free
            with self._transaction() as db:
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('checked_at', ?)", [self._now()])
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
    def _connection(self) -> Iterator[Database]:
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
    def _transaction(self) -> Iterator[Database]:
        # IMMEDIATE takes the write lock up front: a deferred transaction that reads and then writes can
        # fail with "database is locked" under contention instead of waiting its turn.
        with _writer_turn(self.path), self._connection() as db:
            db.conn.execute("BEGIN IMMEDIATE")
            try:
                yield db
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

    def _now(self) -> str:
        return self._clock().astimezone(UTC).isoformat(timespec="microseconds")


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


def storage_fault_sentence(path: Path, error: BaseException) -> str:
    """The sentence a person sees for a storage error (read-only, disk full, or the error itself)."""
    return _storage_problem(path, error)


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


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_fields(
    what: str, row: Mapping[str, Any], required: tuple[str, ...], optional: tuple[str, ...]
) -> None:
    missing = [field for field in required if row.get(field) is None]
    if missing:
        raise InvalidRecord(f"{what} is missing {', '.join(missing)}.")
    unknown = sorted(set(row) - set(required) - set(optional))
    if unknown:
        raise InvalidRecord(f"{what} has unknown field(s) {', '.join(unknown)}.")


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
