"""A votes.db written before issue #9 (tests/fixtures/votes_pre_issue9.db, made by the store of commit
8c1f143) opens with the current store with every vote, contestant, result and cached answer intact.

Run as: python -m pytest tests/test_store_migration.py -q
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from arena.store import ArenaStore

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "votes_pre_issue9.db"


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

    store = ArenaStore(path)  # opening runs the schema step on the old file, in place
    assert store.problem is None
    assert snapshot(path) == before
    rated = store.rated_battles()
    assert [(r["contestant_a"], r["contestant_b"], r["outcome"]) for r in rated] == [
        (a, b, outcome) for a, b, outcome, *_ in before["votes"]
    ]
    assert {r["contestant"] for r in store.eval_results()} == {row[0] for row in before["eval_results"]}
    assert store.vote_count() == 6
