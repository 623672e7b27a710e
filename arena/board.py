"""Pure helpers that turn ratings and telemetry into what the leaderboard and the reveal show:
rank ranges from the bootstrap intervals, votes-needed hints, short contestant names, one-line
telemetry. No Gradio, no database.

    from arena.board import rank_ranges, rank_label
    rank_label(rank_ranges(leaderboard(battles))["SmolLM2 · base · nf4"], 2)   # "not yet separable"
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from arena.categories import QuestionCategory, classify_question
from arena.eval.results import LEADERBOARD_METRICS
from arena.ratings import LeaderboardRow, RatedBattle, StyleCounts
from arena.serving.common import Telemetry
from arena.style_control import StyleStanding, style_counts


def _style(row: dict[str, Any], side: str) -> StyleCounts | None:
    answer = row.get(f"answer_{side}")
    return style_counts(answer) if isinstance(answer, str) and answer else None


def to_rated(
    rows: list[dict[str, Any]],
    flags: Sequence[str] = ("unsafe", "incorrect"),
    *,
    with_style: bool = False,
    categories: dict[str, QuestionCategory] | None = None,
) -> list[RatedBattle]:
    """Votes as RatedBattles; `flagged_*` counts the named flag kinds (both by default); with
    `with_style`, each side's style counts come from its stored answer (`answer_a`/`answer_b`).
    A row with its `question` gets the question's task type and specialty (arena/categories.py);
    `categories` caches them by question text across calls (bank questions repeat)."""
    categories = {} if categories is None else categories

    def category_of(row: dict[str, Any]) -> QuestionCategory | None:
        question = row.get("question")
        if not isinstance(question, str) or not question:
            return None
        if question not in categories:
            categories[question] = classify_question(question)
        return categories[question]

    return [
        RatedBattle(
            model_a=row["contestant_a"],
            model_b=row["contestant_b"],
            outcome=row["outcome"],
            category=row.get("category"),
            specialty=row.get("voter_specialty") or None,
            flagged_a=any(bool(row.get(f"flag_a_{kind}")) for kind in flags),
            flagged_b=any(bool(row.get(f"flag_b_{kind}")) for kind in flags),
            style_a=_style(row, "a") if with_style else None,
            style_b=_style(row, "b") if with_style else None,
            task=category.task.value if (category := category_of(row)) else None,
            question_specialty=category.specialty if category else None,
        )
        for row in rows
    ]


def rank_ranges(rows: Sequence[LeaderboardRow]) -> dict[str, tuple[int, int]]:
    """Each contestant's possible ranks from the intervals: best is 1 + those surely above it,
    worst is n minus those surely below it ("surely": the two 95% intervals do not overlap)."""
    ranges = {}
    for row in rows:
        above = sum(other.ci_low > row.ci_high for other in rows if other is not row)
        below = sum(other.ci_high < row.ci_low for other in rows if other is not row)
        ranges[row.name] = (1 + above, len(rows) - below)
    return ranges


def votes_to_separate(rows: Sequence[LeaderboardRow], votes: int) -> int | None:
    """Rough number of further votes until the closest neighbours' intervals stop overlapping
    (intervals narrow as 1/sqrt(votes)); None when there is nothing to separate."""
    ordered = sorted(rows, key=lambda row: -row.bt_rating)
    needed = []
    for upper, lower in itertools.pairwise(ordered):
        gap = upper.bt_rating - lower.bt_rating
        overlap_width = (upper.bt_rating - upper.ci_low) + (lower.ci_high - lower.bt_rating)
        if overlap_width <= gap or votes == 0:
            continue
        if gap <= 0:
            return None
        needed.append(math.ceil(votes * ((overlap_width / gap) ** 2 - 1)))
    return min(needed) if needed else None


def rank_label(rank: tuple[int, int], total: int) -> str:
    """A rank range as the leaderboard shows it: '2', '1–3', or 'not yet separable' when any rank is possible."""
    low, high = rank
    if low == high:
        return str(low)
    if low == 1 and high == total:
        return "not yet separable"
    return f"{low}–{high}"


def short_name(full_name: str) -> str:
    """'SmolLM2 · LoRA 2026… · nf4' -> 'SmolLM2 · LoRA' (run ids and quantisation go in the details)."""
    parts = [part.strip() for part in full_name.split("·")]
    if len(parts) >= 2:
        return f"{parts[0]} · {'LoRA' if parts[1].startswith('LoRA') else parts[1]}"
    return full_name


def fmt_number(value: float | None, digits: int = 1) -> str:
    """`value` with `digits` decimals, or an empty cell for None."""
    return "" if value is None else f"{value:.{digits}f}"


def fmt_ci(metric: tuple[float, float | None, float | None] | None) -> str:
    """(value, low, high) as '0.512 [0.478, 0.546]'; just the value without an interval."""
    if metric is None:
        return ""
    value, low, high = metric
    return f"{value:.3f}" + (f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else "")


class BoardTable(StrEnum):
    """The leaderboard tab's two tables of standings."""

    VOTES = "votes"  # rank, rating and what the votes say
    METRICS = "metrics"  # automatic metrics and speed, beside the contestant's name


@dataclass(frozen=True)
class Column:
    """One leaderboard column: its header, the tables that show it, and how one standing fills its cell."""

    header: str
    tables: frozenset[BoardTable]
    cell: Callable[[Any], Any]  # an `arena.leaderboard.Standing` -> the cell


_VOTES, _METRICS = frozenset({BoardTable.VOTES}), frozenset({BoardTable.METRICS})


def _share(rates: Any) -> str:
    return fmt_number(rates.safety_flag_rate * 100, 0) + "%" if rates else ""


def _metric(header: str, metric: str) -> Column:
    return Column(
        header, _METRICS, lambda standing: fmt_ci(standing.metrics.get(metric)) or standing.metrics_note
    )


def _speed(header: str, figure: str, digits: int) -> Column:
    return Column(header, _METRICS, lambda standing: fmt_number(standing.speed.get(figure), digits))


# The leaderboard's columns, declared once; the automatic metrics among them are the table
# `arena.eval.results.LEADERBOARD_METRICS` (a new metric on the board: one entry there).
BOARD_COLUMNS: tuple[Column, ...] = (
    Column("Rank (95%)", _VOTES, lambda s: s.rank),
    Column("Contestant", _VOTES | _METRICS, lambda s: s.contestant),
    Column(
        "Rating (Bradley-Terry, 95% CI)",
        _VOTES,
        lambda s: (
            f"{s.rating.bt_rating:.0f} [{s.rating.ci_low:.0f}, {s.rating.ci_high:.0f}]" if s.rating else ""
        ),
    ),
    Column("Battles", _VOTES, lambda s: s.rating.battles if s.rating else 0),
    Column("Win rate", _VOTES, lambda s: fmt_number(s.rating.win_rate * 100, 0) + "%" if s.rating else ""),
    Column("Both bad", _VOTES, lambda s: fmt_number(s.rates.both_bad_rate * 100, 0) + "%" if s.rates else ""),
    Column("Flagged unsafe", _VOTES, lambda s: _share(s.unsafe)),
    Column("Flagged incorrect", _VOTES, lambda s: _share(s.incorrect)),
    *(_metric(header, metric) for metric, header in LEADERBOARD_METRICS.items()),
    _speed("Median latency (s)", "median_latency_s", 2),
    _speed("Tokens/s", "median_tokens_per_s", 1),
    _speed("Weights (MB)", "memory_mb", 0),
)
LEADERBOARD_COLUMNS = [column.header for column in BOARD_COLUMNS]  # every header, in table order


def standing_cells(standing: Any, table: BoardTable | None = None) -> list[Any]:
    """One `arena.leaderboard.Standing` as the cells of `table`'s columns (None: every column)."""
    return [column.cell(standing) for column in BOARD_COLUMNS if table is None or table in column.tables]


def table_headers(table: BoardTable | None = None) -> list[str]:
    """The headers of `table`'s columns (None: every column), in the order `standing_cells` fills them."""
    return [column.header for column in BOARD_COLUMNS if table is None or table in column.tables]


STYLE_COLUMNS = [
    "Rank (style-controlled)",
    "Contestant",
    "Rating (style-controlled)",
    "Rank shift",
    "Plain rank",
]


def style_cells(standing: StyleStanding) -> list[Any]:
    """One style-controlled standing as the cells of STYLE_COLUMNS; the shift reads '+2', '−1' or '='."""
    shift = standing.shift
    return [
        standing.rank,
        standing.name,
        f"{standing.rating:.0f}",
        "=" if shift == 0 else (f"+{shift}" if shift > 0 else f"−{-shift}"),
        standing.plain_rank,
    ]


BASE_COLUMNS = [
    "Adapter",
    "Its base",
    "Votes",
    "Human win rate vs base (95% CI)",
    "Automatic paired delta (95% CI)",
]


def base_comparison_cells(comparison: Any) -> list[Any]:
    """One `arena.base_comparison.BaseComparison` as the cells of BASE_COLUMNS."""
    rate = (
        f"{comparison.win_rate:.0%} [{comparison.ci_low:.0%}, {comparison.ci_high:.0%}]"
        if comparison.win_rate is not None
        else "no votes yet"
    )
    delta = comparison.automatic_delta
    automatic = (
        f"{comparison.automatic_metric} {delta[0]:+.3f}"
        + (f" [{delta[1]:+.3f}, {delta[2]:+.3f}]" if delta[1] is not None and delta[2] is not None else "")
        if delta is not None
        else "not measured (python -m arena.evaluate)"
    )
    return [comparison.adapter, comparison.base, comparison.votes, rate, automatic]


def filter_choices(counts: dict[str, int], labels: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Dropdown choices (label with its vote count, value) for a board filter, 'all' first."""
    labels = labels or {}
    total = sum(counts.values())
    return [(f"all ({total} votes)", "")] + [
        (f"{labels.get(key, key.replace('_', ' '))} ({count} votes)", key) for key, count in counts.items()
    ]


NO_METRICS_NOTE = (
    "Automatic metrics (BERTScore, embedding, ROUGE-L, MCQ) are empty: none was measured on the weights "
    "served now. The arena measures them at start (unless --no-auto-metrics), or run "
    "`python -m arena.evaluate --all --data bundled` (and `--data bundled-mcq`) with the arena's --backend."
)


def telemetry_summary(telemetry: dict[str, Any] | Telemetry) -> str:
    """One line for the reveal. Times run from the clinician's click; memory is this contestant's
    own weights (base + adapter), not the process."""
    data = telemetry.to_dict() if isinstance(telemetry, Telemetry) else telemetry
    if not data:
        return ""
    kind = "VRAM" if data.get("memory_kind") == "vram" else "RAM"
    # None where the weights are not ours to measure: a remote server, or vLLM serving a hub id.
    memory = data.get("memory_mb")
    weights = "weights not measured" if memory is None else f"weights {memory:.0f} MB {kind}"
    return (
        f"first words {data.get('first_token_s', 0):.1f} s after you asked · complete after "
        f"{data.get('latency_s', 0):.1f} s · {data.get('output_tokens', 0)} tokens at "
        f"{data.get('tokens_per_s', 0):.1f} tok/s · {weights}"
    )


def telemetry_details(telemetry: dict[str, Any]) -> str:
    """The rest (adapter switch, batching, device) for the details fold."""
    if not telemetry:
        return ""
    return (
        f"adapter switch {telemetry.get('adapter_switch_ms', 0):.3f} ms · device {telemetry.get('device', '?')}"
        + (" · batched with the other side" if telemetry.get("batched_with_other_side") else "")
    )


# Telemetry keys this module aggregates; the engine writes them into the telemetry dicts.
LATENCY_KEY = "latency_s"
TOKENS_PER_SECOND_KEY = "tokens_per_s"
MEMORY_KEY = "memory_mb"  # the contestant's own weights (base + adapter), not the process peak


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def summarise_telemetry(telemetries: list[dict[str, Any]]) -> dict[str, Any]:
    """Battle count, median latency and tokens/s, and the latest memory figure over telemetry dicts."""

    def numbers(key: str) -> list[float]:
        return [float(t[key]) for t in telemetries if _finite(t.get(key))]

    latencies, speeds, memory = numbers(LATENCY_KEY), numbers(TOKENS_PER_SECOND_KEY), numbers(MEMORY_KEY)
    return {
        "battles": len(telemetries),
        "median_latency_s": statistics.median(latencies) if latencies else None,
        "median_tokens_per_s": statistics.median(speeds) if speeds else None,
        # the contestant's weights: the same in every battle, so the latest figure stands
        "memory_mb": memory[-1] if memory else None,
    }


def contestant_telemetry(samples: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per contestant over finished battles: battle count, median latency and tokens/s, memory (MB).

    `samples` is `ArenaStore.telemetry_samples()`; a statistic is None when no battle of that
    contestant reported the matching telemetry key.
    """
    return {contestant: summarise_telemetry(telemetries) for contestant, telemetries in samples.items()}
