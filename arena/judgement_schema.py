"""The tables behind clinical judgement in votes.db (schema version 3): rubric entries per answer,
each vote's quality record (rater, dwell time, calibration result), raters with their verified role,
invite codes, and the follow-up turns of battles. `arena.store_schema` creates
them with the rest and bumps the file to version 3; nothing here touches the older tables.

Run as: python -m pytest tests/test_store_migration.py tests/test_rubric.py -q
"""

from __future__ import annotations

from sqlite_utils import Database

JUDGEMENT_SCHEMA_VERSION = 3


def create_judgement_tables(db: Database) -> None:
    """Create the rubric and rater-quality tables where missing (safe to run on every open)."""
    db["rubrics"].create(
        {
            "id": int,
            "battle_id": str,
            "side": str,  # "a" or "b"
            "contestant_id": str,  # the stable id of the answer's contestant
            "correctness": str,
            "completeness": str,
            "harm_severity": str,
            "harm_likelihood": str,
            "clarity": str,
            "reasons": str,  # JSON list of reason chips
            "session_id": str,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("battle_id", "battles", "id")],
        not_null=["battle_id", "side", "contestant_id", "reasons", "session_id", "created_at"],
        if_not_exists=True,
    )
    db["rubrics"].create_index(
        ["battle_id", "side"], index_name="rubrics_one_per_answer", unique=True, if_not_exists=True
    )
    db["vote_quality"].create(
        {
            "battle_id": str,
            "rater_id": str,  # invite-bound rater, signed-in account, or the session
            "rater_source": str,  # "invite", "oauth" or "session"
            "client_id": str,  # a hash of the client address; never the address itself
            "dwell_s": float,  # from the answers being shown to the vote
            "min_dwell_s": float,  # what the answers' length asked for
            "too_fast": int,  # kept but not rated
            "calibration_correct": int,  # NULL for ordinary battles
            "created_at": str,
        },
        pk="battle_id",
        foreign_keys=[("battle_id", "battles", "id")],
        not_null=["rater_id", "rater_source", "client_id", "too_fast", "created_at"],
        if_not_exists=True,
    )
    db["raters"].create(
        {"id": str, "role": str, "verified": int, "source": str, "created_at": str},
        pk="id",
        not_null=["role", "verified", "source", "created_at"],
        if_not_exists=True,
    )
    db["invite_codes"].create(
        {"code_hash": str, "role": str, "created_at": str, "rater_id": str, "used_at": str},
        pk="code_hash",
        not_null=["role", "created_at"],
        if_not_exists=True,
    )
    db["battle_turns"].create(
        {
            "battle_id": str,
            "turn": int,  # 1, 2, ...: follow-ups after the battle's first question (turn 0, in battles)
            "question": str,
            "answer_a": str,
            "answer_b": str,
            "telemetry_a": str,
            "telemetry_b": str,
            "status": str,  # generating, finished or voided
            "void_reason": str,
            "created_at": str,
            "finished_at": str,
        },
        pk=("battle_id", "turn"),
        foreign_keys=[("battle_id", "battles", "id")],
        not_null=["question", "status", "created_at"],
        if_not_exists=True,
    )


def migrate_to_judgement(db: Database) -> None:
    """Version 2 -> 3: the judgement tables exist (made above), so only the version moves."""
    if db.execute("PRAGMA user_version").fetchone()[0] >= JUDGEMENT_SCHEMA_VERSION:
        return
    create_judgement_tables(db)
    db.execute(f"PRAGMA user_version = {JUDGEMENT_SCHEMA_VERSION}")
