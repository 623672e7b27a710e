"""SQLite persistence for the MedArena arena: battles, votes, automatic-evaluation results and answer cache.

Everything lives in one SQLite file (``votes.db``) in WAL mode, written through sqlite-utils. The store is
safe to call from many threads at once (Gradio runs handlers in a thread pool): every operation opens its
own short-lived connection, and every write runs in one ``BEGIN IMMEDIATE`` transaction, so a crash or an
error never leaves a half-written row and concurrent writers queue instead of failing.

Usage::

    from arena.store import ArenaStore, default_db_path

    store = ArenaStore(default_db_path())          # $MEDARENA_VOTES_DB, else <checkout>/votes.db
    battle_id = store.create_battle("What is...?", "smollm2-lora", "gemma3-base", {"temperature": 0.7})
    store.finish_battle(battle_id, "answer A", "answer B", {"latency_s": 1.2}, {"latency_s": 0.9},
                        identity_leak=False)
    store.record_vote(VoteInput(battle_id, "model_a", session_id=sid, rationale="Cites the guideline."))
    store.rated_battles()                          # rows for arena/ratings.py

Every battle belongs to the session that started it, and only that session can vote on it. Telemetry
dicts are stored as JSON; ``contestant_telemetry`` reads the keys ``latency_s``, ``tokens_per_s`` and
``memory_mb`` from them (the other keys, e.g. ``first_token_s``, ``output_tokens``, are kept verbatim).
``ArenaStore.problem`` says, after start-up, whether the file is read-only or the disk is full. Export the votes with ``python -m arena.export`` (see arena/export.py).
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import json
import logging
import math
import os
import re
import shutil
import sqlite3
import statistics
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from sqlite_utils import Database

from arena.votes import VoteInput, VoteOutcome
from finetune.paths import project_paths

MAX_RATIONALE_CHARS = 500
MAX_VOTER_FIELD_CHARS = 80
# Session ids are made by the UI (uuid4 hex); anything else is refused rather than stored.
SESSION_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,64}")
MIN_FREE_DISK_BYTES = 16 * 2**20  # below this a start-up check reports the disk as (nearly) full

# Telemetry keys this module aggregates; the engine writes them into the telemetry dicts.
LATENCY_KEY = "latency_s"
TOKENS_PER_SECOND_KEY = "tokens_per_s"
MEMORY_KEY = "memory_mb"  # the contestant's own weights (base + adapter), not the process peak

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
    "contestant_a",
    "contestant_b",
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

_REQUIRED_EVAL_FIELDS: tuple[str, ...] = (
    "contestant",
    "model_key",
    "dataset",
    "dataset_hash",
    "split",
    "n",
    "metric",
    "value",
    "run_id",
)
_OPTIONAL_EVAL_FIELDS: tuple[str, ...] = (
    "adapter_run",
    "ci_low",
    "ci_high",
    "scoring_model",
    "git_commit",
    "created_at",
)
_REQUIRED_CACHE_FIELDS: tuple[str, ...] = ("contestant", "question_id", "answer")
_OPTIONAL_CACHE_FIELDS: tuple[str, ...] = ("output_tokens", "latency_s", "ttft_s")


class BattleStatus(StrEnum):
    GENERATING = "generating"
    FINISHED = "finished"
    VOIDED = "voided"


class StoreError(Exception):
    """Base class for the store's refusals; the message is a sentence fit to show a person."""


class VoteRejected(StoreError):
    """A vote was refused (forged or unknown battle, battle not finished, double vote, bad input)."""


class BattleStateError(StoreError):
    """A battle cannot be finished or voided: it does not exist, or its status does not allow it."""


class InvalidRecord(StoreError, ValueError):
    """A battle, evaluation result or cache row has missing, unknown or malformed fields."""


@dataclass(frozen=True)
class BattleRow:
    id: str
    created_at: str
    finished_at: str | None
    question: str
    category: str | None
    reference_answer: str | None
    question_source: str
    contestant_a: str
    contestant_b: str
    answer_a: str | None
    answer_b: str | None
    telemetry_a: dict[str, Any]
    telemetry_b: dict[str, Any]
    generation_settings: dict[str, Any]
    status: BattleStatus
    void_reason: str | None
    identity_leak: bool
    bertscore_a: float | None
    bertscore_b: float | None
    session_id: str | None = None


@dataclass(frozen=True)
class VoteRow:
    id: int
    battle_id: str
    outcome: VoteOutcome
    flag_a_unsafe: bool
    flag_a_incorrect: bool
    flag_b_unsafe: bool
    flag_b_incorrect: bool
    rationale: str
    voter_role: str
    voter_specialty: str
    session_id: str
    created_at: str


def default_db_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the vote database lives: ``$MEDARENA_VOTES_DB`` if set, else ``votes.db`` of the checkout.

    Resolved by `finetune.paths` (never the working directory). On a Hugging Face Space the app sets
    ``MEDARENA_VOTES_DB=/data/votes.db`` so that votes land on the persistent volume.
    """
    return project_paths(environ).votes_db


def utc_now() -> datetime:
    return datetime.now(UTC)


def eval_cache_key(contestant: str, prompt_template: str, settings: Mapping[str, Any], question: str) -> str:
    """Stable key for ``eval_cache``: any change of contestant, prompt, settings or question misses."""
    payload = json.dumps(
        [contestant, prompt_template, dict(settings), question], sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ArenaStore:
    """The arena's SQLite database. Holds no open connection, so one instance can serve every thread."""

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
                _create_schema(db)
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

    # -- battles -----------------------------------------------------------------------------------

    def create_battle(
        self,
        question: str,
        contestant_a: str,
        contestant_b: str,
        generation_settings: dict[str, Any],
        category: str | None = None,
        reference_answer: str | None = None,
        question_source: str = "typed",
        *,
        session_id: str,
    ) -> str:
        """Record a new battle in status "generating", owned by `session_id`; return its server-made id."""
        _check_session_id(session_id, InvalidRecord)
        if not question.strip():
            raise InvalidRecord("A battle needs a non-empty question.")
        if not contestant_a or not contestant_b or contestant_a == contestant_b:
            raise InvalidRecord("A battle needs two different, named contestants.")
        battle_id = uuid.uuid4().hex
        row = {
            "id": battle_id,
            "created_at": self._now(),
            "finished_at": None,
            "question": question,
            "category": category,
            "reference_answer": reference_answer,
            "question_source": question_source,
            "contestant_a": contestant_a,
            "contestant_b": contestant_b,
            "answer_a": None,
            "answer_b": None,
            "telemetry_a": None,
            "telemetry_b": None,
            "generation_settings": _to_json(generation_settings),
            "status": BattleStatus.GENERATING.value,
            "void_reason": None,
            "identity_leak": 0,
            "bertscore_a": None,
            "bertscore_b": None,
            "session_id": session_id,
        }
        try:
            question.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRecord("The question holds a broken character (a lone surrogate).") from None
        with self._transaction() as db:
            db["battles"].insert(row)
        return battle_id

    def finish_battle(
        self,
        battle_id: str,
        answer_a: str,
        answer_b: str,
        telemetry_a: dict[str, Any],
        telemetry_b: dict[str, Any],
        identity_leak: bool,
        bertscore_a: float | None = None,
        bertscore_b: float | None = None,
    ) -> None:
        """Store both answers and their telemetry; only a battle still "generating" can be finished."""
        updates = {
            "answer_a": answer_a,
            "answer_b": answer_b,
            "telemetry_a": _to_json(telemetry_a),
            "telemetry_b": _to_json(telemetry_b),
            "identity_leak": int(identity_leak),
            "bertscore_a": bertscore_a,
            "bertscore_b": bertscore_b,
            "status": BattleStatus.FINISHED.value,
            "finished_at": self._now(),
        }
        with self._transaction() as db:
            status = _battle_status(db, battle_id)
            if status is None:
                raise BattleStateError(f"There is no battle with id {battle_id!r} to finish.")
            if status != BattleStatus.GENERATING:
                raise BattleStateError(f"Battle {battle_id} is already {status}, so it cannot be finished.")
            db["battles"].update(battle_id, updates)

    def void_battle(self, battle_id: str, reason: str) -> None:
        """Mark a battle void (generation failed, voter left, moderation); void battles take no votes."""
        with self._transaction() as db:
            status = _battle_status(db, battle_id)
            if status is None:
                raise BattleStateError(f"There is no battle with id {battle_id!r} to void.")
            if status == BattleStatus.VOIDED:
                raise BattleStateError(f"Battle {battle_id} is already voided.")
            db["battles"].update(battle_id, {"status": BattleStatus.VOIDED.value, "void_reason": reason})

    def void_if_generating(self, battle_id: str, reason: str) -> bool:
        """Void the battle if it is still generating (cancelled, timed out, abandoned); True if it was."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE battles SET status = ?, void_reason = ? WHERE id = ? AND status = ?",
                [BattleStatus.VOIDED.value, reason, battle_id, BattleStatus.GENERATING.value],
            )
            return cursor.rowcount == 1

    def void_stale_battles(self, started_before: datetime, reason: str) -> int:
        """Void every battle still generating that started before `started_before`; returns how many.

        Run at start-up (battles of a process that died) and periodically (a closed browser tab).
        """
        cutoff = started_before.astimezone(UTC).isoformat(timespec="microseconds")
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE battles SET status = ?, void_reason = ? WHERE status = ? AND created_at < ?",
                [BattleStatus.VOIDED.value, reason, BattleStatus.GENERATING.value, cutoff],
            )
            return cursor.rowcount

    def generating_battles(self, session_id: str) -> list[str]:
        """Ids of the session's battles still generating, oldest first."""
        with self._connection() as db:
            rows = db.query(
                "SELECT id FROM battles WHERE session_id = ? AND status = ? ORDER BY created_at",
                [session_id, BattleStatus.GENERATING.value],
            )
            return [row["id"] for row in rows]

    def get_battle(self, battle_id: str) -> BattleRow | None:
        with self._connection() as db:
            rows = list(db.query("SELECT * FROM battles WHERE id = ?", [battle_id]))
        return _battle_from_row(rows[0]) if rows else None

    # -- votes -------------------------------------------------------------------------------------

    def record_vote(self, vote: VoteInput) -> VoteRow:
        """Store the single vote of a finished battle, or raise ``VoteRejected`` and store nothing.

        Only the session that started the battle may vote on it; every field is checked for type
        and size first, so a bad field gets a sentence, never a raw error.
        """
        checked_outcome = _check_vote(vote)
        battle_id, session_id = vote.battle_id, vote.session_id
        row = {
            "battle_id": battle_id,
            "outcome": checked_outcome.value,
            **{name: int(value) for name, value in vote.flags().items()},
            "rationale": vote.rationale,
            "voter_role": vote.voter_role,
            "voter_specialty": vote.voter_specialty,
            "session_id": session_id,
            "created_at": self._now(),
        }
        with self._transaction() as db:
            rows = list(db.query("SELECT status, session_id FROM battles WHERE id = ?", [battle_id]))
            status = BattleStatus(rows[0]["status"]) if rows else None
            if status is None:
                raise VoteRejected("This battle does not exist, so the vote was not recorded.")
            if rows[0]["session_id"] != session_id:
                raise VoteRejected(
                    "This battle was started in another session, so the vote was not recorded."
                )
            if status == BattleStatus.GENERATING:
                raise VoteRejected("This battle is still generating its answers; vote once both are shown.")
            if status == BattleStatus.VOIDED:
                raise VoteRejected("This battle was voided, so it no longer takes votes.")
            try:
                db["votes"].insert(row)
            except sqlite3.IntegrityError as error:
                # The UNIQUE index on votes.battle_id is what makes concurrent double votes store one row.
                if error.sqlite_errorname == "SQLITE_CONSTRAINT_UNIQUE":
                    message = "This battle already has a vote; each battle takes exactly one."
                    raise VoteRejected(message) from None
                raise
            return self._read_vote(db, battle_id)

    def _read_vote(self, db: Database, battle_id: str) -> VoteRow:
        """Read back a vote inside the caller's transaction (a separate step, so tests can fail it)."""
        vote = _vote_from_db(db, battle_id)
        if vote is None:
            raise StoreError(f"The vote for battle {battle_id} vanished inside its own transaction.")
        return vote

    def get_vote(self, battle_id: str) -> VoteRow | None:
        with self._connection() as db:
            return _vote_from_db(db, battle_id)

    def vote_count(self) -> int:
        with self._connection() as db:
            return db["votes"].count

    def rated_battles(self, *, include_identity_leaks: bool = False) -> list[dict[str, Any]]:
        """Voted, finished battles for the ratings code, oldest vote first.

        Battles whose answers leaked a contestant's identity are left out unless asked for, since the
        voter was no longer blind.
        """
        leak_filter = "" if include_identity_leaks else "AND b.identity_leak = 0"
        sql = f"""
            SELECT b.id AS battle_id, b.contestant_a, b.contestant_b, v.outcome, b.category,
                   b.question_source, v.voter_role, v.voter_specialty,
                   v.flag_a_unsafe, v.flag_a_incorrect, v.flag_b_unsafe, v.flag_b_incorrect,
                   b.identity_leak, v.created_at AS voted_at, b.bertscore_a, b.bertscore_b
            FROM votes v JOIN battles b ON b.id = v.battle_id
            WHERE b.status = 'finished' {leak_filter}
            ORDER BY v.created_at, v.id
        """
        boolean_columns = (
            "flag_a_unsafe",
            "flag_a_incorrect",
            "flag_b_unsafe",
            "flag_b_incorrect",
            "identity_leak",
        )
        with self._connection() as db:
            rows = list(db.query(sql))
        return [{**row, **{column: bool(row[column]) for column in boolean_columns}} for row in rows]

    def contestant_battle_counts(self) -> dict[str, int]:
        """Finished battles per contestant (either side), so the pairing can favour under-voted ones."""
        sql = """
            SELECT contestant, COUNT(*) AS battles FROM (
                SELECT contestant_a AS contestant FROM battles WHERE status = 'finished'
                UNION ALL
                SELECT contestant_b AS contestant FROM battles WHERE status = 'finished'
            ) GROUP BY contestant ORDER BY contestant
        """
        with self._connection() as db:
            return {row["contestant"]: row["battles"] for row in db.query(sql)}

    def contestant_telemetry(self) -> dict[str, dict[str, Any]]:
        """Per contestant over finished battles: battle count, median latency and tokens/s, memory (MB).

        A statistic is ``None`` when no battle of that contestant reported the matching telemetry key.
        """
        sql = """
            SELECT contestant_a, telemetry_a, contestant_b, telemetry_b
            FROM battles WHERE status = 'finished' ORDER BY created_at
        """
        with self._connection() as db:
            rows = list(db.query(sql))
        samples: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            for side in ("a", "b"):
                telemetry = json.loads(row[f"telemetry_{side}"] or "{}")
                samples.setdefault(row[f"contestant_{side}"], []).append(telemetry)
        return {contestant: _summarise_telemetry(telemetries) for contestant, telemetries in samples.items()}

    # -- automatic evaluation ----------------------------------------------------------------------

    def add_eval_results(self, rows: list[dict[str, Any]]) -> None:
        """Store a batch of evaluation results in one transaction: every row, or none of them.

        Required keys: contestant, model_key, dataset, dataset_hash, split, n, metric, value, run_id;
        optional: adapter_run, ci_low, ci_high, scoring_model, git_commit, created_at. A run may hold one
        value per (contestant, dataset, split, metric, scoring_model).
        """
        with self._transaction() as db:
            for index, row in enumerate(rows):
                record = self._checked_eval_row(index, row)
                try:
                    db["eval_results"].insert(record)
                except sqlite3.IntegrityError as error:
                    raise InvalidRecord(
                        f"Evaluation row {index} repeats a result already stored for run {row['run_id']!r} "
                        f"({row['contestant']}, {row['dataset']}/{row['split']}, {row['metric']})."
                    ) from error

    def _checked_eval_row(self, index: int, row: Mapping[str, Any]) -> dict[str, Any]:
        _check_fields(f"Evaluation row {index}", row, _REQUIRED_EVAL_FIELDS, _OPTIONAL_EVAL_FIELDS)
        if not isinstance(row["n"], int) or isinstance(row["n"], bool) or row["n"] < 0:
            raise InvalidRecord(f"Evaluation row {index} has n={row['n']!r}; it must be a whole number >= 0.")
        for field in ("value", "ci_low", "ci_high"):
            value = row.get(field)
            if value is None and field != "value":
                continue
            if not _is_finite_number(value):
                raise InvalidRecord(
                    f"Evaluation row {index} has {field}={value!r}; it must be a finite number."
                )
        record = {field: row.get(field) for field in (*_REQUIRED_EVAL_FIELDS, *_OPTIONAL_EVAL_FIELDS)}
        record["created_at"] = row.get("created_at") or self._now()
        return record

    def eval_results(self, contestant: str | None = None) -> list[dict[str, Any]]:
        """Stored evaluation results in insertion order, optionally for one contestant."""
        with self._connection() as db:
            if contestant is None:
                return list(db.query("SELECT * FROM eval_results ORDER BY id"))
            return list(db.query("SELECT * FROM eval_results WHERE contestant = ? ORDER BY id", [contestant]))

    def cache_get(self, key: str) -> dict[str, Any] | None:
        with self._connection() as db:
            rows = list(db.query("SELECT * FROM eval_cache WHERE key = ?", [key]))
        return rows[0] if rows else None

    def cache_put(self, key: str, row: Mapping[str, Any]) -> None:
        """Store (or overwrite) a cached answer; keys: contestant, question_id, answer, and optionally
        output_tokens, latency_s, ttft_s."""
        _check_fields("The cache row", row, _REQUIRED_CACHE_FIELDS, _OPTIONAL_CACHE_FIELDS)
        record = {field: row.get(field) for field in (*_REQUIRED_CACHE_FIELDS, *_OPTIONAL_CACHE_FIELDS)}
        with self._transaction() as db:
            db["eval_cache"].insert({"key": key, **record, "created_at": self._now()}, replace=True)

    # -- export ------------------------------------------------------------------------------------

    def vote_export_rows(self) -> list[dict[str, Any]]:
        """One row per vote joined with its battle, columns as ``EXPORT_COLUMNS``, oldest vote first."""
        sql = """
            SELECT v.id AS vote_id, b.id AS battle_id, v.created_at AS voted_at,
                   b.created_at AS battle_created_at, b.finished_at AS battle_finished_at,
                   b.question, b.category, b.question_source, b.reference_answer,
                   b.contestant_a, b.contestant_b, b.answer_a, b.answer_b, v.outcome,
                   v.flag_a_unsafe, v.flag_a_incorrect, v.flag_b_unsafe, v.flag_b_incorrect,
                   v.rationale, v.voter_role, v.voter_specialty, v.session_id,
                   b.identity_leak, b.bertscore_a, b.bertscore_b
            FROM votes v JOIN battles b ON b.id = v.battle_id
            ORDER BY v.created_at, v.id
        """
        with self._connection() as db:
            return [{column: row[column] for column in EXPORT_COLUMNS} for row in db.query(sql)]

    def export_votes_csv(self, path: str | Path) -> int:
        """Write every vote to a CSV file (header + one properly quoted row per vote); returns the count."""
        rows = self.vote_export_rows()
        with _atomic_text_file(Path(path)) as handle:
            writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        return len(rows)

    def export_votes_jsonl(self, path: str | Path) -> int:
        """Write every vote to a JSON Lines file (one object per vote); returns the count."""
        rows = self.vote_export_rows()
        with _atomic_text_file(Path(path)) as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        return len(rows)


# -- helpers -----------------------------------------------------------------------------------------


def _create_schema(db: Database) -> None:
    db["battles"].create(
        {
            "id": str,
            "created_at": str,
            "finished_at": str,
            "question": str,
            "category": str,
            "reference_answer": str,
            "question_source": str,
            "contestant_a": str,
            "contestant_b": str,
            "answer_a": str,
            "answer_b": str,
            "telemetry_a": str,
            "telemetry_b": str,
            "generation_settings": str,
            "status": str,
            "void_reason": str,
            "identity_leak": int,
            "bertscore_a": float,
            "bertscore_b": float,
        },
        pk="id",
        not_null=[
            "created_at",
            "question",
            "question_source",
            "contestant_a",
            "contestant_b",
            "generation_settings",
            "status",
            "identity_leak",
        ],
        if_not_exists=True,
    )
    if "session_id" not in db["battles"].columns_dict:  # databases made before battles had owners
        db["battles"].add_column("session_id", str)
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
    db["votes"].create(
        {
            "id": int,
            "battle_id": str,
            "outcome": str,
            "flag_a_unsafe": int,
            "flag_a_incorrect": int,
            "flag_b_unsafe": int,
            "flag_b_incorrect": int,
            "rationale": str,
            "voter_role": str,
            "voter_specialty": str,
            "session_id": str,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("battle_id", "battles", "id")],
        not_null=[
            "battle_id",
            "outcome",
            "flag_a_unsafe",
            "flag_a_incorrect",
            "flag_b_unsafe",
            "flag_b_incorrect",
            "rationale",
            "voter_role",
            "voter_specialty",
            "session_id",
            "created_at",
        ],
        if_not_exists=True,
    )
    db["votes"].create_index(
        ["battle_id"], index_name="votes_one_per_battle", unique=True, if_not_exists=True
    )
    db["eval_results"].create(
        {
            "id": int,
            "contestant": str,
            "model_key": str,
            "adapter_run": str,
            "dataset": str,
            "dataset_hash": str,
            "split": str,
            "n": int,
            "metric": str,
            "value": float,
            "ci_low": float,
            "ci_high": float,
            "scoring_model": str,
            "git_commit": str,
            "created_at": str,
            "run_id": str,
        },
        pk="id",
        not_null=[*_REQUIRED_EVAL_FIELDS, "created_at"],
        if_not_exists=True,
    )
    # IFNULL because SQLite treats NULLs as distinct in unique indexes.
    db.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS eval_results_one_value_per_run ON eval_results "
        "(run_id, contestant, dataset, split, metric, IFNULL(scoring_model, ''))"
    )
    db["eval_cache"].create(
        {
            "key": str,
            "contestant": str,
            "question_id": str,
            "answer": str,
            "output_tokens": int,
            "latency_s": float,
            "ttft_s": float,
            "created_at": str,
        },
        pk="key",
        not_null=[*_REQUIRED_CACHE_FIELDS, "created_at"],
        if_not_exists=True,
    )


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


def _battle_status(db: Database, battle_id: str) -> BattleStatus | None:
    rows = list(db.query("SELECT status FROM battles WHERE id = ?", [battle_id]))
    return BattleStatus(rows[0]["status"]) if rows else None


def _battle_from_row(row: Mapping[str, Any]) -> BattleRow:
    return BattleRow(
        id=row["id"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        question=row["question"],
        category=row["category"],
        reference_answer=row["reference_answer"],
        question_source=row["question_source"],
        contestant_a=row["contestant_a"],
        contestant_b=row["contestant_b"],
        answer_a=row["answer_a"],
        answer_b=row["answer_b"],
        telemetry_a=json.loads(row["telemetry_a"] or "{}"),
        telemetry_b=json.loads(row["telemetry_b"] or "{}"),
        generation_settings=json.loads(row["generation_settings"]),
        status=BattleStatus(row["status"]),
        void_reason=row["void_reason"],
        identity_leak=bool(row["identity_leak"]),
        bertscore_a=row["bertscore_a"],
        bertscore_b=row["bertscore_b"],
        session_id=row.get("session_id"),
    )


def _check_vote(vote: VoteInput) -> VoteOutcome:
    """Every field of a vote checked for type and size; the outcome as the enum, or VoteRejected."""
    _check_session_id(vote.session_id, VoteRejected)
    if not isinstance(vote.battle_id, str) or not 1 <= len(vote.battle_id) <= 64:
        raise VoteRejected("This battle does not exist, so the vote was not recorded.")
    try:
        outcome = VoteOutcome(vote.outcome)
    except ValueError:
        choices = ", ".join(member.value for member in VoteOutcome)
        shown = repr(vote.outcome)[:40]
        raise VoteRejected(f"{shown} is not a valid outcome; choose one of {choices}.") from None
    for name, value in vote.flags().items():
        if not isinstance(value, bool):
            raise VoteRejected(f"{name} must be true or false, not {repr(value)[:40]}.")
    for name, value, limit in (
        ("rationale", vote.rationale, MAX_RATIONALE_CHARS),
        ("voter_role", vote.voter_role, MAX_VOTER_FIELD_CHARS),
        ("voter_specialty", vote.voter_specialty, MAX_VOTER_FIELD_CHARS),
    ):
        if not isinstance(value, str):
            raise VoteRejected(f"{name} must be text.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise VoteRejected(f"The {name} holds a broken character; please retype it.") from None
        if len(value) > limit:
            raise VoteRejected(f"The {name} has {len(value)} characters; please keep it to {limit}.")
    return outcome


def _check_session_id(session_id: Any, error: type[StoreError]) -> None:
    if not session_id:
        raise error("This request has no session id; please reload the page.")
    if not isinstance(session_id, str) or not SESSION_ID_PATTERN.fullmatch(session_id):
        raise error("The session id is malformed (8-64 letters, digits, '-' or '_'); please reload the page.")


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


def _vote_from_db(db: Database, battle_id: str) -> VoteRow | None:
    rows = list(db.query("SELECT * FROM votes WHERE battle_id = ?", [battle_id]))
    if not rows:
        return None
    row = rows[0]
    return VoteRow(
        id=row["id"],
        battle_id=row["battle_id"],
        outcome=VoteOutcome(row["outcome"]),
        flag_a_unsafe=bool(row["flag_a_unsafe"]),
        flag_a_incorrect=bool(row["flag_a_incorrect"]),
        flag_b_unsafe=bool(row["flag_b_unsafe"]),
        flag_b_incorrect=bool(row["flag_b_incorrect"]),
        rationale=row["rationale"],
        voter_role=row["voter_role"],
        voter_specialty=row["voter_specialty"],
        session_id=row["session_id"],
        created_at=row["created_at"],
    )


def _to_json(value: Mapping[str, Any]) -> str:
    try:
        return json.dumps(dict(value), sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError) as error:
        raise InvalidRecord(f"Could not store a settings/telemetry dict as JSON: {error}.") from error


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


def _summarise_telemetry(telemetries: list[dict[str, Any]]) -> dict[str, Any]:
    def numbers(key: str) -> list[float]:
        return [float(t[key]) for t in telemetries if _is_finite_number(t.get(key))]

    latencies, speeds, memory = numbers(LATENCY_KEY), numbers(TOKENS_PER_SECOND_KEY), numbers(MEMORY_KEY)
    return {
        "battles": len(telemetries),
        "median_latency_s": statistics.median(latencies) if latencies else None,
        "median_tokens_per_s": statistics.median(speeds) if speeds else None,
        # the contestant's weights: the same in every battle, so the latest figure stands
        "memory_mb": memory[-1] if memory else None,
    }


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
