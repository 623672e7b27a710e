"""The arena's battles and votes in the vote database (``votes.db``): create, finish and void battles,
record the one vote of each.

The connection layer (WAL, one short-lived connection per operation, ``BEGIN IMMEDIATE`` transactions,
schema and its migration, start-up read-only/full check) is `arena.store.sqlite_db`; the read-only views for
ratings, pairing, telemetry and export are `arena.store.reads`; the evaluation tables are
`arena.store.eval_tables`; file formats are `arena.export`; telemetry aggregation is `arena.board`.

Usage::

    from arena.store.battles import ArenaStore, default_db_path
    from arena.votes import VoteInput

    store = ArenaStore(default_db_path())          # $MEDARENA_VOTES_DB, else <checkout>/votes.db
    battle_id = store.create_battle("What is...?", "smollm2-lora", "gemma3-base", {}, session_id=sid)
    store.finish_battle(battle_id, "answer A", "answer B", {"latency_s": 1.2}, {"latency_s": 0.9},
                        identity_leak=False)
    store.record_vote(VoteInput(battle_id, "model_a", session_id=sid, rationale="Cites the guideline."))
    store.rated_battles()                          # rows for arena/ratings.py

Every battle belongs to the session that started it, and only that session can vote on it.
Copy a votes.db into Postgres: ``python -m arena.store copy --from votes.db --to postgresql://...``.
Run as: python -m pytest tests/test_store.py -q
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from arena.adapters import id_from_label
from arena.store.eval_tables import eval_cache_key as eval_cache_key  # re-exported for callers
from arena.store.judgement_tables import JudgementTables
from arena.store.owners import OwnerTables
from arena.store.protocol import BattleRow as BattleRow  # the contract's types, re-exported for callers
from arena.store.protocol import BattleStateError as BattleStateError
from arena.store.protocol import BattleStatus as BattleStatus
from arena.store.protocol import InvalidRecord as InvalidRecord
from arena.store.protocol import SqlSession, StoreError, UniqueViolation
from arena.store.protocol import StoreUnavailable as StoreUnavailable
from arena.store.protocol import VoteRejected as VoteRejected
from arena.store.protocol import VoteRow as VoteRow
from arena.store.reads import BattleReads
from arena.store.schema import added_vote_columns
from arena.store.sql import is_finite_number, lock_for_update, update_sql
from arena.store.sqlite_db import MIN_FREE_DISK_BYTES as MIN_FREE_DISK_BYTES  # re-exported for callers
from arena.store.sqlite_db import StoreConnection
from arena.store.sqlite_db import default_db_path as default_db_path  # re-exported for callers
from arena.store.sqlite_db import utc_now as utc_now  # re-exported for callers
from arena.text_input import MAX_RATIONALE_CHARS as MAX_RATIONALE_CHARS  # re-exported for callers
from arena.text_input import MAX_VOTER_FIELD_CHARS as MAX_VOTER_FIELD_CHARS  # re-exported for callers
from arena.votes import VoteInput, VoteOutcome

# The UI makes session ids as uuid4 hex (32 characters); API clients and tests may use any 8-64 ASCII
# letters, digits, '-' or '_'. Anything else is refused rather than stored.
SESSION_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,64}")


class BattleTables(BattleReads, OwnerTables, JudgementTables):
    """Battles and votes on either database (the shared table code of `ArenaStore` and `PostgresStore`)."""

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
        contestant_a_id: str | None = None,
        contestant_b_id: str | None = None,
        owner_id: str | None = None,
    ) -> str:
        """Record a new battle in status "generating", owned by `session_id`; return its server-made id.

        `contestant_a`/`contestant_b` are the display labels shown now; the stable ids
        (`<model key>/<run or base>`, what ratings group by) default to those read from the labels;
        `owner_id` is the arena process generating it (`arena.store.owners`)."""
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
            "contestant_a_id": contestant_a_id or id_from_label(contestant_a),
            "contestant_b_id": contestant_b_id or id_from_label(contestant_b),
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
            "owner_id": owner_id,
        }
        try:
            question.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRecord("The question holds a broken character (a lone surrogate).") from None
        with self._transaction() as session:
            session.insert("battles", row)
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
        with self._transaction() as session:
            status = _battle_status(session, battle_id)
            if status is None:
                raise BattleStateError(f"There is no battle with id {battle_id!r} to finish.")
            if status != BattleStatus.GENERATING:
                raise BattleStateError(f"Battle {battle_id} is already {status}, so it cannot be finished.")
            session.execute(*update_sql("battles", "id", battle_id, updates))

    def void_battle(self, battle_id: str, reason: str) -> None:
        """Mark a battle void (generation failed, voter left, moderation); void battles take no votes."""
        with self._transaction() as session:
            status = _battle_status(session, battle_id)
            if status is None:
                raise BattleStateError(f"There is no battle with id {battle_id!r} to void.")
            if status == BattleStatus.VOIDED:
                raise BattleStateError(f"Battle {battle_id} is already voided.")
            updates = {"status": BattleStatus.VOIDED.value, "void_reason": reason}
            session.execute(*update_sql("battles", "id", battle_id, updates))

    def void_if_generating(self, battle_id: str, reason: str) -> bool:
        """Void the battle if it is still generating (cancelled, timed out, abandoned); True if it was."""
        with self._transaction() as session:
            changed = session.execute(
                "UPDATE battles SET status = ?, void_reason = ? WHERE id = ? AND status = ?",
                [BattleStatus.VOIDED.value, reason, battle_id, BattleStatus.GENERATING.value],
            )
            return changed == 1

    def void_stale_battles(self, started_before: datetime, reason: str) -> int:
        """Void every battle still generating that started before `started_before`; returns how many.

        Run at start-up (battles of a process that died) and periodically (a closed browser tab).
        """
        cutoff = started_before.astimezone(UTC).isoformat(timespec="microseconds")
        with self._transaction() as session:
            return session.execute(
                "UPDATE battles SET status = ?, void_reason = ? WHERE status = ? AND created_at < ?",
                [BattleStatus.VOIDED.value, reason, BattleStatus.GENERATING.value, cutoff],
            )

    def generating_battles(self, session_id: str) -> list[str]:
        """Ids of the session's battles still generating, oldest first."""
        with self._connection() as session:
            rows = session.query(
                "SELECT id FROM battles WHERE session_id = ? AND status = ? ORDER BY created_at",
                [session_id, BattleStatus.GENERATING.value],
            )
            return [row["id"] for row in rows]

    def get_battle(self, battle_id: str) -> BattleRow | None:
        """The battle with this id, or None."""
        with self._connection() as session:
            rows = session.query("SELECT * FROM battles WHERE id = ?", [battle_id])
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
            **_checked_details(vote),
        }
        with self._transaction() as session:
            sql = "SELECT status, session_id FROM battles WHERE id = ?" + lock_for_update(session)
            rows = session.query(sql, [battle_id])
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
                session.insert("votes", row)
            except UniqueViolation:
                # The UNIQUE index on votes.battle_id is what makes concurrent double votes store one row.
                raise VoteRejected("This battle already has a vote; each battle takes exactly one.") from None
            return self._read_vote(session, battle_id)

    def _read_vote(self, session: SqlSession, battle_id: str) -> VoteRow:
        """Read back a vote inside the caller's transaction (a separate step, so tests can fail it)."""
        vote = _vote_from_db(session, battle_id)
        if vote is None:
            raise StoreError(f"The vote for battle {battle_id} vanished inside its own transaction.")
        return vote

    def get_vote(self, battle_id: str) -> VoteRow | None:
        """The vote of this battle, or None."""
        with self._connection() as session:
            return _vote_from_db(session, battle_id)


class ArenaStore(BattleTables, StoreConnection):
    """The arena's SQLite database (the embedded default). Holds no open connection, so one instance can
    serve every thread."""


def _battle_status(session: SqlSession, battle_id: str) -> BattleStatus | None:
    sql = "SELECT status FROM battles WHERE id = ?" + lock_for_update(session)
    rows = session.query(sql, [battle_id])
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


def _checked_details(vote: VoteInput) -> dict[str, Any]:
    """The vote's fields that migrations added as vote columns, each checked by its column's type."""
    details = {}
    for column in added_vote_columns():
        value = getattr(vote, column.name, None)
        if value is None:
            details[column.name] = None
        elif column.type == "integer" and isinstance(value, int):
            details[column.name] = int(value)
        elif column.type == "real" and is_finite_number(value):
            details[column.name] = float(value)
        elif column.type == "text" and isinstance(value, str) and len(value) <= MAX_VOTER_FIELD_CHARS:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise VoteRejected(f"The {column.name} holds a broken character; please retype it.") from None
            details[column.name] = value
        else:
            kind = {
                "integer": "a whole number",
                "real": "a number",
                "text": f"text of at most {MAX_VOTER_FIELD_CHARS} characters",
            }
            raise VoteRejected(f"{column.name} must be {kind[column.type]}, not {repr(value)[:40]}.")
    return details


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


def _vote_from_db(session: SqlSession, battle_id: str) -> VoteRow | None:
    rows = session.query("SELECT * FROM votes WHERE battle_id = ?", [battle_id])
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
        details={column.name: row[column.name] for column in added_vote_columns()},
    )


def _to_json(value: Mapping[str, Any]) -> str:
    try:
        return json.dumps(dict(value), sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError) as error:
        raise InvalidRecord(f"Could not store a settings/telemetry dict as JSON: {error}.") from error
