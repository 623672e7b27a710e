"""The board computed once: a cache that reads each vote from the store once, keeps the running
aggregates (`arena.board_summary.BoardSummary`) up to date, and refreshes the slow parts (200
bootstrap rounds, the style-control fit, the agreement interval) in a background thread.

A request after a new vote reads only the votes stored since the last request, folds them in, and
builds the table from the aggregates: Bradley-Terry on the pair tally (a 14x14 fit), Elo and rates
as kept. Until the background refresh catches up, the last bootstrap intervals are moved with each
contestant's rating (`arena.leaderboard.recentred`) and the board says how many votes they lag.
Filtered boards (a category, a specialty) are built from the cached derived votes on request,
without re-reading or re-classifying anything.

    cache = BoardCache(store, rounds=200)
    cache.table(store.eval_results(), served)

bench/board_bench.py measures vote-to-updated-board on 100k votes.
Run as: python -m pytest tests/test_board_cache.py -q
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from arena.board import contestant_telemetry
from arena.board_summary import BoardSummary, DerivedVote, derive_vote
from arena.categories import QuestionCategory
from arena.history import Snapshot, daily_snapshots
from arena.leaderboard import (
    LeaderboardTable,
    agreement_of,
    battle_filter,
    recentred,
    table_from_summary,
)
from arena.ratings import RatedBattle, bootstrap_intervals, bradley_terry
from arena.style_control import StyleControlFit, style_controlled_ratings

log = logging.getLogger(__name__)


class VoteSource(Protocol):
    """What the cache reads: `arena.store.battles.ArenaStore.rated_battles`."""

    def rated_battles(
        self, *, include_identity_leaks: bool = False, after_vote_id: int = 0
    ) -> list[dict[str, Any]]:
        """Voted, finished battles after a vote id, oldest first."""
        ...


@dataclass(frozen=True)
class SlowParts:
    """What the background refresh computes, and at how many votes."""

    votes: int
    at_vote_id: int  # the newest vote the snapshot included (leaked votes count here, not in `votes`)
    ratings: dict[str, float]  # the point ratings the intervals were bootstrapped around
    intervals: dict[str, tuple[float, float]]
    style: StyleControlFit
    agreement: tuple[float | None, float | None, float | None, int]
    telemetry: dict[str, dict[str, Any]]  # per contestant id, as arena.board.contestant_telemetry
    history: list[Snapshot]  # daily snapshots


def slow_parts(
    tally: Counter,
    battles: list[RatedBattle],
    agreements: list[float],
    rounds: int,
    telemetry: dict[str, dict[str, Any]],
    at_vote_id: int = 0,
    voted_at: list[str] | None = None,
) -> SlowParts:
    """Bootstrap intervals, style fit, agreement interval and daily snapshots for one snapshot of
    the votes (`voted_at` beside `battles`; no history without it)."""
    return SlowParts(
        history=daily_snapshots(zip(voted_at, battles, strict=True)) if voted_at is not None else [],
        telemetry=telemetry,
        at_vote_id=at_vote_id,
        votes=len(battles),
        ratings=bradley_terry(tally) if battles else {},
        intervals=bootstrap_intervals(tally, rounds=rounds, seed=0) if battles else {},
        style=style_controlled_ratings(battles),
        agreement=agreement_of(agreements),
    )


class BoardCache:
    """The unfiltered board kept current vote by vote; see the module docstring. Thread-safe."""

    def __init__(self, source: VoteSource, *, rounds: int, background: bool = True):
        self.source = source
        self.rounds = rounds
        self.background = background
        self._lock = threading.Lock()  # guards the votes, the summary and the slow parts
        self._sync_lock = threading.Lock()  # one reader of the store at a time
        self._votes: list[DerivedVote] = []
        self._categories: dict[
            str, QuestionCategory
        ] = {}  # question text -> category (bank questions repeat)
        self._summary = BoardSummary()
        self._slow: SlowParts | None = None
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        self._closed = False

    def sync(self) -> int:
        """Read and fold in the votes stored since the last sync; returns how many were new."""
        with self._sync_lock:
            rows = self.source.rated_battles(
                include_identity_leaks=True, after_vote_id=self._summary.last_vote_id
            )
            derived = [
                derive_vote(row, self._categories) for row in rows
            ]  # regexes run outside the main lock
            with self._lock:
                for vote in derived:
                    self._votes.append(vote)
                    self._summary.add(vote)
        if derived and self.background:
            self._request_refresh()
        return len(derived)

    def warm_up(self) -> threading.Thread:
        """Read and derive every stored vote in a background thread (at start-up: 100k votes take
        minutes on two cores), so the first board request waits only for what is left."""

        def run() -> None:
            try:
                self.sync()
            except Exception:  # a broken database is reported by the request that needs it
                log.exception("warming up the board cache failed")

        thread = threading.Thread(target=run, name="board-warm-up", daemon=True)
        thread.start()
        return thread

    def refresh(self) -> SlowParts:
        """Recompute the slow parts now, for the votes in the cache (the worker calls this)."""
        with self._lock:
            tally = Counter(self._summary.tally)
            battles = list(self._summary.battles)
            voted_at = list(self._summary.voted_at)
            agreements = list(self._summary.agreements)
            at_vote_id = self._summary.last_vote_id
        telemetry = contestant_telemetry(self.source.telemetry_samples())
        parts = slow_parts(tally, battles, agreements, self.rounds, telemetry, at_vote_id, voted_at)
        with self._lock:
            if self._slow is None or parts.at_vote_id >= self._slow.at_vote_id:
                self._slow = parts
        return parts

    def table(
        self,
        eval_results: list[dict[str, Any]],
        served: Mapping[str, str],
        *,
        category: str | None = None,
        specialty: str | None = None,
        task: str | None = None,
        question_specialty: str | None = None,
        served_weights: Mapping[str, str] | None = None,
    ) -> LeaderboardTable:
        """The board for a filter (no filter: the cached, incrementally updated one); with
        `served_weights`, automatic metrics only where they were measured on the served weights."""
        self.sync()
        if any((category, specialty, task, question_specialty)):
            with self._lock:
                votes = list(self._votes)
            with self._lock:
                telemetry = self._slow.telemetry if self._slow else {}
            summary = BoardSummary.of(votes, battle_filter(category, specialty, task, question_specialty))
            parts = slow_parts(
                summary.tally,
                summary.battles,
                summary.agreements,
                self.rounds,
                telemetry,
                0,
                summary.voted_at,
            )
            return table_from_summary(
                summary, eval_results, parts.telemetry, served,
                intervals=parts.intervals, style=parts.style, agreement=parts.agreement, history=parts.history,
                served_weights=served_weights,
            )  # fmt: skip
        with self._lock:
            slow, newest = self._slow, self._summary.last_vote_id
        if slow is None or (slow.at_vote_id != newest and not self.background):
            slow = self.refresh()
        with self._lock:
            summary = self._summary
            ratings = bradley_terry(summary.tally) if summary.votes else {}
            intervals = recentred(slow.intervals, slow.ratings, ratings)
            notes = []
            lag = summary.votes - slow.votes
            if lag > 0:
                notes.append(
                    f"Intervals and the style-controlled ranking are from {lag} vote{'s' if lag != 1 else ''} "
                    "ago (moved with each rating); they are being refreshed."
                )
            return table_from_summary(
                summary, eval_results, slow.telemetry, served,
                intervals=intervals, style=slow.style, agreement=slow.agreement, extra_notes=notes,
                history=slow.history, served_weights=served_weights,
            )  # fmt: skip

    def wait_until_fresh(self, timeout_s: float = 60.0) -> bool:
        """Block until the slow parts cover every cached vote (tests and benches); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if self._slow is not None and self._slow.at_vote_id == self._summary.last_vote_id:
                    return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        """Stop the background worker."""
        self._closed = True
        self._wake.set()

    def _request_refresh(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._run, name="board-refresh", daemon=True)
            self._worker.start()
        self._wake.set()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait()
            self._wake.clear()
            if self._closed:
                return
            self.refresh()
