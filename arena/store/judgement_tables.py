"""The judgement tables of the vote database (declared in `arena.store.schema.JUDGEMENT_TABLES`, schema
version 4): rubric entries per answer, each vote's quality record, raters and invite codes, follow-up
turns, and the reads the rubric board, the rater filters, the agreement statistics and the DPO export
need. `arena.store.battles.BattleTables` inherits these, so the SQLite and the Postgres store both have them; the
SQL runs on `SqlSession` (``?`` placeholders, nothing SQLite-only).

    store.record_rubric(battle_id, session_id, {"a": SideRubric.parse({"harm_severity": "severe"})})
    store.rubric_rows()                       # rows for arena.rubric.rubric_board
    code = store.create_invite("physician")   # what `python -m arena.admin invite` prints

Run as: python -m pytest tests/test_rubric.py tests/test_rater_quality.py -q
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from typing import Any

from arena.rubric import AXIS_NAMES, SideRubric
from arena.store.protocol import StoreError, UniqueViolation
from arena.store.sql import SqlStoreBase, lock_for_update

CALIBRATION_SOURCE = "calibration:"  # question_source prefix of calibration battles
RESERVE_SOURCE = "reserve:"  # question_source prefix of a finished battle re-served blind
INVITE_ROLES = (
    "physician",
    "nurse",
    "pharmacist",
    "medical student",
    "allied health professional",
    "researcher",
)


class RubricRefused(StoreError):
    """A rubric entry was refused (no vote yet, another session, already rated); nothing stored."""


class TurnRefused(StoreError):
    """A follow-up cannot be asked or stored; the message is one sentence for the clinician."""


class InviteRefused(StoreError):
    """An invite code is unknown or already used."""


def hash_code(code: str) -> str:
    """Invite codes are stored hashed, so the database never holds a usable code."""
    return hashlib.sha256(code.strip().encode("utf-8")).hexdigest()


class JudgementTables(SqlStoreBase):
    """Rubrics, vote quality, raters and invites."""

    # -- rubric -----------------------------------------------------------------------------------

    def record_rubric(self, battle_id: str, session_id: str, sides: Mapping[str, SideRubric]) -> int:
        """Store the rubric of each non-empty side of a battle this session voted on; returns how
        many sides were stored. Each answer takes one rubric entry."""
        entries = {side: rubric for side, rubric in sides.items() if not rubric.empty}
        if set(entries) - {"a", "b"}:
            raise RubricRefused("A rubric entry is for side A or side B.")
        if not entries:
            raise RubricRefused("Nothing was selected, so no rubric was stored.")
        with self._transaction() as db:
            rows = list(
                db.query(
                    "SELECT b.contestant_a_id, b.contestant_b_id, v.session_id FROM battles b "
                    "LEFT JOIN votes v ON v.battle_id = b.id WHERE b.id = ?",
                    [battle_id],
                )
            )
            if not rows or rows[0]["session_id"] is None:
                raise RubricRefused("Vote first: the rubric is filled in after the preference vote.")
            if rows[0]["session_id"] != session_id:
                raise RubricRefused(
                    "This battle was voted on in another session, so the rubric was not stored."
                )
            now = self._now()
            for side, rubric in entries.items():
                row = {
                    "battle_id": battle_id,
                    "side": side,
                    "contestant_id": rows[0][f"contestant_{side}_id"],
                    **{axis: rubric.levels.get(axis) for axis in AXIS_NAMES},
                    "reasons": json.dumps(list(rubric.reasons)),
                    "session_id": session_id,
                    "created_at": now,
                }
                try:
                    db.insert("rubrics", row)
                except UniqueViolation:
                    raise RubricRefused(
                        f"Answer {side.upper()} of this battle already has a rubric; each answer takes one."
                    ) from None
        return len(entries)

    def rubric_rows(self) -> list[dict[str, Any]]:
        """Every rubric entry of a finished, non-calibration battle whose answers did not leak their
        identity, with the vote's rater and quality record for the filters; oldest first."""
        sql = f"""
            SELECT r.battle_id, r.side, r.contestant_id, {", ".join(f"r.{axis}" for axis in AXIS_NAMES)},
                   r.reasons, b.category, q.rater_id, q.too_fast
            FROM rubrics r JOIN battles b ON b.id = r.battle_id
            LEFT JOIN vote_quality q ON q.battle_id = r.battle_id
            WHERE b.status = 'finished' AND b.identity_leak = 0
              AND b.question_source NOT LIKE ?
            ORDER BY r.created_at, r.id
        """
        with self._connection() as db:
            rows = db.query(sql, [f"{CALIBRATION_SOURCE}%"])
        return [{**row, "reasons": json.loads(row["reasons"])} for row in rows]

    # -- vote quality -----------------------------------------------------------------------------

    def record_vote_quality(
        self,
        battle_id: str,
        *,
        rater_id: str,
        rater_source: str,
        client_id: str,
        dwell_s: float,
        min_dwell_s: float,
        calibration_correct: bool | None,
    ) -> None:
        """Store how a stored vote was cast (rater, dwell, calibration result); once per battle."""
        with self._transaction() as db:
            db.insert(
                "vote_quality",
                {
                    "battle_id": battle_id,
                    "rater_id": rater_id,
                    "rater_source": rater_source,
                    "client_id": client_id,
                    "dwell_s": dwell_s,
                    "min_dwell_s": min_dwell_s,
                    "too_fast": int(dwell_s < min_dwell_s),
                    "calibration_correct": None if calibration_correct is None else int(calibration_correct),
                    "created_at": self._now(),
                },
                replace_on="battle_id",
            )

    def vote_quality(self) -> dict[str, dict[str, Any]]:
        """Quality records by battle id."""
        with self._connection() as db:
            return {row["battle_id"]: dict(row) for row in db.query("SELECT * FROM vote_quality")}

    def calibration_results(self) -> list[tuple[str, bool]]:
        """(rater id, voted for the reference) per calibration vote, oldest first."""
        sql = "SELECT rater_id, calibration_correct FROM vote_quality WHERE calibration_correct IS NOT NULL ORDER BY created_at"
        with self._connection() as db:
            return [(row["rater_id"], bool(row["calibration_correct"])) for row in db.query(sql)]

    def reserve_candidate(self, rater_id: str, draw: float) -> dict[str, Any] | None:
        """A finished, voted, ordinary battle another rater voted on (not yet re-served to this one),
        picked by `draw` in [0, 1); None when there is none."""
        sql = f"""
            SELECT b.* FROM battles b JOIN votes v ON v.battle_id = b.id
            JOIN vote_quality q ON q.battle_id = b.id
            WHERE b.status = 'finished' AND b.identity_leak = 0 AND q.rater_id != ?
              AND b.question_source LIKE 'bank:%'
              AND NOT EXISTS (
                  SELECT 1 FROM battles r JOIN vote_quality rq ON rq.battle_id = r.id
                  WHERE r.question_source = '{RESERVE_SOURCE}' || b.id AND rq.rater_id = ?)
            ORDER BY b.created_at
        """
        with self._connection() as db:
            rows = db.query(sql, [rater_id, rater_id])
        return dict(rows[int(draw * len(rows))]) if rows else None

    def agreement_items(self) -> list[dict[str, Any]]:
        """Per battle that was re-served: its category and every outcome (the original's first),
        one per distinct rater."""
        sql = f"""
            SELECT CASE WHEN b.question_source LIKE '{RESERVE_SOURCE}%'
                        THEN SUBSTR(b.question_source, {len(RESERVE_SOURCE) + 1}) ELSE b.id END AS original,
                   v.outcome, q.rater_id, b.category
            FROM votes v JOIN battles b ON b.id = v.battle_id JOIN vote_quality q ON q.battle_id = b.id
            WHERE b.status = 'finished' AND (b.question_source LIKE '{RESERVE_SOURCE}%' OR b.id IN (
                SELECT SUBSTR(question_source, {len(RESERVE_SOURCE) + 1}) FROM battles
                WHERE question_source LIKE '{RESERVE_SOURCE}%'))
            ORDER BY v.created_at, v.id
        """
        items: dict[str, dict[str, Any]] = {}
        with self._connection() as db:
            for row in db.query(sql):
                item = items.setdefault(row["original"], {"category": row["category"], "raters": {}})
                item["raters"].setdefault(row["rater_id"], row["outcome"])
        return [
            {"battle_id": key, "category": item["category"], "outcomes": list(item["raters"].values())}
            for key, item in items.items()
            if len(item["raters"]) >= 2
        ]

    # -- raters and invites -----------------------------------------------------------------------

    def create_invite(self, role: str) -> str:
        """A new single-use invite code marking `role` as verified; only its hash is stored."""
        if role not in INVITE_ROLES:
            raise InviteRefused(f"{role!r} is not a role; choose one of {', '.join(INVITE_ROLES)}.")
        code = secrets.token_urlsafe(12)
        with self._transaction() as db:
            db.insert("invite_codes", {"code_hash": hash_code(code), "role": role, "created_at": self._now()})
        return code

    def redeem_invite(self, code: str) -> tuple[str, str]:
        """Bind an invite code to a new verified rater; returns (rater id, role). A used code is
        refused, so a code verifies one person."""
        with self._transaction() as db:
            rows = db.query(
                "SELECT * FROM invite_codes WHERE code_hash = ?" + lock_for_update(db), [hash_code(code)]
            )
            if not rows:
                raise InviteRefused("This invite code is not known; check it or ask for a new one.")
            if rows[0]["rater_id"]:
                raise InviteRefused("This invite code was already used; each code verifies one person.")
            rater_id = f"invite:{rows[0]['code_hash'][:16]}"
            now = self._now()
            db.insert(
                "raters",
                {
                    "id": rater_id,
                    "role": rows[0]["role"],
                    "verified": 1,
                    "source": "invite",
                    "created_at": now,
                },
                replace_on="id",
            )
            db.execute(
                "UPDATE invite_codes SET rater_id = ?, used_at = ? WHERE code_hash = ?",
                [rater_id, now, rows[0]["code_hash"]],
            )
        return rater_id, rows[0]["role"]

    def verified_raters(self) -> dict[str, str]:
        """Verified rater id -> role."""
        with self._connection() as db:
            return {
                row["id"]: row["role"] for row in db.query("SELECT id, role FROM raters WHERE verified = 1")
            }

    # -- follow-up turns --------------------------------------------------------------------------

    def add_turn(self, battle_id: str, session_id: str, question: str, max_turns: int) -> int:
        """Store a follow-up question as the next turn, "generating"; returns its number (1, 2, ...)."""
        with self._transaction() as db:
            rows = list(
                db.query(
                    "SELECT b.status, b.session_id, b.question_source, v.id AS vote FROM battles b "
                    "LEFT JOIN votes v ON v.battle_id = b.id WHERE b.id = ?",
                    [battle_id],
                )
            )
            if rows and db.dialect == "postgres":  # two follow-ups at once must not both take turn N
                db.query("SELECT id FROM battles WHERE id = ? FOR UPDATE", [battle_id])
            if not rows or rows[0]["session_id"] != session_id:
                raise TurnRefused("This battle does not belong to this session; start a new battle.")
            battle = rows[0]
            if battle["vote"] is not None:
                raise TurnRefused("This battle already has a vote; start a new battle to ask more.")
            if battle["status"] != "finished":
                raise TurnRefused("Follow-ups can be asked once both answers are shown.")
            if battle["question_source"].startswith((CALIBRATION_SOURCE, RESERVE_SOURCE)):
                raise TurnRefused(
                    "This battle's answers were prepared in advance, so it takes no follow-ups."
                )
            turns = list(db.query("SELECT turn, status FROM battle_turns WHERE battle_id = ?", [battle_id]))
            if any(turn["status"] == "generating" for turn in turns):
                raise TurnRefused("The previous follow-up is still being answered.")
            done = [turn for turn in turns if turn["status"] == "finished"]
            if len(done) >= max_turns:
                raise TurnRefused(
                    f"This battle has had its {max_turns} follow-up{'s' if max_turns != 1 else ''}; "
                    "please vote, then start a new battle."
                )
            number = max((turn["turn"] for turn in turns), default=0) + 1
            try:
                db.insert(
                    "battle_turns",
                    {"battle_id": battle_id, "turn": number, "question": question, "status": "generating",
                     "created_at": self._now()},
                )  # fmt: skip
            except UniqueViolation:
                raise TurnRefused("The previous follow-up is still being answered.") from None
        return number

    def finish_turn(
        self,
        battle_id: str,
        turn: int,
        answers: tuple[str, str],
        telemetry: tuple[dict[str, Any], dict[str, Any]],
        identity_leak: bool,
    ) -> None:
        """Store a turn's answers; an answer naming its model marks the whole battle as leaked."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE battle_turns SET answer_a = ?, answer_b = ?, telemetry_a = ?, telemetry_b = ?, "
                "status = 'finished', finished_at = ? WHERE battle_id = ? AND turn = ? AND status = 'generating'",
                [*answers, json.dumps(telemetry[0]), json.dumps(telemetry[1]), self._now(), battle_id, turn],
            )
            if changed != 1:
                raise TurnRefused("This follow-up was cancelled before its answers arrived.")
            if identity_leak:
                db.execute("UPDATE battles SET identity_leak = 1 WHERE id = ?", [battle_id])

    def void_turn(self, battle_id: str, turn: int, reason: str) -> bool:
        """Void a turn still generating; True if it was (the battle keeps its earlier turns)."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE battle_turns SET status = 'voided', void_reason = ? "
                "WHERE battle_id = ? AND turn = ? AND status = 'generating'",
                [reason, battle_id, turn],
            )
            return changed == 1

    def battle_turns(self, battle_id: str) -> list[dict[str, Any]]:
        """The battle's follow-up turns, in order (voided ones included, with their status)."""
        with self._connection() as db:
            rows = db.query("SELECT * FROM battle_turns WHERE battle_id = ? ORDER BY turn", [battle_id])
        return [{key: value for key, value in row.items() if key != "id"} for row in rows]

    def turn_generating(self, battle_id: str) -> bool:
        """Whether a follow-up of this battle is still being answered (no vote until it is)."""
        with self._connection() as db:
            rows = db.query(
                "SELECT 1 AS generating FROM battle_turns WHERE battle_id = ? AND status = 'generating'",
                [battle_id],
            )
        return bool(rows)
