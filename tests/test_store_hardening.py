"""Votes bound to their session, every vote field checked, stale battles swept, and a read-only or
full database reported at start-up (real SQLite files; the full and read-only disks are real tmpfs
mounts, skipped where this user cannot mount)."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from arena.store.battles import ArenaStore, InvalidRecord, VoteRejected
from arena.votes import VoteInput
from tests.conftest import mounted_tmpfs

OWNER = "owner-session-1"


@pytest.fixture
def store(tmp_path: Path) -> ArenaStore:
    return ArenaStore(tmp_path / "votes.db")


def finished(store: ArenaStore, session_id: str = OWNER) -> str:
    battle_id = store.create_battle("What is sepsis?", "model-x", "model-y", {}, session_id=session_id)
    store.finish_battle(battle_id, "a", "b", {}, {}, identity_leak=False)
    return battle_id


def vote_rows(store: ArenaStore) -> int:
    with sqlite3.connect(store.path) as connection:
        return connection.execute("SELECT COUNT(*) FROM votes").fetchone()[0]


def test_only_the_session_that_started_a_battle_can_vote(store: ArenaStore) -> None:
    battle_id = finished(store)
    with pytest.raises(VoteRejected, match="another session"):
        store.record_vote(VoteInput(battle_id, "model_a", session_id="intruder-session"))
    assert vote_rows(store) == 0
    assert store.record_vote(VoteInput(battle_id, "model_a", session_id=OWNER)).session_id == OWNER


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"session_id": "x" * 1_000_000}, "session id is malformed"),
        ({"session_id": 'a,b\n"c"-123'}, "session id is malformed"),
        ({"session_id": ""}, "no session id"),
        ({"session_id": None}, "no session id"),
        ({"flag_a_unsafe": 7}, "flag_a_unsafe must be true or false"),
        ({"flag_b_incorrect": "yes"}, "flag_b_incorrect must be true or false"),
        ({"rationale": None}, "rationale must be text"),
        ({"rationale": "bad \ud800 char"}, "broken character"),
        ({"voter_role": "r" * 81}, "voter_role has 81 characters"),
        ({"outcome": ["model_a"]}, "not a valid outcome"),
    ],
)
def test_every_vote_field_is_checked_with_a_sentence(
    store: ArenaStore, fields: dict[str, object], message: str
) -> None:
    battle_id = finished(store)
    arguments: dict[str, object] = {"session_id": OWNER, **fields}
    outcome = arguments.pop("outcome", "tie")
    with pytest.raises(VoteRejected, match=message) as rejection:
        store.record_vote(VoteInput(battle_id, outcome, **arguments))  # type: ignore[arg-type]
    assert len(str(rejection.value)) < 200
    assert vote_rows(store) == 0


def test_battles_need_an_owner_and_encodable_text(store: ArenaStore) -> None:
    with pytest.raises(InvalidRecord, match="session"):
        store.create_battle("Dose?", "a", "b", {}, session_id="")
    with pytest.raises(InvalidRecord, match="surrogate"):
        store.create_battle("Dose \udc00?", "a", "b", {}, session_id=OWNER)
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("SELECT COUNT(*) FROM battles").fetchone()[0] == 0


def test_stale_generating_battles_are_swept_and_fresh_ones_kept(tmp_path: Path) -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    clock = {"now": now - timedelta(hours=1)}
    store = ArenaStore(tmp_path / "votes.db", clock=lambda: clock["now"])
    stale = store.create_battle("Old?", "a", "b", {}, session_id=OWNER)
    done = finished(store)
    clock["now"] = now
    fresh = store.create_battle("New?", "a", "b", {}, session_id=OWNER)

    assert store.void_stale_battles(now - timedelta(minutes=10), "stale: nobody finished it") == 1
    assert store.get_battle(stale).status == "voided"
    assert store.get_battle(stale).void_reason == "stale: nobody finished it"
    assert store.get_battle(done).status == "finished"
    assert store.get_battle(fresh).status == "generating"
    assert store.void_if_generating(fresh, "cancelled") is True
    assert store.void_if_generating(fresh, "cancelled") is False  # already void: a no-op, no error
    assert store.void_if_generating(done, "cancelled") is False  # finished battles keep their answers


def test_database_made_before_battle_owners_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "votes.db"
    ArenaStore(path)
    with sqlite3.connect(path) as connection:
        connection.execute("ALTER TABLE battles DROP COLUMN session_id")
    store = ArenaStore(path)
    assert store.problem is None
    battle_id = finished(store)
    assert store.get_battle(battle_id).session_id == OWNER


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    with mounted_tmpfs(tmp_path, "1m") as mount:
        yield mount


def test_read_only_database_is_reported_at_start_up(tmpfs: Path) -> None:
    finished(ArenaStore(tmpfs / "votes.db"))
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    store = ArenaStore(tmpfs / "votes.db")
    assert store.problem is not None and "read-only" in store.problem


def test_full_disk_is_reported_at_start_up(tmpfs: Path) -> None:
    ArenaStore(tmpfs / "votes.db")
    with (tmpfs / "filler").open("wb") as filler:  # fill the real disk to the last byte
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError:
            pass
    store = ArenaStore(tmpfs / "votes.db")
    assert store.problem is not None and "full" in store.problem


def test_healthy_database_has_no_problem(store: ArenaStore) -> None:
    assert store.problem is None


@pytest.mark.parametrize(
    "argv",
    [
        ["--model", "no-such-model", "--data", "bundled"],
        ["--model", "smollm2-135m", "--data", "no/such/file.jsonl"],
        ["--report"],
    ],
    ids=["unknown-model", "missing-data", "report-without-db"],
)
def test_evaluate_with_bad_arguments_creates_no_database(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from arena.evaluate import main

    monkeypatch.chdir(tmp_path)
    environ = {"MEDARENA_VOTES_DB": str(tmp_path / "votes.db")}
    assert main([*argv, "--out", str(tmp_path / "out")], environ=environ) == 2
    assert not (tmp_path / "votes.db").exists()
