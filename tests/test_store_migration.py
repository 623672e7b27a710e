"""A votes.db written before issue #9 (tests/fixtures/votes_pre_issue9.db, made by the store of commit
8c1f143) opens with the current store with every vote, contestant, result and cached answer intact,
and migrated in place to stable contestant ids (schema version 2). A version-4 votes.db
(tests/fixtures/votes_schema4.db, commit 5a4baad) gains the served weights of its evaluation rows
(schema version 5) and keeps every vote.

Run as: python -m pytest tests/test_store_migration.py -q
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from sqlite_utils import Database

from arena.board import standing_cells, to_rated
from arena.eval.results import NOT_MEASURED_HERE
from arena.leaderboard import build_leaderboard
from arena.ratings import leaderboard
from arena.store.battles import ArenaStore
from arena.store.schema import SCHEMA_VERSION, apply_schema
from arena.store.sqlite_db import SqliteSession

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "votes_pre_issue9.db"
SCHEMA4 = Path(__file__).resolve().parent / "fixtures" / "votes_schema4.db"


def snapshot(path: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(path) as db:
        return {
            "votes": db.execute(
                "SELECT b.contestant_a, b.contestant_b, v.outcome, v.flag_b_unsafe, v.rationale, v.session_id "
                "FROM votes v JOIN battles b ON b.id = v.battle_id ORDER BY v.id"
            ).fetchall(),
            "battles": db.execute(
                "SELECT id, status, contestant_a, contestant_b FROM battles ORDER BY id"
            ).fetchall(),
            "eval_results": db.execute(
                "SELECT contestant, metric, value FROM eval_results ORDER BY id"
            ).fetchall(),
            "eval_cache": db.execute(
                "SELECT key, contestant, answer FROM eval_cache ORDER BY key"
            ).fetchall(),
        }


def test_a_pre_issue9_database_opens_with_every_vote_and_contestant_intact(tmp_path: Path) -> None:
    path = tmp_path / "votes.db"
    shutil.copy(FIXTURE, path)
    before = snapshot(path)
    assert len(before["votes"]) == 6 and len(before["battles"]) == 7

    store = ArenaStore(path)  # opening migrates the old file in place
    assert store.problem is None
    assert snapshot(path) == before  # the labels, answers and votes as they were
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        ids = dict(db.execute("SELECT contestant_a, contestant_a_id FROM battles UNION "
                              "SELECT contestant_b, contestant_b_id FROM battles").fetchall())  # fmt: skip
    assert ids == {
        "SmolLM2-135M-Instruct · base · nf4": "smollm2-135m/base",
        "SmolLM2-135M-Instruct · LoRA 20261122-215050 · nf4": "smollm2-135m/20261122-215050",
        "Gemma-3-270M · base · nf4": "gemma3-270m/base",
        "Gemma-3-270M · LoRA 20261122-220025 · nf4": "gemma3-270m/20261122-220025",
    }
    # Every vote keeps its contestants, now counted under their stable ids.
    rated = store.rated_battles()
    assert [(r["label_a"], r["label_b"], r["outcome"]) for r in rated] == [
        (a, b, outcome) for a, b, outcome, *_ in before["votes"]
    ]
    assert [(r["contestant_a"], r["contestant_b"]) for r in rated] == [
        (ids[a], ids[b]) for a, b, *_ in before["votes"]
    ]
    assert {(r["contestant"], r["contestant_id"]) for r in store.eval_results()} == {
        (label, ids[label]) for label, *_ in before["eval_results"]
    }
    with sqlite3.connect(path) as db:
        cached = db.execute("SELECT contestant, contestant_id FROM eval_cache").fetchall()
    assert cached and all(ids[label] == stable_id for label, stable_id in cached)
    assert store.vote_count() == 6

    # The ratings are the same contestants' ratings, under ids instead of labels.
    by_label = leaderboard(
        to_rated([{**r, "contestant_a": r["label_a"], "contestant_b": r["label_b"]} for r in rated])
    )
    by_id = leaderboard(to_rated(rated))
    assert [(ids[row.name], row.bt_rating) for row in by_label] == [
        (row.name, row.bt_rating) for row in by_id
    ]

    ArenaStore(path)  # a second open changes nothing
    assert snapshot(path) == before and store.rated_battles() == rated


def test_a_failed_migration_leaves_the_old_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "votes.db"
    shutil.copy(FIXTURE, path)
    with sqlite3.connect(path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(battles)")]
    connection = sqlite3.connect(path)
    database = Database(connection)
    connection.execute("BEGIN IMMEDIATE")
    apply_schema(SqliteSession(database))
    connection.execute("ROLLBACK")  # as a crash before the commit would
    connection.close()
    with sqlite3.connect(path) as db:
        assert [row[1] for row in db.execute("PRAGMA table_info(battles)")] == columns
        assert db.execute("PRAGMA user_version").fetchone() == (0,)
    assert (
        ArenaStore(path).rated_battles()[0]["contestant_a"] == "smollm2-135m/base"
    )  # migrates on the next open


def test_a_version_3_database_gains_the_judgement_tables_and_keeps_its_votes(tmp_path: Path) -> None:
    path = tmp_path / "votes.db"
    shutil.copy(FIXTURE, path)
    ArenaStore(path)  # up to date, then taken back to version 3: no judgement tables
    with sqlite3.connect(path) as db:
        for table in ("rubrics", "vote_quality", "raters", "invite_codes", "battle_turns"):
            db.execute(f"DROP TABLE {table}")
        db.execute("PRAGMA user_version = 3")
    before = snapshot(path)
    store = ArenaStore(path)
    assert snapshot(path) == before
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (5,)
        indexes = {row[1] for row in db.execute("SELECT * FROM sqlite_master WHERE type = 'index'")}
    assert {"rubrics_one_per_answer", "battle_turns_one_per_number"} <= indexes
    code = store.create_invite("nurse")
    assert store.redeem_invite(code)[1] == "nurse"


def every_vote(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT v.*, b.contestant_a, b.contestant_b, b.contestant_a_id, b.contestant_b_id, b.answer_a, "
            "b.answer_b FROM votes v JOIN battles b ON b.id = v.battle_id ORDER BY v.id"
        ).fetchall()


def test_a_version_4_database_records_what_its_evaluations_scored_and_keeps_every_vote(
    tmp_path: Path,
) -> None:
    path = tmp_path / "votes.db"
    shutil.copy(SCHEMA4, path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (4,)
    votes, before = every_vote(path), snapshot(path)
    assert len(votes) == 7

    store = ArenaStore(path)  # migrates in place to version 5
    assert store.problem is None
    assert every_vote(path) == votes and snapshot(path) == before
    assert store.vote_count() == 7 and len(store.rated_battles()) == 7
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (5,)
        cached = db.execute("SELECT contestant, weights FROM eval_cache").fetchall()
    # PEFT-only arena.evaluate wrote NF4 labels: that is what those rows scored; a label that names
    # no weights stays unknown rather than guessed.
    assert {(r["contestant"], r["weights"]) for r in store.eval_results()} == {
        ("SmolLM2-135M-Instruct · base · nf4", "nf4"),
        ("SmolLM2-135M-Instruct · LoRA 20261122-215050 · nf4", "nf4"),
        ("a label from another registry", None),
    }
    assert cached and all(weights == "nf4" for _, weights in cached)

    # Served now on llama.cpp's Q4_1 GGUF: the NF4 scores are not shown beside these weights.
    served = {"smollm2-135m/base": "SmolLM2 · base · gguf", "smollm2-135m/20261122-215050": "SmolLM2 · LoRA"}

    def board(weights: str) -> dict[str, list]:
        table = build_leaderboard(
            store.rated_battles(include_identity_leaks=True), store.eval_results(), {}, served, rounds=20,
            served_weights=dict.fromkeys(served, weights),
        )  # fmt: skip
        return {
            row.contestant_id: dict(zip(table.columns, standing_cells(row), strict=True))
            for row in table.rows
        }

    on_gguf = board("gguf-q4_1")
    assert on_gguf["smollm2-135m/base"]["BERTScore F1"] == NOT_MEASURED_HERE
    assert on_gguf["smollm2-135m/base"]["Battles"] > 0  # its votes still count
    on_nf4 = board("nf4")  # the PEFT engine serving the weights that were scored
    assert on_nf4["smollm2-135m/base"]["BERTScore F1"] == "0.500 [0.400, 0.600]"
    assert on_nf4["smollm2-135m/20261122-215050"]["ROUGE-L"] == "0.200 [0.100, 0.300]"
    assert on_nf4["gemma3-270m/base"]["BERTScore F1"] == ""  # not served now: no weights to match

    ArenaStore(path)  # a second open changes nothing
    assert every_vote(path) == votes
