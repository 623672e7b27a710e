"""Pure readers of stored evaluation results: the metric names, latest rows, the leaderboard's metrics,
metric-human agreement, and the per-contestant report table with base-vs-adapter deltas.

The arena's leaderboard (`arena.service`) reads results through this module only; nothing here loads a
model or touches a file.

    from arena.eval.results import leaderboard_metrics, served_results
    leaderboard_metrics(store.eval_results())  # contestant -> {metric: (value, ci_low, ci_high)}
    served_results(store.eval_results(), {"smollm2-135m/base": "gguf-q4_1"}).rows  # what is served now

Run as: python -m pytest tests/test_evaluate.py -q -m "not slow"
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from finetune.data import BUNDLED
from finetune.scores import BOOTSTRAP_ROUNDS, BOOTSTRAP_SEED, bootstrap_ci

SETTING_PREFIX = "gen."  # rows that record the generation settings, not a measurement
# Rows of an adapter's result holding adapter − base on the same questions with a paired bootstrap
# interval (arena/eval/paired.py), e.g. "paired_delta.bertscore_f1".
PAIRED_PREFIX = "paired_delta."

FREE_TEXT_METRICS = (
    "bertscore_precision",
    "bertscore_recall",
    "bertscore_f1",
    "embedding_cosine",
    "embedding_precision",
    "embedding_recall",
    "embedding_f1",
    "rouge1",
    "rouge2",
    "rougeL",
    "bleu",
    "exact_match",
    "token_f1",
)
MCQ_METRICS = (
    "mcq_accuracy",
    "mcq_precision_macro",
    "mcq_recall_macro",
    "mcq_f1_macro",
    "mcq_unreadable_rate",
)
# --mcq-scoring loglik|both: the option log-likelihood argmax, lm-eval's method (arena/eval/loglik.py)
LOGLIK_METRICS = (
    "mcq_ll_accuracy",
    "mcq_ll_acc_norm",
    "mcq_ll_precision_macro",
    "mcq_ll_recall_macro",
    "mcq_ll_f1_macro",
)
QUALITY_METRICS = FREE_TEXT_METRICS + MCQ_METRICS + LOGLIK_METRICS
SPEED_METRICS = ("ttft_s", "latency_s", "tokens_per_s", "peak_rss_mb", "peak_vram_mb")
CHART_METRICS = ("bertscore_f1", "embedding_f1", "rougeL", "mcq_accuracy")
# The automatic metrics the leaderboard shows, in column order, with their column headers: declared
# once here (the reader below and `arena.board.BOARD_COLUMNS` both take them from this table).
LEADERBOARD_METRICS = {
    "bertscore_f1": "BERTScore F1",
    "embedding_f1": "Embedding F1",
    "rougeL": "ROUGE-L",
    "mcq_accuracy": "MCQ accuracy",
    "mcq_f1_macro": "MCQ macro F1",
}
METRIC_LABELS = {
    "bertscore_precision": "BERTScore P",
    "bertscore_recall": "BERTScore R",
    "bertscore_f1": "BERTScore F1",
    "embedding_cosine": "Embedding cos",
    "embedding_precision": "Embedding P",
    "embedding_recall": "Embedding R",
    "embedding_f1": "Embedding F1",
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "rougeL": "ROUGE-L",
    "bleu": "BLEU",
    "exact_match": "Exact match",
    "token_f1": "Token F1",
    "mcq_accuracy": "MCQ accuracy",
    "mcq_precision_macro": "MCQ P (macro)",
    "mcq_recall_macro": "MCQ R (macro)",
    "mcq_f1_macro": "MCQ F1 (macro)",
    "mcq_unreadable_rate": "Unreadable",
    "mcq_ll_accuracy": "LL accuracy",
    "mcq_ll_acc_norm": "LL acc (norm)",
    "mcq_ll_precision_macro": "LL P (macro)",
    "mcq_ll_recall_macro": "LL R (macro)",
    "mcq_ll_f1_macro": "LL F1 (macro)",
    "ttft_s": "TTFT s",
    "latency_s": "Latency s",
    "tokens_per_s": "Tokens/s",
    "peak_rss_mb": "Peak RSS MB",
    "peak_vram_mb": "Peak VRAM MB",
}
SPEED_DIGITS = {"ttft_s": 2, "latency_s": 2, "tokens_per_s": 1, "peak_rss_mb": 0, "peak_vram_mb": 0}


def _recency(row: Mapping[str, Any]) -> tuple[str, int]:
    return (str(row.get("created_at") or ""), int(row.get("id") or 0))


def latest_rows(
    rows: Iterable[Mapping[str, Any]], key: Sequence[str] = ("contestant", "dataset", "split", "metric")
) -> list[dict[str, Any]]:
    """The most recent row (created_at, then id) per `key`, in first-seen key order."""
    newest: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for row in rows:
        group = tuple(row.get(column) for column in key)
        if group not in newest or _recency(row) >= _recency(newest[group]):
            newest[group] = row
    return [dict(row) for row in newest.values()]


def leaderboard_metrics(
    rows: list[dict[str, Any]],
) -> dict[str, dict[str, tuple[float, float | None, float | None]]]:
    """Contestant id -> {metric: (value, ci_low, ci_high)} for each of LEADERBOARD_METRICS it has (the
    label for rows written before stable ids).

    Rule: per (contestant, data set, split, metric) only the latest row counts. When a contestant has a
    metric on several data sets, a bundled set (`bundled`, `bundled-mcq`, the ones every install has)
    wins, so contestants are compared on the same questions; otherwise the most recent result wins.
    """
    board: dict[str, dict[str, tuple[float, float | None, float | None]]] = {}
    chosen: dict[tuple[str, str], Mapping[str, Any]] = {}
    for row in latest_rows(rows):
        if row["metric"] not in LEADERBOARD_METRICS:
            continue
        slot = (row.get("contestant_id") or row["contestant"], row["metric"])  # stable id: survives a rename
        rank = (row["dataset"] in BUNDLED, *_recency(row))
        current = chosen.get(slot)
        if current is None or rank >= (current["dataset"] in BUNDLED, *_recency(current)):
            chosen[slot] = row
    for (contestant, metric), row in chosen.items():
        board.setdefault(contestant, {})[metric] = (float(row["value"]), row["ci_low"], row["ci_high"])
    return board


NOT_MEASURED_HERE = "not measured on these weights"


@dataclass(frozen=True)
class ServedResults:
    """Evaluation rows split by provenance against what is served now (`served_results`)."""

    rows: list[dict[str, Any]]  # measured on the weights each contestant is served on now
    elsewhere: frozenset[str]  # served contestants whose board metrics were measured only on other weights


def served_results(rows: Iterable[Mapping[str, Any]], served_weights: Mapping[str, str]) -> ServedResults:
    """Keep the rows whose provenance matches the served contestant: its stable id and its served
    weights tag (`Contestant.weights`). A row without recorded weights, or measured on other weights
    (NF4 under PEFT while llama.cpp serves the Q4_1 GGUF), is left out; a served contestant left with
    no board metric but having some elsewhere is named in `elsewhere` (its cells then say
    NOT_MEASURED_HERE). Contestants not served now keep no metric: there are no weights to match."""
    kept: list[dict[str, Any]] = []
    measured: set[str] = set()
    other: set[str] = set()
    for row in rows:
        stable_id = row.get("contestant_id") or row["contestant"]
        if stable_id not in served_weights:
            continue
        on_board = row["metric"] in LEADERBOARD_METRICS
        if served_weights[stable_id] and row.get("weights") == served_weights[stable_id]:
            kept.append(dict(row))
            if on_board:
                measured.add(stable_id)
        elif on_board:
            other.add(stable_id)
    return ServedResults(kept, frozenset(other - measured))


def metric_human_agreement(
    battles: list[dict[str, Any]], *, rounds: int = BOOTSTRAP_ROUNDS
) -> tuple[float | None, float | None, float | None, int]:
    """How often clinicians preferred the answer with the higher BERTScore: (share, ci_low, ci_high, n).

    Counts decisive votes (model_a / model_b) on battles where both answers have a BERTScore and the two
    differ; the interval is a 95% bootstrap over those battles. (None, None, None, 0) when there are none.
    """
    agreements: list[float] = []
    for battle in battles:
        outcome = str(battle.get("outcome"))
        score_a, score_b = battle.get("bertscore_a"), battle.get("bertscore_b")
        if outcome not in {"model_a", "model_b"} or score_a is None or score_b is None or score_a == score_b:
            continue
        metric_prefers = "model_a" if score_a > score_b else "model_b"
        agreements.append(float(metric_prefers == outcome))
    if not agreements:
        return None, None, None, 0
    low, high = bootstrap_ci(agreements, rounds=rounds, seed=BOOTSTRAP_SEED)
    return statistics.fmean(agreements), low, high, len(agreements)


@dataclass(frozen=True)
class ReportRow:
    """One contestant on one data set and split: the latest row of each metric and the generation settings."""

    contestant: str
    model_key: str
    adapter_run: str | None
    dataset: str
    dataset_hash: str
    split: str
    n: int
    metrics: dict[str, dict[str, Any]]  # metric -> its latest row
    settings: dict[str, float]


def report_rows(rows: Iterable[Mapping[str, Any]], *, by_hash: bool = False) -> list[ReportRow]:
    """One row per (contestant, data set, split) from the latest result of each metric.

    With `by_hash`, per (contestant, data set hash, split) instead: the same data set scored with another
    --limit or file version is then a separate row, which is what a like-for-like comparison needs.
    """
    dataset_column = "dataset_hash" if by_hash else "dataset"
    key = ("contestant", dataset_column, "split")
    grouped: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in latest_rows(rows, (*key, "metric")):
        grouped.setdefault(tuple(row[column] for column in key), []).append(row)
    table = []
    for (contestant, _, split), group in grouped.items():
        quality = [r for r in group if r["metric"] in QUALITY_METRICS]
        reference = max(quality or group, key=_recency)
        table.append(
            ReportRow(
                contestant=contestant,
                model_key=reference["model_key"],
                adapter_run=reference.get("adapter_run"),
                dataset=reference["dataset"],
                dataset_hash=reference["dataset_hash"],
                split=split,
                n=int(reference["n"]),
                metrics={r["metric"]: r for r in group if not r["metric"].startswith(SETTING_PREFIX)},
                settings={
                    r["metric"][len(SETTING_PREFIX) :]: float(r["value"])
                    for r in group
                    if r["metric"].startswith(SETTING_PREFIX)
                },
            )
        )
    return sorted(table, key=lambda r: (r.dataset, r.split, r.model_key, r.adapter_run or ""))


@dataclass(frozen=True)
class DeltaRow:
    """An adapter's result beside its plain base's on the same records, and the per-metric differences."""

    base: ReportRow
    adapter: ReportRow
    deltas: dict[str, float]  # metric -> adapter - base
    # metric -> the adapter's stored paired_delta row (delta with a paired bootstrap interval), when the
    # evaluation could score the base on the same questions
    paired: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def same_settings(self) -> bool:
        """Whether base and adapter answered with the same generation settings."""
        return self.base.settings == self.adapter.settings


def delta_rows(table: Sequence[ReportRow]) -> list[DeltaRow]:
    """Adapter minus plain base per quality metric, where both were scored on the same records (hash).

    Pass `report_rows(rows, by_hash=True)`, so that a base's later run on other records does not hide
    the pair.
    """
    bases = {(r.model_key, r.dataset_hash, r.split): r for r in table if r.adapter_run is None}
    result = []
    for row in table:
        base = bases.get((row.model_key, row.dataset_hash, row.split))
        if row.adapter_run is None or base is None:
            continue
        deltas = {
            metric: float(row.metrics[metric]["value"]) - float(base.metrics[metric]["value"])
            for metric in QUALITY_METRICS
            if metric in row.metrics and metric in base.metrics
        }
        paired = {
            metric[len(PAIRED_PREFIX) :]: stored
            for metric, stored in row.metrics.items()
            if metric.startswith(PAIRED_PREFIX)
        }
        if deltas:
            result.append(DeltaRow(base=base, adapter=row, deltas=deltas, paired=paired))
    return result
