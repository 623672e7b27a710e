"""Pure automatic metrics that sit beside the clinicians' votes: BERTScore, embedding score, ROUGE, MCQ.

Every function here is pure: a function of its texts and of a scoring model the caller passes in.
Loading a scoring model (environment, cache, hub probe) lives in `arena.scoring_models`; reading the
option letter out of a multiple-choice answer in `arena.mcq_letters`.

    from arena import metrics, scoring_models

    model = scoring_models.resolve_scoring_model()
    scorer = scoring_models.load_bert_scorer(model)
    encoder = scoring_models.load_sentence_encoder(model)
    metrics.bertscore(answers, references, scorer).f1
    metrics.embedding_score(answers, references, encoder).cosine
    metrics.rouge(answers, references).rougeL

    letters = [mcq_letters.extract_option_letter(answer, options) for answer in answers]
    result = metrics.mcq_metrics(letters, gold_letters, labels=["A", "B", "C", "D"])
    low, high = metrics.bootstrap_ci(metrics.bertscore(answers, references, scorer).f1)

Run as: python -m pytest tests/test_metrics.py -q
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from rouge_score import rouge_scorer

from arena.metric_errors import MetricInputError

if TYPE_CHECKING:
    from arena.scoring_models import BertScorer, SentenceEncoder

UNREADABLE_LABEL = "<unreadable>"  # sentinel for MCQ answers no letter could be read from

_Prediction = TypeVar("_Prediction")
_Gold = TypeVar("_Gold")


# --------------------------------------------------------------------------- BERTScore


@dataclass(frozen=True)
class BertScoreResult:
    """BERTScore precision, recall and F1 per (candidate, reference) pair."""

    precision: list[float]
    recall: list[float]
    f1: list[float]


def bertscore(candidates: Sequence[str], references: Sequence[str], scorer: BertScorer) -> BertScoreResult:
    """BERTScore precision/recall/F1 per (candidate, reference) pair; deterministic (eval mode, no idf).

    An empty candidate scores 0 on all three: it has no content, and bert_score 0.3.13 cannot encode an
    empty string under transformers 5 anyway (it calls a tokenizer method that no longer exists).
    """
    _check_pairs(candidates, references)
    scored_indices = [index for index, candidate in enumerate(candidates) if candidate.strip()]
    precision = [0.0] * len(candidates)
    recall = [0.0] * len(candidates)
    f1 = [0.0] * len(candidates)
    if scored_indices:
        p_tensor, r_tensor, f_tensor = scorer.backend.score(
            [candidates[index] for index in scored_indices],
            [references[index] for index in scored_indices],
            verbose=False,
            batch_size=scorer.batch_size,
        )
        for position, index in enumerate(scored_indices):
            precision[index] = float(p_tensor[position])
            recall[index] = float(r_tensor[position])
            f1[index] = float(f_tensor[position])
    return BertScoreResult(precision=precision, recall=recall, f1=f1)


def _check_pairs(candidates: Sequence[str], references: Sequence[str]) -> None:
    if isinstance(candidates, str) or isinstance(references, str):
        raise MetricInputError("Candidates and references must be sequences of texts, not single strings.")
    if len(candidates) != len(references):
        raise MetricInputError(
            f"Got {len(candidates)} candidates but {len(references)} references; "
            "they must pair up one to one."
        )
    for index, reference in enumerate(references):
        if not reference.strip():
            raise MetricInputError(f"Reference {index} is empty; every candidate needs a reference text.")


# --------------------------------------------------------------------------- embedding score


@dataclass(frozen=True)
class EmbeddingScoreResult:
    """Embedding cosine and sentence-matched precision/recall/F1 per pair."""

    cosine: list[float]  # whole-text embedding cosine similarity
    precision: list[float]  # mean over candidate sentences of the best match among reference sentences
    recall: list[float]  # mean over reference sentences of the best match among candidate sentences
    f1: list[float]


_LIST_MARKER = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
# A period after these is an abbreviation, not the end of a sentence.
_ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "dr", "mr", "mrs", "ms", "vs", "etc", "approx", "no", "fig", "st", "cf"}
)


def split_sentences(text: str) -> list[str]:
    """Split a text into sentences: lines first (lists, paragraphs), then sentence-final punctuation.

    A boundary needs whitespace and a capital or digit after it, so "2.5 mg" and "e.g. aspirin" stay
    whole; list markers are dropped and fragments without a letter are discarded.
    """
    sentences: list[str] = []
    for line in text.splitlines():
        line = _LIST_MARKER.sub("", line).strip()
        start = 0
        for boundary in _SENTENCE_END.finditer(line):
            preceding_word = (line[start : boundary.start()].split()[-1:] or [""])[0].lower()
            # "e.g. aspirin" is one sentence, and so is an inline "2. Repeat labs".
            if preceding_word.rstrip(".") in _ABBREVIATIONS or preceding_word.isdigit():
                continue
            sentences.append(line[start : boundary.end()].strip())
            start = boundary.end()
        sentences.append(line[start:].strip())
    sentences = [_LIST_MARKER.sub("", sentence).strip() for sentence in sentences]
    return [sentence for sentence in sentences if re.search(r"[A-Za-z]", sentence)]


def embedding_score(
    candidates: Sequence[str], references: Sequence[str], encoder: SentenceEncoder
) -> EmbeddingScoreResult:
    """Whole-text cosine plus greedy sentence-matching precision/recall/F1 (the seeds' USE-style score).

    All whole texts and sentences of the batch are encoded in one call. Whole texts are truncated at
    the encoder's max_seq_length (256 word pieces for MiniLM); the sentence-level scores cover the rest.
    An empty candidate scores 0; a negative best match counts as no match in F1.
    """
    _check_pairs(candidates, references)
    candidate_sentences = [split_sentences(text) for text in candidates]
    reference_sentences = [split_sentences(text) for text in references]
    unique_texts = list(
        dict.fromkeys(
            [*candidates, *references]
            + [sentence for group in candidate_sentences + reference_sentences for sentence in group]
        )
    )
    embeddings = encoder.encode(unique_texts)
    row_of = {text: row for row, text in enumerate(unique_texts)}

    cosine, precision, recall, f1 = [], [], [], []
    for candidate, reference, cand_sents, ref_sents in zip(
        candidates, references, candidate_sentences, reference_sentences, strict=True
    ):
        if not cand_sents:
            cosine.append(0.0)
            precision.append(0.0)
            recall.append(0.0)
            f1.append(0.0)
            continue
        cosine.append(float(embeddings[row_of[candidate]] @ embeddings[row_of[reference]]))
        similarity = (
            embeddings[[row_of[s] for s in cand_sents]] @ embeddings[[row_of[s] for s in ref_sents]].T
        )
        pair_precision = float(similarity.max(axis=1).mean())
        pair_recall = float(similarity.max(axis=0).mean())
        precision.append(pair_precision)
        recall.append(pair_recall)
        f1.append(_harmonic_mean(pair_precision, pair_recall))
    return EmbeddingScoreResult(cosine=cosine, precision=precision, recall=recall, f1=f1)


def _harmonic_mean(precision: float, recall: float) -> float:
    if precision <= 0.0 or recall <= 0.0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


# --------------------------------------------------------------------------- ROUGE


@dataclass(frozen=True)
class RougeResult:
    """ROUGE-1/2/L F-measures per pair."""

    rouge1: list[float]
    rouge2: list[float]
    rougeL: list[float]  # the metric's conventional name, as rouge_score spells it


def rouge(candidates: Sequence[str], references: Sequence[str]) -> RougeResult:
    """ROUGE-1/2/L F-measures per pair (rouge_score, Porter stemming, lower-cased alphanumeric tokens)."""
    _check_pairs(candidates, references)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    scores = [
        scorer.score(reference, candidate)
        for candidate, reference in zip(candidates, references, strict=True)
    ]
    return RougeResult(
        rouge1=[score["rouge1"].fmeasure for score in scores],
        rouge2=[score["rouge2"].fmeasure for score in scores],
        rougeL=[score["rougeL"].fmeasure for score in scores],
    )


# --------------------------------------------------------------------------- multiple choice


@dataclass(frozen=True)
class McqMetrics:
    """Accuracy, macro precision/recall/F1 and the unreadable share over one set of MCQ answers."""

    accuracy: float
    precision_macro: float
    recall_macro: float
    f1_macro: float
    unreadable_rate: float  # share of answers no option letter could be read from
    n: int


def mcq_metrics(predicted: Sequence[str | None], gold: Sequence[str], labels: Sequence[str]) -> McqMetrics:
    """Accuracy and macro P/R/F1 over `labels`; an unreadable (None) prediction counts as wrong.

    None becomes a sentinel label outside `labels`, so it lowers recall of the gold class without
    adding a class of its own: the numbers equal scikit-learn's precision_recall_fscore_support with
    average="macro", labels=labels, zero_division=0.
    """
    if len(predicted) != len(gold):
        raise MetricInputError(f"Got {len(predicted)} predictions but {len(gold)} gold answers.")
    if not gold:
        raise MetricInputError("MCQ metrics need at least one answered question.")
    if not labels or len(set(labels)) != len(labels) or UNREADABLE_LABEL in labels:
        raise MetricInputError(
            f"Labels must be a non-empty list of distinct option letters, got {list(labels)!r}."
        )
    unknown_gold = sorted(set(gold) - set(labels))
    if unknown_gold:
        raise MetricInputError(f"Gold answers {unknown_gold!r} are not among the labels {list(labels)!r}.")

    resolved = [UNREADABLE_LABEL if label is None else label for label in predicted]
    precisions, recalls, f1s = [], [], []
    for label in labels:
        true_positive = sum(p == label and g == label for p, g in zip(resolved, gold, strict=True))
        false_positive = sum(p == label and g != label for p, g in zip(resolved, gold, strict=True))
        false_negative = sum(p != label and g == label for p, g in zip(resolved, gold, strict=True))
        precisions.append(_safe_ratio(true_positive, true_positive + false_positive))
        recalls.append(_safe_ratio(true_positive, true_positive + false_negative))
        # scikit-learn's form of F1, which is 0 (not undefined) when precision or recall is undefined.
        f1s.append(_safe_ratio(2 * true_positive, 2 * true_positive + false_positive + false_negative))
    n = len(gold)
    return McqMetrics(
        accuracy=sum(p == g for p, g in zip(resolved, gold, strict=True)) / n,
        precision_macro=sum(precisions) / len(labels),
        recall_macro=sum(recalls) / len(labels),
        f1_macro=sum(f1s) / len(labels),
        unreadable_rate=sum(label is None for label in predicted) / n,
        n=n,
    )


def _safe_ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


# --------------------------------------------------------------------------- bootstrap

_MAX_RESAMPLE_CELLS = 4_000_000  # bounds the index matrix of one chunk of bootstrap rounds


def bootstrap_ci(
    values: Sequence[float], *, rounds: int = 1000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean of `values` (deterministic for a seed)."""
    data = np.asarray(values, dtype=np.float64)
    _check_bootstrap_args(len(data), rounds, confidence)
    if not np.all(np.isfinite(data)):
        raise MetricInputError("Bootstrap values must all be finite numbers (found NaN or infinity).")
    rng = np.random.default_rng(seed)
    rounds_per_chunk = max(1, _MAX_RESAMPLE_CELLS // len(data))
    means = np.empty(rounds, dtype=np.float64)
    for start in range(0, rounds, rounds_per_chunk):
        stop = min(rounds, start + rounds_per_chunk)
        indices = rng.integers(0, len(data), size=(stop - start, len(data)))
        means[start:stop] = data[indices].mean(axis=1)
    return percentile_interval(means, confidence)


def bootstrap_metric_ci(
    pairs: Sequence[tuple[_Prediction, _Gold]],
    metric_fn: Callable[[list[_Prediction], list[_Gold]], float],
    *,
    rounds: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of a metric that is not a mean (accuracy, macro F1...).

    Each round resamples (prediction, gold) pairs with replacement and calls
    metric_fn(predictions, golds), e.g. `lambda p, g: mcq_metrics(p, g, labels).f1_macro`.
    """
    _check_bootstrap_args(len(pairs), rounds, confidence)
    rng = np.random.default_rng(seed)
    statistics = np.empty(rounds, dtype=np.float64)
    for round_index in range(rounds):
        sample = [pairs[index] for index in rng.integers(0, len(pairs), size=len(pairs))]
        statistics[round_index] = metric_fn([p for p, _ in sample], [g for _, g in sample])
    return percentile_interval(statistics, confidence)


def _check_bootstrap_args(n: int, rounds: int, confidence: float) -> None:
    if n == 0:
        raise MetricInputError("Cannot bootstrap a confidence interval from zero values.")
    if rounds < 1:
        raise MetricInputError(f"Bootstrap needs at least one round, got {rounds}.")
    if not 0.0 < confidence < 1.0:
        raise MetricInputError(f"Confidence must lie strictly between 0 and 1, got {confidence}.")


def percentile_interval(statistics: np.ndarray, confidence: float) -> tuple[float, float]:
    """The central `confidence` interval of bootstrap statistics (percentile method)."""
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(statistics, [tail, 1.0 - tail])
    return float(low), float(high)
