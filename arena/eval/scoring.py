"""Metric computation over a contestant's answers: quality metrics with bootstrap intervals, speed and
generation-setting rows, and the rows stored in `eval_results`. Pure, given loaded scorers.

    from arena.eval.scoring import free_text_metrics, load_scorers
    values = free_text_metrics(answers, references, load_scorers(resolve_scoring_model()))

Run as: python -m pytest tests/test_evaluate.py -q
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arena.eval import metrics, scoring_models, text_overlap
from arena.eval.mcq_letters import extract_option_letter
from arena.eval.paired import paired_delta, paired_metric_delta
from arena.eval.results import PAIRED_PREFIX, SETTING_PREFIX
from finetune import scores
from finetune.data import MCQRecord
from finetune.scores import BOOTSTRAP_ROUNDS, BOOTSTRAP_SEED

if TYPE_CHECKING:
    from arena.adapters import Contestant
    from arena.eval.data import EvalSet
    from arena.serving.common import GenerationSettings


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
class MetricValue:
    """One metric of one contestant on one data set: value, 95% interval (None for speed/settings), n."""

    metric: str
    value: float
    ci_low: float | None
    ci_high: float | None
    n: int
    scoring_model: str | None = None


@dataclass(frozen=True)
class Scorers:
    """The loaded scoring models for free-text sets."""

    bert: scoring_models.BertScorer
    encoder: scoring_models.SentenceEncoder

    @property
    def bertscore_label(self) -> str:
        """BERTScore's scoring model and layer as stored in `scoring_model`, e.g. all-MiniLM-L6-v2@L6."""
        model = self.bert.scoring_model
        return f"{model.name}@L{model.num_layers}"

    @property
    def embedding_label(self) -> str:
        """The sentence encoder's name as stored in `scoring_model`."""
        return self.encoder.scoring_model.name


def load_scorers(scoring_model: scoring_models.ScoringModel) -> Scorers:
    """Load BERTScore and the sentence encoder from one scoring model (once per run)."""
    return Scorers(
        scoring_models.load_bert_scorer(scoring_model), scoring_models.load_sentence_encoder(scoring_model)
    )


def _mean_with_ci(
    metric: str, values: Sequence[float], scoring_model: str | None = None, *, rounds: int = BOOTSTRAP_ROUNDS
) -> MetricValue:
    low, high = scores.bootstrap_ci(values, rounds=rounds, seed=BOOTSTRAP_SEED)
    return MetricValue(metric, float(statistics.fmean(values)), low, high, len(values), scoring_model)


def free_text_values(
    answers: Sequence[str], references: Sequence[str], scorers: Scorers
) -> list[tuple[str, list[float], str | None]]:
    """Per-answer scores of every free-text metric: (metric, one value per answer, scoring model)."""
    bert = metrics.bertscore(answers, references, scorers.bert)
    embedding = metrics.embedding_score(answers, references, scorers.encoder)
    rouge = metrics.rouge(answers, references)
    surface = text_overlap.overlap(answers, references)
    bert_label, embedding_label = scorers.bertscore_label, scorers.embedding_label
    return [
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
        ("bleu", surface.bleu, None),
        ("exact_match", surface.exact_match, None),
        ("token_f1", surface.token_f1, None),
    ]


def free_text_metrics(
    answers: Sequence[str], references: Sequence[str], scorers: Scorers, *, rounds: int = BOOTSTRAP_ROUNDS
) -> list[MetricValue]:
    """BERTScore P/R/F1, embedding cosine and P/R/F1, ROUGE-1/2/L, BLEU, exact match, token F1:
    per-answer means with bootstrap CIs."""
    return [
        _mean_with_ci(name, values, label, rounds=rounds)
        for name, values, label in free_text_values(answers, references, scorers)
    ]


def paired_free_text_deltas(
    base: Sequence[tuple[str, list[float], str | None]],
    adapter: Sequence[tuple[str, list[float], str | None]],
    *,
    rounds: int = BOOTSTRAP_ROUNDS,
) -> list[MetricValue]:
    """adapter − base per free-text metric on the same answers' questions, with paired bootstrap intervals."""
    base_by_name = {name: values for name, values, _ in base}
    result = []
    for name, values, label in adapter:
        delta = paired_delta(base_by_name[name], values, rounds=rounds, seed=BOOTSTRAP_SEED)
        result.append(
            MetricValue(PAIRED_PREFIX + name, delta.delta, delta.ci_low, delta.ci_high, delta.n, label)
        )
    return result


def letter_predictions(answers: Sequence[str], records: Sequence[MCQRecord]) -> list[str | None]:
    """The option letter read from each answer (None when none can be read)."""
    return [extract_option_letter(a, r.options) for a, r in zip(answers, records, strict=True)]


def paired_letter_deltas(
    base_answers: Sequence[str],
    adapter_answers: Sequence[str],
    records: Sequence[MCQRecord],
    *,
    rounds: int = BOOTSTRAP_ROUNDS,
) -> list[MetricValue]:
    """adapter − base MCQ accuracy and macro F1 of the letters read from the answers, paired intervals."""
    gold = [r.answer for r in records]
    labels = sorted({key for r in records for key in r.options})
    base, adapter = letter_predictions(base_answers, records), letter_predictions(adapter_answers, records)
    result = []
    for name, field in (("mcq_accuracy", "accuracy"), ("mcq_f1_macro", "f1_macro")):
        delta = paired_metric_delta(
            base, adapter, gold, lambda p, g, f=field: getattr(scores.mcq_metrics(p, g, labels), f),
            rounds=rounds, seed=BOOTSTRAP_SEED,
        )  # fmt: skip
        result.append(MetricValue(PAIRED_PREFIX + name, delta.delta, delta.ci_low, delta.ci_high, delta.n))
    return result


def mcq_prediction_metrics(
    predicted: Sequence[str | None],
    gold: Sequence[str],
    labels: Sequence[str],
    *,
    prefix: str,
    scoring_model: str | None = None,
    rounds: int = BOOTSTRAP_ROUNDS,
) -> list[MetricValue]:
    """`<prefix>_accuracy` and macro `_precision_macro`/`_recall_macro`/`_f1_macro` of predicted option
    letters (None: unreadable), each with a 95% bootstrap interval over the items (`finetune.scores`)."""
    intervals = scores.mcq_intervals(predicted, gold, labels, rounds=rounds, seed=BOOTSTRAP_SEED)
    return [
        MetricValue(f"{prefix}_{field}", *intervals[field], len(gold), scoring_model)
        for field in scores.MCQ_FIELDS
    ]


def mcq_quality_metrics(
    answers: Sequence[str], records: Sequence[MCQRecord], *, rounds: int = BOOTSTRAP_ROUNDS
) -> list[MetricValue]:
    """Accuracy, macro P/R/F1 and unreadable rate of the option letters read from the answers."""
    predicted = [
        extract_option_letter(answer, record.options) for answer, record in zip(answers, records, strict=True)
    ]
    gold = [record.answer for record in records]
    labels = sorted({key for record in records for key in record.options})
    unreadable = [float(p is None) for p in predicted]
    return [
        *mcq_prediction_metrics(predicted, gold, labels, prefix="mcq", rounds=rounds),
        MetricValue(
            "mcq_unreadable_rate",
            scores.mcq_metrics(predicted, gold, labels).unreadable_rate,
            *scores.bootstrap_ci(unreadable, rounds=rounds, seed=BOOTSTRAP_SEED),
            len(records),
        ),
    ]


def speed_metrics(speed: SpeedFigures | None) -> list[MetricValue]:
    """ttft_s, latency_s, tokens_per_s and peak memory rows; none when every answer came from the cache."""
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
    """The `eval_results` rows of one contestant on one data set, one per metric value."""
    return [
        {
            "contestant": contestant.name,
            "model_key": contestant.model_key,
            "adapter_run": contestant.adapter_run,
            "weights": contestant.weights or None,  # the served weights these answers came from
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
