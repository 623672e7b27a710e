"""Automatic evaluation: answer a data set with arena contestants, score it, store it beside the votes.

Results go to the `eval_results` table of the arena's own SQLite file (the one place the arena reads);
every answer goes to the `eval_cache` table first, so an interrupted run resumes and a repeated run
generates nothing. Answers use the arena's fixed generation settings (greedy, 128 new tokens) unless
`--max-new-tokens` says otherwise; the settings are stored as `gen.*` rows next to the metrics.

    python -m arena.evaluate --model smollm2-135m --data bundled                 # plain base, test split
    python -m arena.evaluate --model smollm2-135m --adapter latest --data bundled --data bundled-mcq
    python -m arena.evaluate --model smollm2-135m --adapter 20250101-120000 \\
        --data ../shared/data/medquad/medquad.jsonl --split test --limit 100
    python -m arena.evaluate --all --data bundled     # every contestant the arena shows
    python -m arena.evaluate --report --out results/  # eval_report.md/.csv/.png with base-vs-LoRA deltas

Options: `--adapter RUN|latest|none` (default none), `--split test|validation|train|all` (default test
of the deterministic 80/10/10 split, so adapters are not scored on their training records),
`--limit N` (first N records of the split), `--db PATH` (default $MEDARENA_VOTES_DB or votes.db),
`--adapters-dir adapters`, `--batch-size 8`, `--max-new-tokens N`. `--data` may be repeated.

Metrics. Free-text sets: BERTScore P/R/F1, embedding cosine and sentence-matched P/R/F1, ROUGE-1/2/L.
Multiple-choice sets: accuracy, macro precision/recall/F1, unreadable_rate. Each has a 95% percentile
bootstrap interval (1000 rounds, seed 0). Speed, over the answers generated in this run: ttft_s and
latency_s (medians per answer; an answer's latency is its batch's wall time), tokens_per_s (all output
tokens / generation wall time) and peak_rss_mb or peak_vram_mb; a run served wholly from the cache
measures no speed, and the report keeps showing the last measured one.

Bad input (unknown model or adapter, no usable records, a data set without reference answers, a scoring
model that cannot be loaded offline) prints one sentence on stderr, exits with status 2 and stores no
result rows. `leaderboard_metrics` and `metric_human_agreement` are the pure functions the arena's
leaderboard calls.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from arena import metrics
from arena.engine import (
    AdapterInfo,
    ArenaEngine,
    Contestant,
    GenerationSettings,
    discover_adapters,
    peak_memory_mb,
)
from arena.store import ArenaStore, InvalidRecord, default_db_path, eval_cache_key
from finetune.data import (
    BUNDLED,
    DataError,
    MCQRecord,
    QARecord,
    Record,
    content_hash,
    load_dataset_source,
    reference_text,
)
from finetune.data import split_records as deterministic_split
from finetune.loading import BaseUnavailableError, availability
from finetune.prompt import MCQ_INSTRUCTION, PROMPT_RENDERING, SYSTEM_PROMPT, final_answer, user_text
from finetune.registry import UnknownModelError, get_model

SPLITS = ("test", "validation", "train", "all")
BOOTSTRAP_ROUNDS = 1000
BOOTSTRAP_SEED = 0  # fixed, so a rerun on cached answers reproduces every interval exactly
SETTING_PREFIX = "gen."  # rows that record the generation settings, not a measurement

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
)
MCQ_METRICS = (
    "mcq_accuracy",
    "mcq_precision_macro",
    "mcq_recall_macro",
    "mcq_f1_macro",
    "mcq_unreadable_rate",
)
QUALITY_METRICS = FREE_TEXT_METRICS + MCQ_METRICS
SPEED_METRICS = ("ttft_s", "latency_s", "tokens_per_s", "peak_rss_mb", "peak_vram_mb")
CHART_METRICS = ("bertscore_f1", "embedding_f1", "rougeL", "mcq_accuracy")
LEADERBOARD_METRICS = ("bertscore_f1", "embedding_f1", "rougeL", "mcq_accuracy", "mcq_f1_macro")
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
    "mcq_accuracy": "MCQ accuracy",
    "mcq_precision_macro": "MCQ P (macro)",
    "mcq_recall_macro": "MCQ R (macro)",
    "mcq_f1_macro": "MCQ F1 (macro)",
    "mcq_unreadable_rate": "Unreadable",
    "ttft_s": "TTFT s",
    "latency_s": "Latency s",
    "tokens_per_s": "Tokens/s",
    "peak_rss_mb": "Peak RSS MB",
    "peak_vram_mb": "Peak VRAM MB",
}
SPEED_DIGITS = {"ttft_s": 2, "latency_s": 2, "tokens_per_s": 1, "peak_rss_mb": 0, "peak_vram_mb": 0}
REPORT_FILES = ("eval_report.md", "eval_report.csv", "eval_report.png")

EngineStarter = Callable[..., ArenaEngine]


class EvaluationError(ValueError):
    """An evaluation that cannot run as asked; the message is one sentence fit for a person."""


class UnknownAdapterError(EvaluationError):
    """The asked-for adapter run does not exist for that model."""


class ReferenceFreeDataError(EvaluationError):
    """The data set has questions but no reference answers, so reference metrics cannot be computed."""


class EmptySplitError(EvaluationError):
    """The chosen split of the data set holds no record."""


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class EvalSet:
    """The records one evaluation scores, and how to name them in results."""

    label: str  # short name stored in the `dataset` column
    source: str  # what load_dataset_source was given
    kind: str  # "free_text" or "multiple_choice"
    split: str
    records: list[Record]

    @property
    def content_hash(self) -> str:
        # Over the evaluated records only: the same hash means the very same questions and references.
        return content_hash(self.records)


def dataset_label(source: str) -> str:
    """'bundled', a hub set name, or a file's stem ('../shared/data/medquad/medquad.jsonl' -> 'medquad')."""
    path = Path(source)
    return path.stem if path.suffix else source


def load_eval_set(source: str, split: str, limit: int | None, *, split_seed: int = 42) -> EvalSet:
    """Load, clean and split a source the way training does, then keep the first `limit` of `split`."""
    if split not in SPLITS:
        raise EvaluationError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    try:
        loaded = load_dataset_source(source)
    except DataError:
        if _has_questions_without_answers(source):
            raise ReferenceFreeDataError(
                f"data set {source} has questions but no reference answers, so reference metrics "
                "(BERTScore, embedding score, ROUGE, MCQ accuracy) cannot be computed; put it in the arena instead"
            ) from None
        raise
    if split == "all":
        records = loaded.records
    else:
        records = getattr(deterministic_split(loaded.records, seed=split_seed), split)
    if not records:
        raise EmptySplitError(
            f"the {split} split of {loaded.source} is empty ({len(loaded.records)} records in all); "
            "use --split all for a file this small"
        )
    if limit is not None:
        records = records[:limit]
    return EvalSet(
        label=dataset_label(loaded.source),
        source=loaded.source,
        kind=loaded.kind,
        split=split,
        records=list(records),
    )


def _has_questions_without_answers(source: str) -> bool:
    """True for a local .jsonl/.csv whose rows carry questions and not a single non-empty answer."""
    path = Path(source).expanduser()
    if path.suffix.lower() not in {".jsonl", ".csv"} or not path.is_file():
        return False
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            if path.suffix.lower() == ".csv":
                rows: list[Any] = list(csv.DictReader(handle))
            else:
                rows = [json.loads(line) for line in handle if line.strip()]
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error):
        return False
    rows = [row for row in rows if isinstance(row, dict)]

    def filled(row: Mapping[str, Any], key: str) -> bool:
        value = row.get(key)
        return isinstance(value, str) and bool(value.strip())

    return any(filled(row, "question") for row in rows) and not any(filled(row, "answer") for row in rows)


# --------------------------------------------------------------------------- contestants


def resolve_adapter(model_key: str, choice: str, adapters_dir: Path) -> AdapterInfo | None:
    """`none` -> None (the plain base), `latest` -> the newest run, else the run with that id."""
    if choice == "none":
        return None
    runs = sorted(
        (info for info in discover_adapters(adapters_dir)[0] if info.model_key == model_key),
        key=lambda info: info.run_id,  # run ids are UTC timestamps
    )
    if choice == "latest":
        if not runs:
            raise UnknownAdapterError(
                f"there is no adapter for {model_key} under {adapters_dir}; train one with "
                f"`python -m finetune --model {model_key}` or use --adapter none"
            )
        return runs[-1]
    for info in runs:
        if info.run_id == choice:
            return info
    available = ", ".join(info.run_id for info in runs) or "none"
    raise UnknownAdapterError(
        f"{model_key} has no adapter run {choice!r} under {adapters_dir}; runs available: {available}"
    )


def find_contestant(engine: ArenaEngine, model_key: str, adapter_run: str | None) -> Contestant:
    for contestant in engine.contestants():
        if contestant.model_key == model_key and contestant.adapter_run == adapter_run:
            return contestant
    what = f"{model_key} with adapter {adapter_run}" if adapter_run else f"the plain {model_key} base"
    detail = "; ".join(engine.warnings) or "no reason given"
    raise EvaluationError(f"the engine could not load {what} ({detail})")


def prompt_template_id(chat_template: str | None) -> str:
    """Names the prompt as the model sees it: the system text, the MCQ instruction and the chat template."""
    payload = json.dumps(
        [SYSTEM_PROMPT, MCQ_INSTRUCTION, chat_template or "", PROMPT_RENDERING], ensure_ascii=False
    )
    return "medarena-prompt-" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


# --------------------------------------------------------------------------- answering


@dataclass(frozen=True)
class SpeedFigures:
    """Speed and memory over the answers generated in one run."""

    ttft_s: float
    latency_s: float
    tokens_per_s: float
    peak_memory_mb: float
    memory_kind: str  # "rss" or "vram"
    answers: int


@dataclass(frozen=True)
class AnswerSet:
    answers: list[str]
    generated: int
    cached: int
    speed: SpeedFigures | None  # None when every answer came from the cache


def answer_records(
    engine: ArenaEngine,
    contestant: Contestant,
    records: Sequence[Record],
    settings: GenerationSettings,
    store: ArenaStore,
    *,
    batch_size: int,
    progress_label: str,
) -> AnswerSet:
    """Every record's answer: cached ones looked up first, the rest generated in batches and cached per batch."""
    resident = engine.base_for(contestant.name)
    template_id = prompt_template_id(resident.loaded.tokenizer.chat_template)
    settings_dict = settings.to_dict()
    keys = [
        eval_cache_key(contestant.name, template_id, settings_dict, user_text(r.question, r.options))
        for r in records
    ]
    answers: dict[int, str] = {}
    for index, key in enumerate(keys):
        hit = store.cache_get(key)
        if hit is not None:
            answers[index] = hit["answer"]
    missing = sorted(
        (i for i in range(len(records)) if i not in answers),
        key=lambda i: len(user_text(records[i].question, records[i].options)),
    )
    if not missing:
        return AnswerSet([answers[i] for i in range(len(records))], 0, len(records), None)

    ttfts: list[float] = []
    latencies: list[float] = []
    output_tokens = 0
    wall_s = 0.0
    peak_mb, memory_kind = 0.0, "rss"
    device = resident.loaded.device
    with tqdm(total=len(missing), desc=progress_label, unit="answer", file=sys.stderr) as bar:
        # Batch by batch, so that each batch is in the cache before the next one starts.
        for start in range(0, len(missing), batch_size):
            chunk = missing[start : start + batch_size]
            items = [(records[i].question, records[i].options) for i in chunk]
            started = time.perf_counter()
            generated = engine.generate_answers(contestant.name, items, settings, batch_size=batch_size)
            wall_s += time.perf_counter() - started
            batch_peak, memory_kind = peak_memory_mb(device)
            peak_mb = max(peak_mb, batch_peak)
            for index, answer in zip(chunk, generated, strict=True):
                store.cache_put(
                    keys[index],
                    {
                        "contestant": contestant.name,
                        "question_id": records[index].id,
                        "answer": answer.text,
                        "output_tokens": answer.output_tokens,
                        "latency_s": answer.latency_s,
                        "ttft_s": answer.ttft_s,
                    },
                )
                answers[index] = answer.text
                ttfts.append(answer.ttft_s)
                latencies.append(answer.latency_s)
                output_tokens += answer.output_tokens
            bar.update(len(chunk))
    speed = SpeedFigures(
        ttft_s=statistics.median(ttfts),
        latency_s=statistics.median(latencies),
        tokens_per_s=output_tokens / wall_s if wall_s > 0 else 0.0,
        peak_memory_mb=peak_mb,
        memory_kind=memory_kind,
        answers=len(missing),
    )
    return AnswerSet(
        [answers[i] for i in range(len(records))], len(missing), len(records) - len(missing), speed
    )


# --------------------------------------------------------------------------- scoring (pure)


@dataclass(frozen=True)
class MetricValue:
    metric: str
    value: float
    ci_low: float | None
    ci_high: float | None
    n: int
    scoring_model: str | None = None


@dataclass(frozen=True)
class Scorers:
    """The loaded scoring models for free-text sets."""

    bert: metrics.BertScorer
    encoder: metrics.SentenceEncoder

    @property
    def bertscore_label(self) -> str:
        model = self.bert.scoring_model
        return f"{model.name}@L{model.num_layers}"

    @property
    def embedding_label(self) -> str:
        return self.encoder.scoring_model.name


def _mean_with_ci(
    metric: str, values: Sequence[float], scoring_model: str | None = None, *, rounds: int = BOOTSTRAP_ROUNDS
) -> MetricValue:
    low, high = metrics.bootstrap_ci(values, rounds=rounds, seed=BOOTSTRAP_SEED)
    return MetricValue(metric, float(statistics.fmean(values)), low, high, len(values), scoring_model)


def free_text_metrics(
    answers: Sequence[str], references: Sequence[str], scorers: Scorers, *, rounds: int = BOOTSTRAP_ROUNDS
) -> list[MetricValue]:
    """BERTScore P/R/F1, embedding cosine and P/R/F1, ROUGE-1/2/L: per-answer means with bootstrap CIs."""
    bert = metrics.bertscore(answers, references, scorers.bert)
    embedding = metrics.embedding_score(answers, references, scorers.encoder)
    rouge = metrics.rouge(answers, references)
    bert_label, embedding_label = scorers.bertscore_label, scorers.embedding_label
    per_answer: list[tuple[str, list[float], str | None]] = [
        ("bertscore_precision", bert.precision, bert_label),
        ("bertscore_recall", bert.recall, bert_label),
        ("bertscore_f1", bert.f1, bert_label),
        ("embedding_cosine", embedding.cosine, embedding_label),
        ("embedding_precision", embedding.precision, embedding_label),
        ("embedding_recall", embedding.recall, embedding_label),
        ("embedding_f1", embedding.f1, embedding_label),
        ("rouge1", rouge.rouge1, None),
        ("rouge2", rouge.rouge2, None),
        ("rougeL", rouge.rougeL, None),
    ]
    return [_mean_with_ci(name, values, label, rounds=rounds) for name, values, label in per_answer]


def mcq_quality_metrics(
    answers: Sequence[str], records: Sequence[MCQRecord], *, rounds: int = BOOTSTRAP_ROUNDS
) -> list[MetricValue]:
    """Accuracy, macro P/R/F1 and unreadable rate of the option letters read from the answers."""
    predicted = [
        metrics.extract_option_letter(answer, record.options)
        for answer, record in zip(answers, records, strict=True)
    ]
    gold = [record.answer for record in records]
    labels = sorted({key for record in records for key in record.options})
    overall = metrics.mcq_metrics(predicted, gold, labels)
    pairs = list(zip(predicted, gold, strict=True))
    n = len(records)

    def resampled(field: str) -> tuple[float, float]:
        return metrics.bootstrap_metric_ci(
            pairs,
            lambda p, g: getattr(metrics.mcq_metrics(p, g, labels), field),
            rounds=rounds,
            seed=BOOTSTRAP_SEED,
        )

    correct = [float(p == g) for p, g in pairs]
    unreadable = [float(p is None) for p in predicted]
    return [
        MetricValue(
            "mcq_accuracy",
            overall.accuracy,
            *metrics.bootstrap_ci(correct, rounds=rounds, seed=BOOTSTRAP_SEED),
            n,
        ),
        MetricValue("mcq_precision_macro", overall.precision_macro, *resampled("precision_macro"), n),
        MetricValue("mcq_recall_macro", overall.recall_macro, *resampled("recall_macro"), n),
        MetricValue("mcq_f1_macro", overall.f1_macro, *resampled("f1_macro"), n),
        MetricValue(
            "mcq_unreadable_rate",
            overall.unreadable_rate,
            *metrics.bootstrap_ci(unreadable, rounds=rounds, seed=BOOTSTRAP_SEED),
            n,
        ),
    ]


def speed_metrics(speed: SpeedFigures | None) -> list[MetricValue]:
    if speed is None:
        return []
    n = speed.answers
    return [
        MetricValue("ttft_s", round(speed.ttft_s, 4), None, None, n),
        MetricValue("latency_s", round(speed.latency_s, 4), None, None, n),
        MetricValue("tokens_per_s", round(speed.tokens_per_s, 2), None, None, n),
        MetricValue(f"peak_{speed.memory_kind}_mb", round(speed.peak_memory_mb, 1), None, None, n),
    ]


def setting_metrics(settings: GenerationSettings, batch_size: int, n: int) -> list[MetricValue]:
    """The generation settings as rows, so every stored result says how its answers were made."""
    values = {**settings.to_dict(), "batch_size": batch_size}
    return [MetricValue(SETTING_PREFIX + name, float(value), None, None, n) for name, value in values.items()]


def result_rows(
    values: Iterable[MetricValue],
    *,
    contestant: Contestant,
    eval_set: EvalSet,
    run_id: str,
    created_at: str,
    git_commit: str | None,
) -> list[dict[str, Any]]:
    return [
        {
            "contestant": contestant.name,
            "model_key": contestant.model_key,
            "adapter_run": contestant.adapter_run,
            "dataset": eval_set.label,
            "dataset_hash": eval_set.content_hash,
            "split": eval_set.split,
            "n": value.n,
            "metric": value.metric,
            "value": value.value,
            "ci_low": value.ci_low,
            "ci_high": value.ci_high,
            "scoring_model": value.scoring_model,
            "git_commit": git_commit,
            "created_at": created_at,
            "run_id": run_id,
        }
        for value in values
    ]


# --------------------------------------------------------------------------- reading results (pure)


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
    """Contestant -> {bertscore_f1, embedding_f1, mcq_accuracy, mcq_f1_macro: (value, ci_low, ci_high)}.

    Rule: per (contestant, data set, split, metric) only the latest row counts. When a contestant has a
    metric on several data sets, a bundled set (`bundled`, `bundled-mcq`, the ones every install has)
    wins, so contestants are compared on the same questions; otherwise the most recent result wins.
    """
    board: dict[str, dict[str, tuple[float, float | None, float | None]]] = {}
    chosen: dict[tuple[str, str], Mapping[str, Any]] = {}
    for row in latest_rows(rows):
        if row["metric"] not in LEADERBOARD_METRICS:
            continue
        slot = (row["contestant"], row["metric"])
        rank = (row["dataset"] in BUNDLED, *_recency(row))
        current = chosen.get(slot)
        if current is None or rank >= (current["dataset"] in BUNDLED, *_recency(current)):
            chosen[slot] = row
    for (contestant, metric), row in chosen.items():
        board.setdefault(contestant, {})[metric] = (float(row["value"]), row["ci_low"], row["ci_high"])
    return board


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
    low, high = metrics.bootstrap_ci(agreements, rounds=rounds, seed=BOOTSTRAP_SEED)
    return statistics.fmean(agreements), low, high, len(agreements)


# --------------------------------------------------------------------------- report


def _cell(row: Mapping[str, Any] | None, digits: int = 3) -> str:
    if row is None:
        return ""
    text = f"{row['value']:.{digits}f}"
    if row.get("ci_low") is not None and row.get("ci_high") is not None:
        text += f" [{row['ci_low']:.{digits}f}, {row['ci_high']:.{digits}f}]"
    return text


def _settings_text(settings: Mapping[str, float]) -> str:
    if not settings:
        return ""
    tokens = int(settings.get("max_new_tokens", 0))
    temperature = settings.get("temperature", 0.0)
    how = (
        "greedy"
        if temperature == 0
        else f"T={temperature:g}, top-p={settings.get('top_p', 1.0):g}, seed={int(settings.get('seed', 0))}"
    )
    return f"{how}, {tokens} tokens"


@dataclass(frozen=True)
class ReportRow:
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
    base: ReportRow
    adapter: ReportRow
    deltas: dict[str, float]  # metric -> adapter - base

    @property
    def same_settings(self) -> bool:
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
        if deltas:
            result.append(DeltaRow(base=base, adapter=row, deltas=deltas))
    return result


def _markdown_table(header: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in body]
    return lines


def render_markdown(
    table: Sequence[ReportRow], deltas: Sequence[DeltaRow], scoring_models: Sequence[str]
) -> str:
    lines = [
        "# MedArena automatic evaluation",
        "",
        "Latest result per contestant, data set, split and metric; intervals are 95% percentile bootstrap "
        f"({BOOTSTRAP_ROUNDS} rounds, seed {BOOTSTRAP_SEED}). Speed is over the answers generated in the run "
        "that measured it.",
    ]
    if scoring_models:
        lines.append(f"Scoring models: {', '.join(scoring_models)}.")
    for kind, kind_metrics in (("Free-text sets", FREE_TEXT_METRICS), ("Multiple-choice sets", MCQ_METRICS)):
        rows = [r for r in table if any(m in r.metrics for m in kind_metrics)]
        if not rows:
            continue
        shown = [m for m in kind_metrics if any(m in r.metrics for r in rows)]
        speed = [m for m in SPEED_METRICS if any(m in r.metrics for r in rows)]
        header = ["Model", "Data set", "Split", "n", *(METRIC_LABELS[m] for m in shown + speed), "Settings"]
        body = [
            [
                r.contestant,
                r.dataset,
                r.split,
                str(r.n),
                *(_cell(r.metrics.get(m)) for m in shown),
                *(_cell(r.metrics.get(m), SPEED_DIGITS[m]) for m in speed),
                _settings_text(r.settings),
            ]
            for r in rows
        ]
        lines += ["", f"## {kind}", "", *_markdown_table(header, body)]
    lines += ["", "## Fine-tuned minus base"]
    if not deltas:
        lines += [
            "",
            "No pair yet: evaluate a model with `--adapter none` and with an adapter on the same data set and split.",
        ]
    for kind, kind_metrics in (("Free-text sets", FREE_TEXT_METRICS), ("Multiple-choice sets", MCQ_METRICS)):
        rows = [d for d in deltas if any(m in d.deltas for m in kind_metrics)]
        if not rows:
            continue
        shown = [m for m in kind_metrics if any(m in d.deltas for d in rows)]
        header = ["Model", "Adapter", "Data set", "Split", "n", *(f"Δ {METRIC_LABELS[m]}" for m in shown)]
        body = [
            [
                d.adapter.model_key,
                d.adapter.adapter_run or "",
                d.adapter.dataset,
                d.adapter.split,
                str(d.adapter.n),
                *(f"{d.deltas[m]:+.3f}" if m in d.deltas else "" for m in shown),
            ]
            for d in rows
        ]
        lines += ["", f"{kind}: adapter minus plain base on the same records (same data set hash).", ""]
        lines += _markdown_table(header, body)
        for d in rows:
            if not d.same_settings:
                lines.append(
                    f"\nNote: {d.adapter.contestant} on {d.adapter.dataset} used {_settings_text(d.adapter.settings)}, "
                    f"the base {_settings_text(d.base.settings)}; the delta mixes settings."
                )
    return "\n".join(lines) + "\n"


def report_figure(table: Sequence[ReportRow]) -> Any:
    """Grouped bars per contestant: BERTScore F1, embedding F1, ROUGE-L, MCQ accuracy, with CI whiskers."""
    from matplotlib.figure import Figure

    contestants = list(dict.fromkeys(r.contestant for r in table))
    series = sorted(
        {(m, r.dataset, r.split) for r in table for m in CHART_METRICS if m in r.metrics},
        key=lambda item: (CHART_METRICS.index(item[0]), item[1], item[2]),
    )
    figure = Figure(figsize=(max(6.0, 2.2 * len(contestants) + 2), 4.8), layout="constrained")
    axes = figure.subplots()
    if not series:
        axes.text(0.5, 0.5, "no quality metrics stored yet", ha="center", va="center")
        axes.set_axis_off()
        return figure
    width = 0.8 / len(series)
    for position, (metric, dataset, split) in enumerate(series):
        xs, heights, below, above = [], [], [], []
        for x, contestant in enumerate(contestants):
            match = next(
                (r for r in table if (r.contestant, r.dataset, r.split) == (contestant, dataset, split)), None
            )
            if match is None or metric not in match.metrics:
                continue
            row = match.metrics[metric]
            value = float(row["value"])
            low = row["ci_low"] if row["ci_low"] is not None else value
            high = row["ci_high"] if row["ci_high"] is not None else value
            xs.append(x - 0.4 + width * (position + 0.5))
            heights.append(value)
            # A macro-F1 point estimate can fall outside its percentile interval; whiskers never go negative.
            below.append(max(0.0, value - low))
            above.append(max(0.0, high - value))
        axes.bar(
            xs,
            heights,
            width,
            yerr=[below, above],
            capsize=3,
            label=f"{METRIC_LABELS[metric]} · {dataset} ({split})",
        )
    axes.set_xticks(
        range(len(contestants)), labels=[name.replace(" · ", "\n") for name in contestants], fontsize=8
    )
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("score (95% CI)")
    axes.set_title("MedArena automatic metrics")
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return figure


def write_report(rows: Sequence[Mapping[str, Any]], out_dir: Path) -> list[Path]:
    """eval_report.md (tables + deltas), eval_report.csv (latest rows), eval_report.png (bar chart)."""
    if not rows:
        raise EvaluationError(
            "there are no evaluation results in this database yet; run `python -m arena.evaluate --model KEY --data SOURCE` first"
        )
    table = report_rows(rows)
    latest = sorted(latest_rows(rows), key=lambda r: (r["dataset"], r["split"], r["contestant"], r["metric"]))
    scoring_models = sorted({r["scoring_model"] for r in latest if r.get("scoring_model")})
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown, csv_path, png = (out_dir / name for name in REPORT_FILES)
    markdown.write_text(
        render_markdown(table, delta_rows(report_rows(rows, by_hash=True)), scoring_models), encoding="utf-8"
    )
    columns = [
        "contestant", "model_key", "adapter_run", "dataset", "dataset_hash", "split", "n", "metric",
        "value", "ci_low", "ci_high", "scoring_model", "git_commit", "created_at", "run_id",
    ]  # fmt: skip
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(latest)
    report_figure(table).savefig(png, dpi=120)
    return [markdown, csv_path, png]


# --------------------------------------------------------------------------- CLI


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m arena.evaluate", description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", metavar="KEY", help="registry key of the base to evaluate")
    which.add_argument("--all", action="store_true", help="every contestant the arena would show")
    which.add_argument(
        "--report", action="store_true", help="write eval_report.md/.csv/.png from the database"
    )
    parser.add_argument(
        "--adapter", default="none", metavar="RUN|latest|none", help="adapter run (default none)"
    )
    parser.add_argument(
        "--data",
        action="append",
        metavar="SOURCE",
        help="bundled, bundled-mcq, a .jsonl/.csv path or a hub set (repeatable)",
    )
    parser.add_argument("--split", default="test", choices=SPLITS, help="which split to score (default test)")
    parser.add_argument("--limit", type=_positive_int, help="score only the first N records of the split")
    parser.add_argument("--db", type=Path, help="SQLite file (default $MEDARENA_VOTES_DB or votes.db)")
    parser.add_argument("--adapters-dir", type=Path, default=Path("adapters"))
    parser.add_argument("--batch-size", type=_positive_int, default=8)
    parser.add_argument(
        "--max-new-tokens", type=_positive_int, help=f"default {GenerationSettings().max_new_tokens}"
    )
    parser.add_argument("--out", type=Path, default=Path("results"), help="report folder (default results/)")
    args = parser.parse_args(argv)
    if not args.report and not args.data:
        parser.error("name the data to score with --data SOURCE")
    return args


def _print_results(
    contestant: Contestant, eval_set: EvalSet, answered: AnswerSet, values: Sequence[MetricValue]
) -> None:
    print(
        f"\n{contestant.name} on {eval_set.label} ({eval_set.split}, n={len(eval_set.records)}): "
        f"generated {answered.generated} new answer{'' if answered.generated == 1 else 's'}, {answered.cached} from cache"
    )
    for value in values:
        if value.metric.startswith(SETTING_PREFIX):
            continue
        interval = (
            f"[{value.ci_low:.3f}, {value.ci_high:.3f}]"
            if value.ci_low is not None and value.ci_high is not None
            else ""
        )
        print(f"  {value.metric:<22} {value.value:>9.3f}  {interval}")


def _adapter_trained_on(adapter: AdapterInfo, eval_set: EvalSet) -> bool:
    """Whether the adapter's run.json names the same data source (its train split is then in `all`/`train`)."""
    try:
        run = json.loads((adapter.path / "run.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    trained_on = str(run.get("data", {}).get("source", ""))
    return bool(trained_on) and (
        trained_on == eval_set.source or Path(trained_on).resolve() == Path(eval_set.source).resolve()
    )


def run_evaluation(
    args: argparse.Namespace,
    *,
    store: ArenaStore | Callable[[], ArenaStore],
    environ: Mapping[str, str] | None,
    start_engine: EngineStarter,
) -> list[dict[str, Any]]:
    """Check everything cheap, load the base(s), answer, score; returns the rows (written by the caller)."""
    settings = (
        GenerationSettings(max_new_tokens=args.max_new_tokens)
        if args.max_new_tokens
        else GenerationSettings()
    )
    adapter: AdapterInfo | None = None
    if args.model:
        spec = get_model(args.model)
        available, reason = availability(spec)
        if not available:
            raise BaseUnavailableError(reason)
        adapter = resolve_adapter(spec.key, args.adapter, args.adapters_dir)
    eval_sets = [load_eval_set(source, args.split, args.limit) for source in args.data]
    needs_scorers = any(s.kind == "free_text" for s in eval_sets)
    # Resolving is cheap and says whether the scoring model exists here, before any answer is generated.
    scoring_model = metrics.resolve_scoring_model(env=environ) if needs_scorers else None
    if not isinstance(store, ArenaStore):
        store = store()  # opened only now, so bad arguments never leave a new votes.db behind

    if args.model:
        engine = start_engine(
            adapters_dir=args.adapters_dir,
            model_keys=[args.model],
            adapter_selection=[f"{args.model}/{adapter.run_id}"] if adapter else [],
            include_plain_bases=adapter is None,
        )
        contestants = [find_contestant(engine, args.model, adapter.run_id if adapter else None)]
        if adapter is not None:
            for eval_set in eval_sets:
                if eval_set.split in {"all", "train"} and _adapter_trained_on(adapter, eval_set):
                    print(
                        f"note: adapter {adapter.run_id} was trained on the train split of {eval_set.label}, "
                        f"which --split {eval_set.split} includes",
                        file=sys.stderr,
                    )
    else:
        engine = start_engine(adapters_dir=args.adapters_dir, adapter_selection="latest")
        contestants = engine.contestants()
        for warning in engine.warnings:
            print(f"note: {warning}", file=sys.stderr)
        if not contestants:
            raise EvaluationError("no base model can be loaded here, so there is no contestant to evaluate")

    answered = {
        (c.name, i): answer_records(
            engine, c, s.records, settings, store,
            batch_size=args.batch_size, progress_label=f"{c.name} · {s.label}",
        )
        for c in contestants
        for i, s in enumerate(eval_sets)
    }  # fmt: skip
    scorers = None
    if scoring_model is not None:
        scorers = Scorers(
            metrics.load_bert_scorer(scoring_model), metrics.load_sentence_encoder(scoring_model)
        )

    run_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    created_at = datetime.now(UTC).isoformat(timespec="microseconds")
    from finetune.train import git_commit

    commit = git_commit()
    rows: list[dict[str, Any]] = []
    for contestant in contestants:
        for index, eval_set in enumerate(eval_sets):
            answer_set = answered[(contestant.name, index)]
            # Scored: final answers only, on both sides (a reasoning model's or medical-o1's think block is not the answer).
            finals = [final_answer(answer) for answer in answer_set.answers]
            if eval_set.kind == "free_text":
                assert scorers is not None  # resolved above for every free-text set
                references = [reference_text(r) for r in eval_set.records if isinstance(r, QARecord)]
                quality = free_text_metrics(finals, references, scorers)
            else:
                mcq_records = [r for r in eval_set.records if isinstance(r, MCQRecord)]
                quality = mcq_quality_metrics(finals, mcq_records)
            values = [
                *quality,
                *speed_metrics(answer_set.speed),
                *setting_metrics(settings, args.batch_size, len(eval_set.records)),
            ]
            _print_results(contestant, eval_set, answer_set, values)
            rows += result_rows(
                values,
                contestant=contestant,
                eval_set=eval_set,
                run_id=run_id,
                created_at=created_at,
                git_commit=commit,
            )
    return rows


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    start_engine: EngineStarter = ArenaEngine.start,
) -> int:
    """CLI entry point. `environ` (default os.environ) and `start_engine` are parameters for callers and tests."""
    args = parse_args(argv)
    db_path = args.db or default_db_path(environ)
    opened: list[ArenaStore] = []

    def open_store() -> ArenaStore:
        if not opened:
            opened.append(ArenaStore(db_path))
        return opened[0]

    try:
        if args.report:
            if not Path(db_path).exists():
                raise EvaluationError(f"there is no database at {db_path}; run an evaluation first")
            for path in write_report(open_store().eval_results(), args.out):
                print(f"wrote {path}")
            return 0
        rows = run_evaluation(args, store=open_store, environ=environ, start_engine=start_engine)
        store = open_store()
        store.add_eval_results(rows)  # one transaction: every row of the run, or none
        print(f"\nstored {len(rows)} result rows (run {rows[0]['run_id'] if rows else '-'}) in {store.path}")
        return 0
    except (
        UnknownModelError,
        BaseUnavailableError,
        DataError,
        EvaluationError,
        metrics.ScoringModelUnavailable,
        metrics.MetricInputError,
        InvalidRecord,
    ) as error:
        message = " ".join(str(error).split())
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; answers generated so far are cached, no result rows were stored", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
