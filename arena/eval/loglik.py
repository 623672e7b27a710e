"""The evaluation's log-likelihood MCQ scoring and its paired base → adapter deltas.

`python -m arena.evaluate --mcq-scoring loglik|both` scores a multiple-choice set here: every option of
every question is read off the contestant's resident model (its adapter active, or every adapter
off for a plain base) through `arena.eval.mcq_loglik`, on the engine's compute thread under the base's
lock, so nothing is generated. Metrics: `mcq_ll_accuracy`, `mcq_ll_acc_norm` and macro P/R/F1 of
the raw argmax, each with a 95% bootstrap interval. For an adapter, the plain base is scored on the
same questions too and `paired_delta.<metric>` rows carry adapter − base with a paired interval.

Run as:
    python -m arena.evaluate --model smollm2-135m --adapter latest --data medqa.jsonl --mcq-scoring loglik
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from arena.eval.mcq_loglik import ItemScores, labels_of, predictions, score_items
from arena.eval.paired import paired_delta, paired_metric_delta
from arena.eval.results import PAIRED_PREFIX
from arena.eval.scoring import MetricValue, mcq_prediction_metrics
from finetune.data import MCQRecord
from finetune.scores import BOOTSTRAP_ROUNDS, BOOTSTRAP_SEED, MetricInputError, bootstrap_ci, mcq_metrics

if TYPE_CHECKING:
    from arena.serving.peft_engine import ArenaEngine, Contestant

LOGLIK_SCORING = "option log-likelihood (lm-eval acc)"


def _score_on_resident(
    resident: Any, adapter_name: str | None, records: Sequence[MCQRecord], batch_size: int
) -> list[ItemScores]:
    """Runs on the engine's compute thread, holding the base's lock like generation does."""
    with resident.lock:
        model = resident.model
        if resident.has_adapters and adapter_name is None:
            switch = model.disable_adapter()  # the plain base: every LoRA off
        else:
            if adapter_name is not None and resident.active_adapter != adapter_name:
                resident.switch_adapter(adapter_name)
            switch = nullcontext()
        with switch:
            return score_items(model, resident.loaded.tokenizer, records, batch_size=batch_size)


def score_contestant(
    engine: ArenaEngine,
    contestant: Contestant,
    records: Sequence[MCQRecord],
    *,
    batch_size: int,
    as_base: bool = False,
) -> list[ItemScores]:
    """Option log-likelihoods of `records` for a contestant (or, with `as_base`, for its plain base)."""
    resident = engine.base_for(contestant.name)
    adapter = None if as_base or contestant.adapter_run is None else contestant.adapter_name
    return engine.compute(_score_on_resident, resident, adapter, list(records), batch_size)


def loglik_metrics(scores: Sequence[ItemScores], *, rounds: int = BOOTSTRAP_ROUNDS) -> list[MetricValue]:
    """Accuracy (raw and length-normalised) and macro P/R/F1 of the log-likelihood argmax, with 95% CIs."""
    gold = [item.gold for item in scores]
    raw, norm = predictions(scores), predictions(scores, normalised=True)
    accuracy, *macro = mcq_prediction_metrics(
        raw, gold, labels_of(scores), prefix="mcq_ll", scoring_model=LOGLIK_SCORING, rounds=rounds
    )
    correct_norm = [float(p == g) for p, g in zip(norm, gold, strict=True)]
    acc_norm = MetricValue(
        "mcq_ll_acc_norm",
        sum(correct_norm) / len(scores),
        *bootstrap_ci(correct_norm, rounds=rounds, seed=BOOTSTRAP_SEED),
        len(scores),
        LOGLIK_SCORING,
    )
    return [accuracy, acc_norm, *macro]


def paired_loglik_deltas(
    base: Sequence[ItemScores], adapter: Sequence[ItemScores], *, rounds: int = BOOTSTRAP_ROUNDS
) -> list[MetricValue]:
    """adapter − base on the same questions: accuracy (both forms) and macro F1, paired intervals."""
    if [item.id for item in base] != [item.id for item in adapter]:
        raise MetricInputError("paired deltas need the base and the adapter scored on the same questions")
    gold = [item.gold for item in base]
    labels = labels_of(base)
    values = []
    for metric, normalised in (("mcq_ll_accuracy", False), ("mcq_ll_acc_norm", True)):
        b = [float(p == g) for p, g in zip(predictions(base, normalised=normalised), gold, strict=True)]
        a = [float(p == g) for p, g in zip(predictions(adapter, normalised=normalised), gold, strict=True)]
        delta = paired_delta(b, a, rounds=rounds, seed=BOOTSTRAP_SEED)
        values.append(
            MetricValue(
                PAIRED_PREFIX + metric, delta.delta, delta.ci_low, delta.ci_high, delta.n, LOGLIK_SCORING
            )
        )
    f1 = paired_metric_delta(
        predictions(base), predictions(adapter), gold, lambda p, g: mcq_metrics(p, g, labels).f1_macro,
        rounds=rounds, seed=BOOTSTRAP_SEED,
    )  # fmt: skip
    values.append(
        MetricValue(PAIRED_PREFIX + "mcq_ll_f1_macro", f1.delta, f1.ci_low, f1.ci_high, f1.n, LOGLIK_SCORING)
    )
    return values
