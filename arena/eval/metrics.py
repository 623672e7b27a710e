"""Pure automatic metrics that sit beside the clinicians' votes: BERTScore, embedding score, ROUGE.

Every function here is pure: a function of its texts and of a scoring model the caller passes in.
Loading a scoring model (environment, cache, hub probe) lives in `arena.eval.scoring_models`; reading the
option letter out of a multiple-choice answer in `arena.eval.mcq_letters`; scoring those letters and the
bootstrap intervals in `finetune.scores` (shared with the encoder baseline's training).

    from arena.eval import metrics, scoring_models

    model = scoring_models.resolve_scoring_model()
    scorer = scoring_models.load_bert_scorer(model)
    encoder = scoring_models.load_sentence_encoder(model)
    metrics.bertscore(answers, references, scorer).f1
    metrics.embedding_score(answers, references, encoder).cosine
    metrics.rouge(answers, references).rougeL

    low, high = scores.bootstrap_ci(metrics.bertscore(answers, references, scorer).f1)  # finetune.scores

Run as: python -m pytest tests/test_metrics.py -q
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rouge_score import rouge_scorer

from finetune.scores import MetricInputError

if TYPE_CHECKING:
    from arena.eval.scoring_models import BertScorer, SentenceEncoder


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
