"""Surface-overlap metrics for free-text answers: BLEU, exact match and SQuAD-style token F1 (pure).

BLEU is sacrebleu's (13a tokenisation, exponential smoothing), sentence-level per answer so it can
be averaged and bootstrapped like the other per-answer scores, and corpus-level for the headline
figure the MT literature reports. Exact match and token F1 follow the SQuAD v1.1 evaluation script:
lower-case, strip punctuation and the articles a/an/the, split on whitespace; F1 is the harmonic
mean of token precision and recall over the bag of tokens. All scores are in [0, 1] (BLEU divided
by 100).

Run as (a library; `python -m arena.evaluate` reports these for free-text sets):
    python -c "from arena.eval.text_overlap import token_f1; print(token_f1('Take aspirin daily', 'aspirin daily'))"
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


class OverlapInputError(ValueError):
    """Candidates and references that cannot be paired."""


@dataclass(frozen=True)
class OverlapResult:
    """Per-answer scores (same order as the inputs) and the corpus BLEU."""

    bleu: list[float]  # sentence BLEU per answer, 0..1
    exact_match: list[float]  # 1.0 or 0.0 per answer
    token_f1: list[float]
    corpus_bleu: float  # 0..1


def normalise_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(candidate: str, reference: str) -> float:
    """1.0 when the normalised answers are equal (SQuAD's normalisation), else 0.0."""
    return float(normalise_answer(candidate) == normalise_answer(reference))


def token_f1(candidate: str, reference: str) -> float:
    """SQuAD token F1; two empty answers agree (1.0), one empty answer scores 0."""
    predicted = normalise_answer(candidate).split()
    gold = normalise_answer(reference).split()
    if not predicted or not gold:
        return float(predicted == gold)
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision = common / len(predicted)
    recall = common / len(gold)
    return 2 * precision * recall / (precision + recall)


def sentence_bleu(candidate: str, reference: str) -> float:
    """sacreBLEU of one answer against its reference, on a 0-1 scale."""
    import sacrebleu

    return float(sacrebleu.sentence_bleu(candidate, [reference]).score) / 100.0


def corpus_bleu(candidates: Sequence[str], references: Sequence[str]) -> float:
    """sacreBLEU over all answers against their references, on a 0-1 scale."""
    import sacrebleu

    _check(candidates, references)
    return float(sacrebleu.corpus_bleu(list(candidates), [list(references)]).score) / 100.0


def overlap(candidates: Sequence[str], references: Sequence[str]) -> OverlapResult:
    """BLEU, exact match and token F1 over answer/reference pairs, with 95% intervals."""
    _check(candidates, references)
    pairs = list(zip(candidates, references, strict=True))
    return OverlapResult(
        bleu=[sentence_bleu(c, r) for c, r in pairs],
        exact_match=[exact_match(c, r) for c, r in pairs],
        token_f1=[token_f1(c, r) for c, r in pairs],
        corpus_bleu=corpus_bleu(candidates, references),
    )


def _check(candidates: Sequence[str], references: Sequence[str]) -> None:
    if len(candidates) != len(references):
        raise OverlapInputError(f"Got {len(candidates)} answers but {len(references)} references.")
    if not candidates:
        raise OverlapInputError("Overlap metrics need at least one answer.")
