"""`python -m arena.store copy --from votes.db --to <store>` (arena/store/copying.py) on real databases: a SQLite
file copied into a fresh database on the test Postgres server (slow tier) and into another SQLite file.
The copy keeps every battle, vote, evaluation result and cached answer; a second run copies nothing; a copy
killed mid-way finishes on the next run without a duplicate; a schema-version mismatch is refused.

Run as: python -m pytest tests/test_store_copy.py -q
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from arena.store.battles import ArenaStore
from arena.store.copying import copy_votes
from arena.store.opening import open_store
from arena.store.protocol import SchemaMismatch, StoreError, VoteStore
from arena.votes import VoteInput

REPO_ROOT = Path(__file__).resolve().parents[1]
PRE_ISSUE9 = REPO_ROOT / "tests" / "fixtures" / "votes_pre_issue9.db"
SESSION = "session-copy-1"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "copy" / "votes.db")
    return request.getfixturevalue("postgres_server").new_database()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A votes.db with 12 voted battles, one voided, one generating, an evaluation result and a cached answer."""
    path = tmp_path / "votes.db"
    store = ArenaStore(path)
    contestants = ("smollm2-135m/base", "gemma3-270m/base", "smollm2-135m/run-1")
    for index in range(12):
        battle_id = store.create_battle(
            f"Question {index}?",
            contestants[index % 3],
            contestants[(index + 1) % 3],
            {"t": 0.7},
            session_id=SESSION,
        )
        store.finish_battle(battle_id, "a", "b", {"latency_s": 1.0}, {}, identity_leak=index == 5)
        store.record_vote(
            VoteInput(
                battle_id, ("model_a", "tie", "model_b")[index % 3], session_id=SESSION, rationale=f"r{index}"
            )
        )
    store.void_battle(store.create_battle("Left?", "x/base", "y/base", {}, session_id=SESSION), "voter left")
    store.create_battle("Still going?", "x/base", "y/base", {}, session_id=SESSION)
    store.add_eval_results(
        [{"contestant": "smollm2-lora", "model_key": "smollm2-135m", "adapter_run": "run-1", "dataset": "medmcqa",
          "dataset_hash": "sha256:abc", "split": "test", "n": 20, "metric": "accuracy", "value": 0.4, "run_id": "r1"}]
    )  # fmt: skip
    store.cache_put("key-1", {"contestant": "smollm2-lora", "question_id": "q1", "answer": "5 mg"})
    return path


@pytest.fixture
def opened() -> Iterator[list[VoteStore]]:
    stores: list[VoteStore] = []
    yield stores
    for store in stores:
        store.close()


def contents(store: VoteStore) -> dict[str, object]:
    """Everything a copy must keep, without the numbers the target gives votes and results itself."""
    with store._connection() as session:  # type: ignore[attr-defined]
        battles = session.query("SELECT * FROM battles ORDER BY id")
        cache = session.query("SELECT * FROM eval_cache ORDER BY key")
    return {
        "battles": battles,
        "votes": [{k: v for k, v in row.items() if k != "vote_id"} for row in store.vote_export_rows()],
        "eval_results": [{k: v for k, v in row.items() if k != "id"} for row in store.eval_results()],
        "eval_cache": cache,
        # vote ids are the target's own (Postgres numbers copied votes itself): compared without them
        "rated": [
            {k: v for k, v in row.items() if k != "vote_id"}
            for row in store.rated_battles(include_identity_leaks=True)
        ],
    }


def counts(report: list) -> dict[str, tuple[int, int]]:
    return {line.table: (line.read, line.copied) for line in report}


def test_copy_keeps_everything_and_a_second_run_copies_nothing(
    source: Path, target: str, opened: list[VoteStore]
) -> None:
    assert counts(copy_votes(source, target)) == {
        "battles": (14, 14), "votes": (12, 12), "eval_results": (1, 1), "eval_cache": (1, 1),
    }  # fmt: skip
    copied = open_store(target)
    opened.append(copied)
    assert contents(copied) == contents(ArenaStore(source))

    assert counts(copy_votes(source, target)) == {
        "battles": (14, 0), "votes": (12, 0), "eval_results": (1, 0), "eval_cache": (1, 0),
    }  # fmt: skip
    assert contents(copied) == contents(ArenaStore(source))
    # the target numbers its own votes on (Postgres may skip numbers: a skipped row still draws one)
    battle_id = copied.create_battle("After the copy?", "a/base", "b/base", {}, session_id=SESSION)
    copied.finish_battle(battle_id, "a", "b", {}, {}, identity_leak=False)
    assert copied.record_vote(VoteInput(battle_id, "tie", session_id=SESSION)).id > 12
    assert copied.vote_count() == 13


KILLED_COPY = """
import os, sys
import arena.store.copying as store_copy
store_copy.BATCH_ROWS = 3
batches = store_copy._source_batches
def dies_in_the_votes(path, table, order, columns):
    for number, batch in enumerate(batches(path, table, order, columns)):
        if table == "votes" and number == 2:
            os._exit(9)  # killed after two batches of votes were committed
        yield batch
store_copy._source_batches = dies_in_the_votes
store_copy.copy_votes(sys.argv[1], sys.argv[2])
"""


@pytest.mark.slow
def test_a_killed_copy_resumes_without_duplicates(source: Path, target: str, opened: list[VoteStore]) -> None:
    child = subprocess.run(
        [sys.executable, "-c", KILLED_COPY, str(source), target],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert child.returncode == 9, child.stderr
    partial = open_store(target)
    opened.append(partial)
    assert partial.vote_count() == 6  # two batches of three

    assert counts(copy_votes(source, target))["votes"] == (12, 6)
    assert contents(partial) == contents(ArenaStore(source))


def test_a_source_of_another_schema_version_is_refused(
    tmp_path: Path, target: str, opened: list[VoteStore]
) -> None:
    old = tmp_path / "old.db"
    shutil.copy(PRE_ISSUE9, old)
    with pytest.raises(SchemaMismatch, match="schema version 0"):
        copy_votes(old, target)
    assert not Path(target).exists() or ArenaStore(Path(target)).vote_count() == 0
    with sqlite3.connect(old) as db:  # the source is read only: not migrated by the refusal
        assert db.execute("PRAGMA user_version").fetchone() == (0,)


def test_a_target_from_a_newer_version_is_refused(source: Path, target: str, opened: list[VoteStore]) -> None:
    newer = open_store(target)
    opened.append(newer)
    with newer._transaction() as session:  # type: ignore[attr-defined]
        if session.dialect == "sqlite":
            session.execute("PRAGMA user_version = 99")
        else:
            session.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="newer MedArena"):
        copy_votes(source, target)
    assert newer.vote_count() == 0


@pytest.mark.slow
def test_copy_cli(source: Path, target: str) -> None:
    command = [sys.executable, "-m", "arena.store", "copy", "--from", str(source), "--to", target]
    first = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "votes: 12 copied, 0 already there" in first.stdout
    again = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert "votes: 0 copied, 12 already there" in again.stdout
    missing = subprocess.run(
        [*command[:5], str(source.parent / "nope.db"), *command[6:]],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "no vote database" in missing.stdout
