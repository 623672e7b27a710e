"""Tests for the vote store contract (arena/store/battles.py, arena/store/postgres.py) and arena/export.py: every
test taking `store` or `reopen` runs on both stores, a real SQLite file (WAL mode) in pytest's tmp_path
and a fresh database on a real, throwaway Postgres server (tests/postgres_server.py; slow tier).

Run: ``python -m pytest tests/test_store.py -q``
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from arena.board import contestant_telemetry
from arena.export import EXPORT_COLUMNS, write_votes_csv, write_votes_jsonl
from arena.store.battles import (
    MAX_RATIONALE_CHARS,
    ArenaStore,
    BattleStateError,
    BattleStatus,
    InvalidRecord,
    VoteOutcome,
    VoteRejected,
    VoteRow,
    default_db_path,
    eval_cache_key,
)
from arena.store.postgres import PostgresStore
from arena.store.protocol import StoreUnavailable, UniqueViolation, VoteStore
from arena.votes import VoteInput

REPO_ROOT = Path(__file__).resolve().parents[1]


SESSION = "session-test-1"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "votes.db"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def location(request: pytest.FixtureRequest, db_path: Path) -> str | Path:
    """Where the store under test lives: a SQLite file, or a fresh database on the test Postgres server."""
    if request.param == "sqlite":
        return db_path
    return request.getfixturevalue("postgres_server").new_database()


@pytest.fixture
def reopen(location: str | Path) -> Iterator[Callable[..., VoteStore]]:
    """Open (again) the store at `location`, as a new process would; every opened store is closed after."""
    opened: list[VoteStore] = []

    def open_again(**options: object) -> VoteStore:
        store = (
            PostgresStore(location, **options)
            if isinstance(location, str)
            else ArenaStore(location, **options)
        )
        opened.append(store)
        return store

    yield open_again
    for store in opened:
        store.close()


@pytest.fixture
def store(reopen: Callable[..., VoteStore]) -> VoteStore:
    return reopen()


def count_rows(store: VoteStore, table: str) -> int:
    with store._connection() as session:  # type: ignore[attr-defined]
        return session.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]


def start_battle(store: VoteStore, question: str = "First-line treatment for uncomplicated UTI?") -> str:
    return store.create_battle(
        question,
        "smollm2-lora",
        "gemma3-base",
        {"temperature": 0.7, "max_new_tokens": 256},
        category="infectious disease",
        reference_answer="Nitrofurantoin for 5 days.",
        question_source="bank:mqa-0012",
        session_id=SESSION,
    )


def finished_battle(store: VoteStore, question: str = "First-line treatment for uncomplicated UTI?") -> str:
    battle_id = start_battle(store, question)
    store.finish_battle(
        battle_id,
        "Nitrofurantoin.",
        "Amoxicillin.",
        {"latency_s": 2.0, "tokens_per_s": 30.0, "memory_mb": 900.0, "ttft_s": 0.4},
        {"latency_s": 1.0, "tokens_per_s": 50.0, "memory_mb": 700.0, "ttft_s": 0.2},
        identity_leak=False,
        bertscore_a=0.91,
        bertscore_b=0.72,
    )
    return battle_id


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_export(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key != "MEDARENA_VOTES_DB"}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "arena.export", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )


def stepping_clock(start: datetime) -> Callable[[], datetime]:
    """A clock that moves one minute per reading, so row order by time is unambiguous."""
    ticks = itertools.count()
    return lambda: start + timedelta(minutes=next(ticks))


# -- opening the database ------------------------------------------------------------------------------


def test_default_db_path_reads_the_environment() -> None:
    assert default_db_path({"MEDARENA_VOTES_DB": "/data/votes.db"}) == Path("/data/votes.db")
    checkout_db = Path(__file__).resolve().parent.parent / "votes.db"  # never the working directory's
    assert default_db_path({}) == checkout_db
    assert default_db_path({"MEDARENA_VOTES_DB": "  "}) == checkout_db


def test_store_creates_parent_folders_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "space" / "data" / "votes.db"
    ArenaStore(path)
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"battles", "votes", "eval_results", "eval_cache"} <= tables


def test_reopening_keeps_schema_and_rows(db_path: Path) -> None:
    battle_id = finished_battle(ArenaStore(db_path))
    reopened = ArenaStore(db_path)
    battle = reopened.get_battle(battle_id)
    assert battle is not None
    assert battle.status == BattleStatus.FINISHED


def test_memory_database_is_refused() -> None:
    with pytest.raises(ValueError, match="file path"):
        ArenaStore(":memory:")


# -- battles and votes ---------------------------------------------------------------------------------


def test_full_battle_lifecycle(store: VoteStore) -> None:
    battle_id = start_battle(store)
    assert len(battle_id) == 32 and int(battle_id, 16) >= 0

    generating = store.get_battle(battle_id)
    assert generating is not None
    assert generating.status == BattleStatus.GENERATING
    assert generating.answer_a is None and generating.finished_at is None
    assert generating.generation_settings == {"temperature": 0.7, "max_new_tokens": 256}
    assert store.contestant_battle_counts() == {}

    store.finish_battle(
        battle_id,
        "Nitrofurantoin.",
        "Amoxicillin.",
        {"latency_s": 2.0, "tokens_per_s": 30.0},
        {"latency_s": 1.0, "first_token_s": 3.5},
        identity_leak=False,
        bertscore_a=0.91,
    )
    finished = store.get_battle(battle_id)
    assert finished is not None
    assert finished.status == BattleStatus.FINISHED
    assert (finished.answer_a, finished.answer_b) == ("Nitrofurantoin.", "Amoxicillin.")
    assert finished.telemetry_b == {"latency_s": 1.0, "first_token_s": 3.5}
    assert (finished.bertscore_a, finished.bertscore_b) == (0.91, None)
    assert finished.identity_leak is False
    assert finished.category == "infectious disease"
    assert finished.reference_answer == "Nitrofurantoin for 5 days."
    assert finished.question_source == "bank:mqa-0012"
    assert finished.finished_at is not None and finished.finished_at >= finished.created_at

    vote = store.record_vote(
        VoteInput(
            battle_id,
            "model_a",
            flag_b_incorrect=True,
            rationale="B ignores local resistance patterns.",
            voter_role="physician",
            voter_specialty="urology",
            session_id=SESSION,
        )
    )
    assert isinstance(vote, VoteRow)
    assert vote.outcome == VoteOutcome.MODEL_A
    assert (vote.flag_a_unsafe, vote.flag_a_incorrect, vote.flag_b_unsafe, vote.flag_b_incorrect) == (
        False,
        False,
        False,
        True,
    )
    assert store.get_vote(battle_id) == vote
    assert store.vote_count() == 1
    assert store.contestant_battle_counts() == {"gemma3-base": 1, "smollm2-lora": 1}

    [rated] = store.rated_battles()
    assert rated["battle_id"] == battle_id
    assert (rated["contestant_a"], rated["contestant_b"], rated["outcome"]) == (
        "smollm2-lora",
        "gemma3-base",
        "model_a",
    )
    assert rated["voter_specialty"] == "urology"
    assert rated["flag_b_incorrect"] is True and rated["flag_a_unsafe"] is False


def test_finish_and_void_refuse_wrong_states(store: VoteStore) -> None:
    with pytest.raises(BattleStateError, match="no battle"):
        store.finish_battle("f" * 32, "a", "b", {}, {}, identity_leak=False)
    with pytest.raises(BattleStateError, match="no battle"):
        store.void_battle("f" * 32, "test")

    finished_id = finished_battle(store)
    with pytest.raises(BattleStateError, match="already finished"):
        store.finish_battle(finished_id, "a", "b", {}, {}, identity_leak=False)

    voided_id = start_battle(store)
    store.void_battle(voided_id, "generation timed out")
    voided = store.get_battle(voided_id)
    assert voided is not None
    assert (voided.status, voided.void_reason) == (BattleStatus.VOIDED, "generation timed out")
    with pytest.raises(BattleStateError, match="already voided"):
        store.finish_battle(voided_id, "late answer", "late answer", {}, {}, identity_leak=False)
    with pytest.raises(BattleStateError, match="already voided"):
        store.void_battle(voided_id, "again")
    assert store.get_battle(voided_id) == voided


def test_create_battle_rejects_bad_input(store: VoteStore) -> None:
    with pytest.raises(InvalidRecord, match="question"):
        store.create_battle("   ", "a", "b", {}, session_id=SESSION)
    with pytest.raises(InvalidRecord, match="two different"):
        store.create_battle("Dose?", "same-model", "same-model", {}, session_id=SESSION)
    with pytest.raises(InvalidRecord, match="JSON"):
        store.create_battle("Dose?", "a", "b", {"not serialisable": object()}, session_id=SESSION)
    assert count_rows(store, "battles") == 0


def _forged(store: VoteStore) -> str:
    finished_battle(store)
    return "0123456789abcdef0123456789abcdef"


def _generating(store: VoteStore) -> str:
    return start_battle(store)


def _voided(store: VoteStore) -> str:
    battle_id = finished_battle(store)
    store.void_battle(battle_id, "voter left")
    return battle_id


def _already_voted(store: VoteStore) -> str:
    battle_id = finished_battle(store)
    store.record_vote(VoteInput(battle_id, "tie", session_id=SESSION))
    return battle_id


@pytest.mark.parametrize(
    ("make_battle", "outcome", "rationale", "message"),
    [
        (_forged, "model_a", "", "does not exist"),
        (_generating, "model_a", "", "still generating"),
        (_voided, "model_b", "", "voided"),
        (_already_voted, "model_b", "", "already has a vote"),
        (finished_battle, "model_c", "", "not a valid outcome"),
        (finished_battle, "", "", "not a valid outcome"),
        (finished_battle, "tie", "x" * (MAX_RATIONALE_CHARS + 1), "keep it to 500"),
    ],
    ids=[
        "forged-id",
        "unfinished",
        "voided",
        "double-vote",
        "bad-outcome",
        "empty-outcome",
        "long-rationale",
    ],
)
def test_rejected_votes_store_nothing(
    store: VoteStore,
    make_battle: Callable[[ArenaStore], str],
    outcome: str,
    rationale: str,
    message: str,
) -> None:
    battle_id = make_battle(store)
    votes_before = store.vote_count()
    vote_before = store.get_vote(battle_id)

    with pytest.raises(VoteRejected, match=message) as rejection:
        store.record_vote(VoteInput(battle_id, outcome, rationale=rationale, session_id=SESSION))

    assert str(rejection.value).endswith(".")
    assert store.vote_count() == votes_before
    assert store.get_vote(battle_id) == vote_before


def test_rationale_of_exactly_the_limit_is_accepted(store: VoteStore) -> None:
    battle_id = finished_battle(store)
    vote = store.record_vote(
        VoteInput(battle_id, "both_bad", rationale="y" * MAX_RATIONALE_CHARS, session_id=SESSION)
    )
    assert len(vote.rationale) == MAX_RATIONALE_CHARS


def test_html_is_stored_verbatim_and_round_trips(store: VoteStore) -> None:
    question = '<script>alert("q")</script> & <b>dose</b>?'
    rationale = "<img src=x onerror=alert(1)> 'quoted' &amp; <!-- comment -->"
    battle_id = finished_battle(store, question=question)
    store.record_vote(VoteInput(battle_id, "model_b", rationale=rationale, session_id=SESSION))

    battle = store.get_battle(battle_id)
    vote = store.get_vote(battle_id)
    assert battle is not None and vote is not None
    assert battle.question == question
    assert vote.rationale == rationale
    with store._connection() as session:  # type: ignore[attr-defined]
        assert session.query("SELECT rationale FROM votes")[0]["rationale"] == rationale


def test_fifty_concurrent_voters_on_fifty_battles(store: VoteStore) -> None:
    battle_ids = [finished_battle(store, question=f"Question {index}?") for index in range(50)]
    start_together = threading.Barrier(50)

    def vote(battle_id: str) -> VoteRow:
        start_together.wait()
        return store.record_vote(VoteInput(battle_id, "model_a", session_id=SESSION))

    with ThreadPoolExecutor(50) as pool:
        votes = list(pool.map(vote, battle_ids))

    assert store.vote_count() == 50
    assert {vote.battle_id for vote in votes} == set(battle_ids)
    assert len({vote.id for vote in votes}) == 50
    assert len(store.rated_battles()) == 50


def test_twenty_concurrent_double_votes_store_exactly_one(store: VoteStore) -> None:
    battle_id = finished_battle(store)
    start_together = threading.Barrier(20)

    def vote(voter: int) -> str:
        start_together.wait()
        try:
            store.record_vote(VoteInput(battle_id, "model_b", session_id=SESSION))
        except VoteRejected as rejection:
            return str(rejection)
        return "stored"

    with ThreadPoolExecutor(20) as pool:
        results = Counter(pool.map(vote, range(20)))

    assert results["stored"] == 1
    assert results["This battle already has a vote; each battle takes exactly one."] == 19
    assert store.vote_count() == 1


# -- durability and crashes ----------------------------------------------------------------------------


def test_acknowledged_vote_survives_reopening(reopen: Callable[..., VoteStore]) -> None:
    first = reopen()
    battle_id = finished_battle(first)
    vote = first.record_vote(VoteInput(battle_id, "tie", rationale="Both fine.", session_id=SESSION))

    reopened = reopen()
    assert reopened.get_vote(battle_id) == vote
    assert reopened.vote_count() == 1


@pytest.mark.slow
def test_acknowledged_vote_survives_process_death(
    location: str | Path, reopen: Callable[..., VoteStore]
) -> None:
    battle_id = finished_battle(reopen())
    # The child acknowledges the vote and then dies without any cleanup.
    child = run_python(
        "import os, sys\n"
        "from arena.store.opening import open_store\n"
        "from arena.votes import VoteInput\n"
        "vote = VoteInput(sys.argv[2], 'model_b', rationale='from the child', session_id='session-test-1')\n"
        "open_store(sys.argv[1]).record_vote(vote)\n"
        "print('acknowledged', flush=True)\n"
        "os._exit(0)\n",
        str(location),
        battle_id,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "acknowledged"

    vote = reopen().get_vote(battle_id)
    assert vote is not None and vote.rationale == "from the child"


class StoreFailingAfterVoteInsert(ArenaStore):
    """Replaces the read-back that follows the vote INSERT with a second INSERT that violates UNIQUE."""

    def _read_vote(self, session, battle_id):  # type: ignore[no-untyped-def]
        session.insert(
            "votes",
            {
                "battle_id": battle_id,
                "outcome": "tie",
                "flag_a_unsafe": 0,
                "flag_a_incorrect": 0,
                "flag_b_unsafe": 0,
                "flag_b_incorrect": 0,
                "rationale": "",
                "voter_role": "",
                "voter_specialty": "",
                "session_id": "",
                "created_at": "now",
            },
        )
        raise AssertionError("the second insert should have violated the UNIQUE index")


class PostgresFailingAfterVoteInsert(PostgresStore):
    _read_vote = StoreFailingAfterVoteInsert._read_vote


def test_failure_after_vote_insert_leaves_no_vote(
    location: str | Path, reopen: Callable[..., VoteStore]
) -> None:
    battle_id = finished_battle(reopen())
    failing_class = (
        PostgresFailingAfterVoteInsert if isinstance(location, str) else StoreFailingAfterVoteInsert
    )
    failing = failing_class(location)

    with pytest.raises(UniqueViolation, match="votes"):
        failing.record_vote(
            VoteInput(battle_id, "model_a", rationale="should be rolled back", session_id=SESSION)
        )
    failing.close()

    store = reopen()
    assert store.vote_count() == 0
    assert store.get_vote(battle_id) is None
    assert (
        store.record_vote(VoteInput(battle_id, "model_b", session_id=SESSION)).outcome == VoteOutcome.MODEL_B
    )


@pytest.mark.slow
def test_process_killed_mid_vote_leaves_no_vote(
    location: str | Path, reopen: Callable[..., VoteStore]
) -> None:
    battle_id = finished_battle(reopen())
    # The child dies (no rollback, no close) after the vote INSERT but before COMMIT.
    child = run_python(
        "import os, sys\n"
        "from arena.store.battles import ArenaStore\n"
        "from arena.store.postgres import PostgresStore, is_postgres_url\n"
        "base = PostgresStore if is_postgres_url(sys.argv[1]) else ArenaStore\n"
        "class DiesMidTransaction(base):\n"
        "    def _read_vote(self, session, battle_id):\n"
        "        assert session.query('SELECT COUNT(*) AS n FROM votes')[0]['n'] == 1\n"
        "        os._exit(17)\n"
        "from arena.votes import VoteInput\n"
        "vote = VoteInput(sys.argv[2], 'model_a', rationale='lost', session_id='session-test-1')\n"
        "DiesMidTransaction(sys.argv[1]).record_vote(vote)\n",
        str(location),
        battle_id,
    )
    assert child.returncode == 17, child.stderr

    store = reopen()
    assert store.vote_count() == 0
    if isinstance(location, Path):
        with sqlite3.connect(location) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert (
        store.record_vote(VoteInput(battle_id, "model_b", session_id=SESSION)).outcome == VoteOutcome.MODEL_B
    )


# -- reads for ratings and pairing ---------------------------------------------------------------------


def test_rated_battles_order_and_filters(reopen: Callable[..., VoteStore]) -> None:
    store = reopen(clock=stepping_clock(datetime(2025, 1, 1, tzinfo=UTC)))
    first_created = finished_battle(store, "Q1?")
    second_created = finished_battle(store, "Q2?")
    leaked = start_battle(store, "Q3?")
    store.finish_battle(leaked, "As Gemma, I think...", "b", {}, {}, identity_leak=True)
    voided_after_vote = finished_battle(store, "Q4?")

    # Votes arrive in a different order than the battles were created.
    store.record_vote(VoteInput(second_created, "model_a", session_id=SESSION))
    store.record_vote(VoteInput(leaked, "tie", session_id=SESSION))
    store.record_vote(VoteInput(first_created, "model_b", session_id=SESSION))
    store.record_vote(VoteInput(voided_after_vote, "model_a", session_id=SESSION))
    store.void_battle(voided_after_vote, "moderation: spam vote")

    assert [row["battle_id"] for row in store.rated_battles()] == [second_created, first_created]
    with_leaks = store.rated_battles(include_identity_leaks=True)
    assert [row["battle_id"] for row in with_leaks] == [second_created, leaked, first_created]
    assert [row["identity_leak"] for row in with_leaks] == [False, True, False]
    assert [row["voted_at"] for row in with_leaks] == sorted(row["voted_at"] for row in with_leaks)
    assert store.vote_count() == 4


def test_contestant_counts_and_telemetry_use_finished_battles_only(store: VoteStore) -> None:
    finished_battle(store)
    # still generating: ignored
    store.create_battle("Other?", "gemma3-base", "medgemma-lora", {}, session_id=SESSION)
    battle_id = store.create_battle("Third?", "medgemma-lora", "smollm2-lora", {}, session_id=SESSION)
    store.finish_battle(
        battle_id,
        "a",
        "b",
        {"latency_s": 4.0, "tokens_per_s": 10.0, "memory_mb": 2000.0},
        {"latency_s": 3.0, "tokens_per_s": 20.0, "memory_mb": 1100.0},
        identity_leak=False,
    )
    voided = finished_battle(store)
    store.void_battle(voided, "abandoned")

    assert store.contestant_battle_counts() == {"gemma3-base": 1, "medgemma-lora": 1, "smollm2-lora": 2}
    telemetry = contestant_telemetry(store.telemetry_samples())
    assert telemetry["smollm2-lora"] == {
        "battles": 2,
        "median_latency_s": 2.5,
        "median_tokens_per_s": 25.0,
        "memory_mb": 1100.0,  # the latest figure for the contestant's weights
    }
    assert telemetry["medgemma-lora"]["memory_mb"] == 2000.0
    assert set(telemetry) == {"gemma3-base", "medgemma-lora", "smollm2-lora"}


# -- automatic evaluation ------------------------------------------------------------------------------


def eval_row(metric: str, value: float, **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "contestant": "smollm2-lora",
        "model_key": "smollm2-360m",
        "adapter_run": "runs/smollm2-medqa",
        "dataset": "medmcqa",
        "dataset_hash": "sha256:abc",
        "split": "test",
        "n": 200,
        "metric": metric,
        "value": value,
        "ci_low": value - 0.05,
        "ci_high": value + 0.05,
        "scoring_model": None,
        "git_commit": "deadbeef",
        "run_id": "run-1",
    }
    row.update(overrides)
    return row


def test_add_eval_results_round_trip(store: VoteStore) -> None:
    store.add_eval_results(
        [
            eval_row("accuracy", 0.61),
            eval_row("bertscore_f1", 0.84, scoring_model="roberta-large"),
            eval_row("accuracy", 0.55, contestant="gemma3-base", adapter_run=None),
        ]
    )
    stored = store.eval_results()
    assert [row["metric"] for row in stored] == ["accuracy", "bertscore_f1", "accuracy"]
    assert stored[1]["scoring_model"] == "roberta-large"
    assert stored[0]["created_at"]
    [gemma] = store.eval_results("gemma3-base")
    assert (gemma["value"], gemma["adapter_run"], gemma["n"]) == (0.55, None, 200)


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ({**eval_row("f1", 0.5), "metric": None}, "missing metric"),
        (eval_row("f1", 0.5, typo_field=1), "unknown field"),
        (eval_row("f1", float("nan")), "finite number"),
        (eval_row("f1", 0.5, n=-3), "whole number"),
        (eval_row("accuracy", 0.99), "repeats a result"),
    ],
    ids=["missing-field", "unknown-field", "nan-value", "negative-n", "duplicate-of-earlier-row"],
)
def test_add_eval_results_is_all_or_nothing(
    store: ArenaStore, bad_row: dict[str, object], message: str
) -> None:
    store.add_eval_results([eval_row("accuracy", 0.5, run_id="earlier-run")])
    # The bad row comes last, after rows the transaction has already inserted.
    batch = [eval_row("accuracy", 0.61), eval_row("macro_f1", 0.58), bad_row]

    with pytest.raises(InvalidRecord, match=message):
        store.add_eval_results(batch)

    assert [row["run_id"] for row in store.eval_results()] == ["earlier-run"]


def test_eval_cache_round_trip_and_overwrite(store: VoteStore) -> None:
    key = eval_cache_key("smollm2-lora", "You are a clinician.", {"temperature": 0.0}, "Dose?")
    assert key == eval_cache_key("smollm2-lora", "You are a clinician.", {"temperature": 0.0}, "Dose?")
    assert key != eval_cache_key("smollm2-lora", "You are a clinician.", {"temperature": 0.1}, "Dose?")
    assert store.cache_get(key) is None

    store.cache_put(
        key,
        {
            "contestant": "smollm2-lora",
            "question_id": "mqa-1",
            "answer": "5 mg",
            "output_tokens": 3,
            "latency_s": 0.5,
            "ttft_s": 0.1,
        },
    )
    store.cache_put(key, {"contestant": "smollm2-lora", "question_id": "mqa-1", "answer": "10 mg"})
    cached = store.cache_get(key)
    assert cached is not None
    assert (cached["answer"], cached["output_tokens"], cached["key"]) == ("10 mg", None, key)

    with pytest.raises(InvalidRecord, match="missing answer"):
        store.cache_put("other", {"contestant": "x", "question_id": "q"})
    assert store.cache_get("other") is None


# -- export --------------------------------------------------------------------------------------------

NASTY_RATIONALE = 'Wrong dose, "10 mg" is 10×;\nsee line two,\r\nthen =SUM(A1) & <b>bold</b>'


def store_with_votes(store: VoteStore) -> tuple[VoteStore, list[str]]:
    first = finished_battle(store, question="Dose of amoxicillin, in mg/kg?")
    second = finished_battle(store, question="Röntgen findings in pneumonia?")
    store.record_vote(
        VoteInput(
            first,
            "model_a",
            flag_b_unsafe=True,
            rationale=NASTY_RATIONALE,
            voter_role="nurse",
            session_id=SESSION,
        )
    )
    store.record_vote(VoteInput(second, "both_bad", voter_specialty="radiology", session_id=SESSION))
    finished_battle(store, question="Unvoted battle?")
    return store, [first, second]


def test_export_csv_round_trip(tmp_path: Path, store: VoteStore) -> None:
    store, battle_ids = store_with_votes(store)
    out = tmp_path / "exports" / "votes.csv"

    assert write_votes_csv(store, out) == 2

    with out.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == EXPORT_COLUMNS
        rows = list(reader)
    assert [row["battle_id"] for row in rows] == battle_ids
    first, second = rows
    assert first["rationale"] == NASTY_RATIONALE
    assert first["question"] == "Dose of amoxicillin, in mg/kg?"
    assert (first["outcome"], first["flag_b_unsafe"], first["flag_a_unsafe"]) == ("model_a", "1", "0")
    assert (first["contestant_a"], first["answer_b"], first["voter_role"]) == (
        "smollm2-lora",
        "Amoxicillin.",
        "nurse",
    )
    assert first["reference_answer"] == "Nitrofurantoin for 5 days."
    assert float(first["bertscore_a"]) == 0.91
    assert (second["question"], second["voter_specialty"], second["session_id"]) == (
        "Röntgen findings in pneumonia?",
        "radiology",
        SESSION,
    )
    assert second["voted_at"] >= first["voted_at"] > first["battle_finished_at"] > first["battle_created_at"]


def test_export_jsonl_round_trip(tmp_path: Path, store: VoteStore) -> None:
    store, battle_ids = store_with_votes(store)
    out = tmp_path / "votes.jsonl"

    assert write_votes_jsonl(store, out) == 2

    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    rows = [json.loads(line) for line in lines]
    assert [tuple(row) for row in rows] == [EXPORT_COLUMNS, EXPORT_COLUMNS]
    assert [row["battle_id"] for row in rows] == battle_ids
    assert rows[0]["rationale"] == NASTY_RATIONALE
    assert (rows[0]["flag_b_unsafe"], rows[0]["bertscore_b"], rows[0]["category"]) == (
        1,
        0.72,
        "infectious disease",
    )
    assert rows[1]["outcome"] == "both_bad"


@pytest.mark.slow  # waits on real time or starts a Python child
def test_export_cli_writes_both_formats(tmp_path: Path, db_path: Path) -> None:
    store_with_votes(ArenaStore(db_path))
    out_dir = tmp_path / "out"

    result = run_export("--db", str(db_path), "--out", str(out_dir))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{out_dir / 'votes.csv'}: 2 votes",
        f"{out_dir / 'votes.jsonl'}: 2 votes",
    ]
    with (out_dir / "votes.csv").open(newline="", encoding="utf-8") as handle:
        assert next(csv.DictReader(handle))["rationale"] == NASTY_RATIONALE
    assert len((out_dir / "votes.jsonl").read_text(encoding="utf-8").splitlines()) == 2


@pytest.mark.slow  # waits on real time or starts a Python child
def test_export_cli_uses_the_environment_and_one_format(tmp_path: Path, db_path: Path) -> None:
    store_with_votes(ArenaStore(db_path))
    out_dir = tmp_path / "csv-only"

    result = run_export("--format", "csv", "--out", str(out_dir), env={"MEDARENA_VOTES_DB": str(db_path)})

    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in out_dir.iterdir()) == ["votes.csv"]


@pytest.mark.slow  # waits on real time or starts a Python child
def test_export_cli_missing_db_fails_cleanly(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "votes.db"
    out_dir = tmp_path / "out"

    result = run_export("--db", str(missing), "--out", str(out_dir))

    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert str(missing) in result.stderr
    assert "Traceback" not in result.stderr
    assert not missing.exists() and not missing.parent.exists()
    assert not out_dir.exists()


# -- driver errors stay inside the store ---------------------------------------------------------------


def test_an_unreachable_postgres_is_a_sentence_and_store_unavailable() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = PostgresStore(f"postgresql://arena:secret@127.0.0.1:{port}/medarena", connect_timeout_s=1.0)
    try:
        assert store.problem is not None and "cannot be reached" in store.problem
        assert "secret" not in store.problem  # the password never reaches a banner
        with pytest.raises(StoreUnavailable, match="cannot be reached"):
            store.record_vote(VoteInput("f" * 32, "tie", session_id=SESSION))
    finally:
        store.close()


def test_a_driver_error_leaves_the_store_as_store_unavailable(store: VoteStore) -> None:
    with pytest.raises(StoreUnavailable, match="no_such_table"), store._connection() as session:  # type: ignore[attr-defined]
        session.query("SELECT * FROM no_such_table")


def test_each_database_has_the_declared_tables_at_the_current_version(store: VoteStore) -> None:
    from arena.store.schema import SCHEMA_VERSION, current_tables, existing_columns, read_version

    with store._connection() as session:  # type: ignore[attr-defined]
        for table in current_tables().values():
            assert existing_columns(session, table.name) == set(table.column_names()), table.name
        assert read_version(session) == SCHEMA_VERSION
