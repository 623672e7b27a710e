"""The leaderboard as typed data: one `Standing` per contestant, built from raw votes, stored
evaluation results and telemetry by a pure function. Everything is counted per stable contestant
id (`<model key>/<run id or base>`), so votes cast before a display name changed still count for
the same contestant; labels are applied last: the served contestant's current label, else one made
from the registry (`arena.adapters.label_from_id`). The service feeds it what the store holds; the
UI turns each standing into table cells (`arena.board.standing_cells`).

    from arena.leaderboard import build_leaderboard
    served = {engine.contestant_id(name): name for name in engine.contestant_names()}
    table = build_leaderboard(store.rated_battles(), store.eval_results(), store.telemetry_samples(),
                              served, rounds=200)
    [(s.rank, s.contestant) for s in table.rows]
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from arena.adapters import label_from_id
from arena.base_comparison import BaseComparison, base_comparisons
from arena.board import (
    LEADERBOARD_COLUMNS,
    NO_METRICS_NOTE,
    contestant_telemetry,
    fmt_number,
    rank_label,
    rank_ranges,
    to_rated,
    votes_to_separate,
)
from arena.eval_results import leaderboard_metrics, metric_human_agreement
from arena.ratings import (
    ContestantRates,
    LeaderboardRow,
    contestant_rates,
    filter_battles,
    leaderboard,
    position_bias,
    win_rate_matrix,
)
from arena.style_control import (
    StyleStanding,
    describe_coefficients,
    style_controlled_ratings,
    style_standings,
)

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
) -> LeaderboardTable:
    """Ratings over the votes kept by the filter, then every served contestant without votes.

    `raw`, `eval_results` and `telemetry_samples` name contestants by stable id; `served` maps each
    served contestant's id to its current label. Rows marked `identity_leak` are counted in `leaked`
    and left out of everything else."""
    leaked = sum(bool(row.get("identity_leak")) for row in raw)
    raw = [row for row in raw if not row.get("identity_leak")]
    all_battles = to_rated(raw, with_style=True)
    battles = filter_battles(
        all_battles,
        category=category or None,
        specialty=specialty or None,
        task=task or None,
        question_specialty=question_specialty or None,
    )
    kept = {id(b) for b in battles}
    kept_raw = [row for row, battle in zip(raw, all_battles, strict=True) if id(battle) in kept]
    rating_rows = leaderboard(battles, rounds=rounds, seed=0)
    preliminary = {row.name for row in rating_rows if row.battles < MIN_RANKED_BATTLES}
    rating_rows = [honest_interval(row) if row.name in preliminary else row for row in rating_rows]
    ranked = [row for row in rating_rows if row.name not in preliminary]
    rates = contestant_rates(battles)
    unsafe = contestant_rates(to_rated(kept_raw, ("unsafe",)))
    incorrect = contestant_rates(to_rated(kept_raw, ("incorrect",)))
    telemetry = contestant_telemetry(telemetry_samples)
    metrics = leaderboard_metrics(eval_results)
    ranges = rank_ranges(ranked)

    def label(stable_id: str) -> str:
        return served.get(stable_id) or label_from_id(stable_id)

    rows = [
        Standing(
            PRELIMINARY if row.name in preliminary else rank_label(ranges[row.name], len(ranked)), label(row.name), row.name, replace(row, name=label(row.name)),
            rates.get(row.name), unsafe.get(row.name), incorrect.get(row.name), metrics.get(row.name, {}),
            telemetry.get(row.name, {}),
        )
        for row in rating_rows
    ]  # fmt: skip
    rated = {row.name for row in rating_rows}
    # Contestants without votes still show their automatic metrics and telemetry.
    rows += [
        Standing(
            UNRATED, name, stable_id, metrics=metrics.get(stable_id, {}), speed=telemetry.get(stable_id, {})
        )
        for stable_id, name in served.items()
        if stable_id not in rated
    ]
    names, matrix = win_rate_matrix(battles)
    style = style_controlled_ratings(battles)
    style_rows = [
        replace(standing, name=label(standing.name))
        for standing in style_standings({row.name: row.bt_rating for row in rating_rows}, style.ratings)
    ]
    comparisons = [
        replace(c, adapter=label(c.adapter), base=label(c.base))
        for c in base_comparisons(battles, eval_results, list(served))
    ]
    rating_rows = [replace(row, name=label(row.name)) for row in rating_rows]
    return LeaderboardTable(
        columns=LEADERBOARD_COLUMNS,
        rows=rows,
        rating_rows=rating_rows,
        heatmap=([label(name) for name in names], matrix),
        votes=len(battles),
        position_bias=position_bias(battles),
        agreement=metric_human_agreement(raw),
        categories=sorted({b.category for b in all_battles if b.category}),
        specialties=sorted({b.specialty for b in all_battles if b.specialty}),
        tasks=dict(sorted(Counter(b.task for b in all_battles if b.task).items())),
        question_specialties=dict(
            sorted(Counter(b.question_specialty for b in all_battles if b.question_specialty).items())
        ),
        elo=[[row.name, fmt_number(row.elo, 0)] for row in rating_rows],
        notes=_notes(ranked, ranges, len(battles), bool(metrics), leaked, len(preliminary)),
        base_comparisons=comparisons,
        style_rows=style_rows,
        style_note=describe_coefficients(style),
        leaked=leaked,
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
