"""The board computed once (arena/board_cache.py): each vote is read from a real votes.db once,
folded into the running aggregates, and the board after it equals the board built from scratch;
the background refresh brings the bootstrap intervals and the style ranking up to date.

Real SQLite store in a temporary folder, no model; a few seconds.
Run as: python -m pytest tests/test_board_cache.py -q
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from arena.board_cache import BoardCache
from arena.leaderboard import build_leaderboard, recentred
from arena.store.battles import ArenaStore
from arena.votes import VoteInput

IDS = ["smollm2-135m/base", "smollm2-135m/run-1", "gemma3-270m/base", "qwen2.5-0.5b/base"]
SESSION = "board-cache-session"
QUESTIONS = [
    "What dose of ibuprofen for a 4-year-old child?",
    "ECG shows ST elevation in II, III and aVF. Meaning?",
]


def add_votes(store: ArenaStore, count: int, rng: random.Random, *, leak_every: int = 0) -> None:
    for number in range(count):
        a, b = rng.sample(IDS, 2)
        battle_id = store.create_battle(
            question=rng.choice(QUESTIONS), contestant_a=a, contestant_b=b, contestant_a_id=a, contestant_b_id=b,
            generation_settings={}, session_id=SESSION,
        )  # fmt: skip
        store.finish_battle(
            battle_id,
            answer_a="## Dose\n- **10 mg/kg** " + "word " * rng.randint(5, 80),
            answer_b="Give " + "word " * rng.randint(5, 80),
            telemetry_a={"latency_s": 1.0, "tokens_per_s": 20.0},
            telemetry_b={"latency_s": 2.0, "tokens_per_s": 10.0},
            identity_leak=bool(leak_every) and number % leak_every == 0,
        )
        store.record_vote(VoteInput(battle_id, rng.choice(["model_a", "model_b", "tie"]), session_id=SESSION))


@pytest.fixture
def store(tmp_path: Path) -> ArenaStore:
    return ArenaStore(tmp_path / "votes.db")


def comparable(table) -> list:
    return [
        (s.contestant, s.rank, s.rating and round(s.rating.bt_rating, 6), s.rating and round(s.rating.ci_low, 6),
         s.rating and round(s.rating.elo, 6), s.rates and s.rates.win_rate, s.speed)
        for s in table.rows
    ]  # fmt: skip


def test_the_cached_board_after_each_batch_of_votes_equals_the_board_built_from_scratch(
    store: ArenaStore,
) -> None:
    rng = random.Random(3)
    served = {stable_id: stable_id for stable_id in IDS}
    cache = BoardCache(store, rounds=50, background=False)
    for batch in (4, 12, 1):
        add_votes(store, batch, rng, leak_every=7)
        cached = cache.table([], served)
        fresh = build_leaderboard(
            store.rated_battles(include_identity_leaks=True), [], store.telemetry_samples(), served, rounds=50
        )
        assert comparable(cached) == comparable(fresh)
        assert (cached.votes, cached.leaked, cached.tasks) == (fresh.votes, fresh.leaked, fresh.tasks)
        assert [(s.name, s.rank) for s in cached.style_rows] == [(s.name, s.rank) for s in fresh.style_rows]
    assert cache.sync() == 0  # every vote read once


def test_filtered_boards_come_from_the_cached_votes(store: ArenaStore) -> None:
    add_votes(store, 16, random.Random(4))
    cache = BoardCache(store, rounds=20, background=False)
    served = {stable_id: stable_id for stable_id in IDS}
    whole = cache.table([], served)
    dosing = cache.table([], served, task="treatment")
    assert dosing.votes == whole.tasks["treatment"] and dosing.votes < whole.votes
    assert dosing.tasks == whole.tasks  # the filter menu still lists every task


def test_background_refresh_catches_up_after_new_votes(store: ArenaStore) -> None:
    add_votes(store, 12, random.Random(5))
    cache = BoardCache(store, rounds=30, background=True)
    served = {stable_id: stable_id for stable_id in IDS}
    first = cache.table([], served)  # nothing to move yet: computed inline
    assert not any("being refreshed" in note for note in first.notes)
    add_votes(store, 3, random.Random(6))
    cache.sync()
    assert cache.wait_until_fresh(timeout_s=60)
    fresh = cache.table([], served)
    assert fresh.votes == 15 and not any("being refreshed" in note for note in fresh.notes)
    cache.close()


def test_stale_intervals_move_with_each_rating_until_the_refresh() -> None:
    moved = recentred(
        {"a": (980.0, 1020.0), "b": (900.0, 960.0)},
        {"a": 1000.0, "b": 930.0},
        {"a": 1010.0, "b": 925.0, "c": 990.0},
    )
    assert moved["a"] == (990.0, 1030.0) and moved["b"] == (895.0, 955.0)
    assert moved["c"] == (960.0, 1020.0)  # a newcomer gets the widest interval seen, centred on its rating
