"""The leaderboard as typed data: one `Standing` per contestant, built from raw votes, stored
evaluation results and telemetry by a pure function. Everything is counted per stable contestant
id (`<model key>/<run id or base>`), so votes cast before a display name changed still count for
the same contestant; labels are applied last: the served contestant's current label, else one made
from the registry (`arena.adapters.label_from_id`). The service feeds it what the store holds; the
UI turns each standing into table cells by the column table (`arena.board.BOARD_COLUMNS`). `build_leaderboard` does it
all in one pass; the service keeps the same aggregates vote by vote (`arena.board_cache`) and builds
the table with `table_from_summary`. Below MIN_RANKED_BATTLES a contestant is preliminary (no rank,
an honestly wide interval); leaked battles are counted, not rated; the table also carries the
style-controlled ranking, adapter-vs-own-base win rates, votes per question category and daily
snapshots. An automatic metric is shown only where its provenance matches what is served now
(`served_weights`: stable id -> the served weights' tag, `arena.eval.results.served_results`);
a contestant measured only on other weights says "not measured on these weights".

    from arena.leaderboard import build_leaderboard
    served = {engine.contestant_id(name): name for name in engine.contestant_names()}
    table = build_leaderboard(store.rated_battles(include_identity_leaks=True), store.eval_results(),
                              store.telemetry_samples(), served, rounds=200)
    [(s.rank, s.contestant) for s in table.rows]
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from arena.adapters import label_from_id
from arena.base_comparison import BaseComparison, comparisons_from_counts
from arena.board import (
    LEADERBOARD_COLUMNS,
    NO_METRICS_NOTE,
    contestant_telemetry,
    fmt_number,
    rank_label,
    rank_ranges,
    votes_to_separate,
)
from arena.board_summary import BoardSummary, derive_vote
from arena.eval.results import (
    NOT_MEASURED_HERE,
    leaderboard_metrics,
    served_results,
)
from arena.history import Snapshot, daily_snapshots
from arena.ratings import (
    ContestantRates,
    LeaderboardRow,
    RatedBattle,
    bootstrap_intervals,
    bradley_terry,
    filter_battles,
    leaderboard_rows,
    win_rate_matrix,
)
from arena.style_control import (
    StyleControlFit,
    StyleStanding,
    describe_coefficients,
    style_controlled_ratings,
    style_standings,
)
from finetune.scores import BOOTSTRAP_ROUNDS, BOOTSTRAP_SEED, bootstrap_ci

UNRATED = "no votes yet"
PRELIMINARY = "preliminary"
# Below this many battles a contestant gets no rank and at least the interval a coin-flip record of
# that size allows (a bootstrap of one vote is a point: "1340 [1340, 1340]").
MIN_RANKED_BATTLES = 20
_POINTS_PER_LOGIT = 400 / math.log(10)


def honest_interval(row: LeaderboardRow) -> LeaderboardRow:
    """A preliminary row's interval widened to at least ±1.96 standard errors of a Bradley-Terry
    strength estimated from `battles` even games (2 / sqrt(n) logits)."""
    half = 1.96 * 2.0 / math.sqrt(max(row.battles, 1)) * _POINTS_PER_LOGIT
    return replace(
        row, ci_low=min(row.ci_low, row.bt_rating - half), ci_high=max(row.ci_high, row.bt_rating + half)
    )


@dataclass(frozen=True)
class Standing:
    """One contestant's row: its votes' rating and rates, automatic metrics and serving figures."""

    rank: str  # the ranks its 95% interval allows, or UNRATED
    contestant: str  # the display label
    contestant_id: str  # the stable id the votes are counted under
    rating: LeaderboardRow | None = None
    rates: ContestantRates | None = None  # both-bad rate among its battles
    unsafe: ContestantRates | None = None  # share of its battles flagged unsafe
    incorrect: ContestantRates | None = None  # share flagged incorrect
    metrics: Mapping[str, Any] = field(default_factory=dict)  # metric -> (value, ci_low, ci_high)
    speed: Mapping[str, Any] = field(default_factory=dict)  # median latency, tokens/s, memory
    metrics_note: str = ""  # why the metric cells are empty: NOT_MEASURED_HERE (other weights only)


@dataclass(frozen=True)
class LeaderboardTable:
    """Everything the leaderboard tab shows, for one category/specialty filter."""

    columns: list[str]
    rows: list[Standing]
    rating_rows: list[LeaderboardRow]
    heatmap: tuple[list[str], Any]
    votes: int
    position_bias: float | None
    agreement: tuple[float | None, float | None, float | None, int]
    categories: list[str]
    specialties: list[str]
    tasks: dict[str, int] = field(default_factory=dict)  # question task type -> rated votes (all filters off)
    question_specialties: dict[str, int] = field(default_factory=dict)  # question specialty -> rated votes
    elo: list[list[Any]] = field(default_factory=list)  # [contestant, Elo] for the on-demand table
    notes: list[str] = field(default_factory=list)  # why a column is empty, how to read the ranks
    style_rows: list[StyleStanding] = field(default_factory=list)  # the style-controlled ranking
    style_note: str = ""  # the style coefficients in one line
    leaked: int = 0  # battles kept but not rated: an answer named its model or maker
    base_comparisons: list[BaseComparison] = field(default_factory=list)  # adapter vs own base, from votes
    history: list[Snapshot] = field(default_factory=list)  # daily snapshots, for the ratings-over-time plot
    labels: dict[str, str] = field(default_factory=dict)  # stable id -> label, for the history plot


def battle_filter(
    category: str | None = None,
    specialty: str | None = None,
    task: str | None = None,
    question_specialty: str | None = None,
) -> Callable[[RatedBattle], bool]:
    """Which battles a board filter keeps (empty or None: any)."""

    def keep(battle: RatedBattle) -> bool:
        return bool(
            filter_battles(
                [battle],
                category=category or None,
                specialty=specialty or None,
                task=task or None,
                question_specialty=question_specialty or None,
            )
        )

    return keep


def agreement_of(values: list[float]) -> tuple[float | None, float | None, float | None, int]:
    """(share, ci_low, ci_high, n) of the metric-human agreement values (bootstrap interval)."""
    if not values:
        return None, None, None, 0
    low, high = bootstrap_ci(values, rounds=BOOTSTRAP_ROUNDS, seed=BOOTSTRAP_SEED)
    return statistics.fmean(values), low, high, len(values)


def build_leaderboard(
    raw: list[dict[str, Any]],
    eval_results: list[dict[str, Any]],
    telemetry_samples: dict[str, list[dict[str, Any]]],
    served: Mapping[str, str],
    *,
    rounds: int,
    category: str | None = None,
    specialty: str | None = None,
    task: str | None = None,
    question_specialty: str | None = None,
    served_weights: Mapping[str, str] | None = None,
) -> LeaderboardTable:
    """Ratings over the votes kept by the filter, then every served contestant without votes, all in
    one pass (arena.board_cache keeps the same summary vote by vote instead).

    `raw`, `eval_results` and `telemetry_samples` name contestants by stable id; `served` maps each
    served contestant's id to its current label, `served_weights` to its served weights' tag (given,
    metrics from other weights are not shown). Rows marked `identity_leak` are counted in `leaked`
    and left out of everything else."""
    keep = battle_filter(category, specialty, task, question_specialty)
    categories: dict = {}  # question text -> category, shared by every row of this call
    summary = BoardSummary.of((derive_vote(row, categories) for row in raw), keep)
    intervals = bootstrap_intervals(summary.tally, rounds=rounds, seed=0) if summary.votes else {}
    return table_from_summary(
        summary,
        eval_results,
        contestant_telemetry(telemetry_samples),
        served,
        intervals=intervals,
        style=style_controlled_ratings(summary.battles),
        agreement=agreement_of(summary.agreements),
        history=daily_snapshots(zip(summary.voted_at, summary.battles, strict=True)),
        served_weights=served_weights,
    )


def recentred(
    intervals: Mapping[str, tuple[float, float]], old: Mapping[str, float], new: Mapping[str, float]
) -> dict[str, tuple[float, float]]:
    """Intervals bootstrapped at ratings `old`, moved with each contestant's rating to `new` (a vote
    or two barely changes the widths; the background refresh replaces them). A contestant the old
    intervals lack gets the widest interval seen, or the Fisher-free fallback of ±400."""
    widest = max((high - low for low, high in intervals.values()), default=800.0)
    moved = {}
    for name, rating in new.items():
        if name in intervals and name in old:
            low, high = intervals[name]
            moved[name] = (low + rating - old[name], high + rating - old[name])
        else:
            moved[name] = (rating - widest / 2, rating + widest / 2)
    return moved


def table_from_summary(
    summary: BoardSummary,
    eval_results: list[dict[str, Any]],
    telemetry: Mapping[str, Mapping[str, Any]],
    served: Mapping[str, str],
    *,
    intervals: Mapping[str, tuple[float, float]],
    style: StyleControlFit,
    agreement: tuple[float | None, float | None, float | None, int],
    extra_notes: Sequence[str] = (),
    history: Sequence[Snapshot] = (),
    served_weights: Mapping[str, str] | None = None,
) -> LeaderboardTable:
    """The board from running aggregates, intervals, a style fit and per-contestant telemetry
    (`arena.board.contestant_telemetry`) computed elsewhere; cheap (no pass over the votes), so the
    cache can call it on every vote. With `served_weights` (stable id -> served weights' tag) only
    evaluation rows measured on those weights count (`arena.eval.results.served_results`)."""
    elsewhere: frozenset[str] = frozenset()
    if served_weights is not None:
        matched = served_results(eval_results, served_weights)
        eval_results, elsewhere = matched.rows, matched.elsewhere
    ratings = bradley_terry(summary.tally) if summary.votes else {}
    rates = summary.rates.rates()
    rating_rows = leaderboard_rows(ratings, dict(intervals), summary.elo, rates) if ratings else []
    preliminary = {row.name for row in rating_rows if row.battles < MIN_RANKED_BATTLES}
    rating_rows = [honest_interval(row) if row.name in preliminary else row for row in rating_rows]
    ranked = [row for row in rating_rows if row.name not in preliminary]
    unsafe = summary.unsafe.rates()
    incorrect = summary.incorrect.rates()
    metrics = leaderboard_metrics(eval_results)
    ranges = rank_ranges(ranked)

    def label(stable_id: str) -> str:
        return served.get(stable_id) or label_from_id(stable_id)

    rows = [
        Standing(
            PRELIMINARY if row.name in preliminary else rank_label(ranges[row.name], len(ranked)), label(row.name),
            row.name, replace(row, name=label(row.name)), rates.get(row.name), unsafe.get(row.name),
            incorrect.get(row.name), metrics.get(row.name, {}), telemetry.get(row.name, {}),
            NOT_MEASURED_HERE if row.name in elsewhere else "",
        )
        for row in rating_rows
    ]  # fmt: skip
    rated = {row.name for row in rating_rows}
    # Contestants without votes still show their automatic metrics and telemetry.
    rows += [
        Standing(
            UNRATED,
            name,
            stable_id,
            metrics=metrics.get(stable_id, {}),
            speed=telemetry.get(stable_id, {}),
            metrics_note=NOT_MEASURED_HERE if stable_id in elsewhere else "",
        )
        for stable_id, name in served.items()
        if stable_id not in rated
    ]
    names, matrix = win_rate_matrix(summary.tally)
    style_rows = [
        replace(standing, name=label(standing.name))
        for standing in style_standings({row.name: row.bt_rating for row in rating_rows}, style.ratings)
    ]
    comparisons = [
        replace(c, adapter=label(c.adapter), base=label(c.base))
        for c in comparisons_from_counts(summary.base_wins, summary.base_votes, eval_results, list(served))
    ]
    rating_rows = [replace(row, name=label(row.name)) for row in rating_rows]
    return LeaderboardTable(
        columns=LEADERBOARD_COLUMNS,
        rows=rows,
        rating_rows=rating_rows,
        heatmap=([label(name) for name in names], matrix),
        votes=summary.votes,
        position_bias=summary.position_bias,
        agreement=agreement,
        categories=sorted(summary.categories),
        specialties=sorted(summary.specialties),
        tasks=dict(sorted(summary.tasks.items())),
        question_specialties=dict(sorted(summary.question_specialties.items())),
        elo=[[row.name, fmt_number(row.elo, 0)] for row in rating_rows],
        notes=[
            *_notes(ranked, ranges, summary.votes, bool(metrics), summary.leaked, len(preliminary)),
            *([_elsewhere_note(len(elsewhere))] if elsewhere else []),
            *extra_notes,
        ],
        style_rows=style_rows,
        style_note=describe_coefficients(style),
        leaked=summary.leaked,
        base_comparisons=comparisons,
        history=list(history),
        labels={name: label(name) for snap in history for name in snap.ratings},
    )


def _elsewhere_note(count: int) -> str:
    return (
        f"{count} contestant{'s were' if count != 1 else ' was'} evaluated only on other weights than "
        f"{'they are' if count != 1 else 'it is'} served on now (another backend or precision): "
        f"'{NOT_MEASURED_HERE}'. `python -m arena.evaluate --all --data bundled` with the arena's "
        "--backend measures the served weights."
    )


def _notes(
    rating_rows: list[LeaderboardRow],
    ranges: dict[str, tuple[int, int]],
    votes: int,
    has_metrics: bool,
    leaked: int = 0,
    preliminary: int = 0,
) -> list[str]:
    notes = []
    if preliminary:
        notes.append(
            f"{preliminary} contestant{'s are' if preliminary != 1 else ' is'} preliminary: fewer than "
            f"{MIN_RANKED_BATTLES} battles, so no rank yet and a deliberately wide interval."
        )
    if leaked:
        notes.append(
            f"{leaked} battle{'s' if leaked != 1 else ''} kept but not rated: an answer named its model or "
            "maker, so the vote was not blind."
        )
    if len(rating_rows) > 1 and any(low != high for low, high in ranges.values()):
        needed = votes_to_separate(rating_rows, votes)
        hint = f" About {needed} more votes may separate the closest pair." if needed else ""
        notes.append(
            "Rank shows every rank a contestant's 95% interval allows; contestants whose intervals "
            f"overlap are not yet separable.{hint}"
        )
    if not has_metrics:
        notes.append(NO_METRICS_NOTE)
    return notes
