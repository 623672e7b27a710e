"""Per-set extras of an evaluation run: log-likelihood MCQ metrics and paired base → adapter deltas.

Called by `arena.eval.runner.run_evaluation` for each (contestant, data set):
- `--mcq-scoring loglik|both` on a multiple-choice set adds `mcq_ll_*` rows (arena/eval/loglik.py);
- for an adapter contestant, `paired_delta.<metric>` rows: adapter − plain base on the same questions
  with a paired bootstrap interval (arena/eval/paired.py). The base side comes from the answer cache
  (`python -m arena.evaluate --model KEY --adapter none` with the same settings fills it) for free-text
  metrics and letter-read MCQ metrics, and is scored on the spot (adapters off) for log-likelihood
  MCQ metrics. Where the base's answers are not all cached, a note says how to get the deltas.

Run as:
    python -m arena.evaluate --model smollm2-135m --adapter none --data medquad.jsonl --limit 32
    python -m arena.evaluate --model smollm2-135m --adapter latest --data medquad.jsonl --limit 32
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from arena.eval.loglik import loglik_metrics, paired_loglik_deltas, score_contestant
from arena.eval.scoring import (
    MetricValue,
    Scorers,
    free_text_values,
    paired_free_text_deltas,
    paired_letter_deltas,
)
from arena.store.battles import eval_cache_key
from finetune.data import MCQRecord, QARecord, reference_text
from finetune.prompt import final_answer, user_text

if TYPE_CHECKING:
    from arena.eval.data import EvalSet
    from arena.serving.common import GenerationSettings
    from arena.serving.peft_engine import ArenaEngine, Contestant
    from arena.store.battles import ArenaStore

McqScoring = Literal["letter", "loglik", "both"]
MCQ_SCORINGS: tuple[McqScoring, ...] = ("letter", "loglik", "both")


def generates_answers(eval_set: EvalSet, mcq_scoring: McqScoring) -> bool:
    """Whether a set needs generated answers (free text always; MCQ unless scored by log-likelihood only)."""
    return eval_set.kind == "free_text" or mcq_scoring != "loglik"


def plain_base(contestant: Contestant) -> Contestant:
    """The contestant's base without its adapter (its name keys the base's cached answers)."""
    return replace(contestant, adapter_run=None, adapter_path=None)


def cached_base_answers(
    store: ArenaStore,
    template_id: str,
    settings: GenerationSettings,
    contestant: Contestant,
    eval_set: EvalSet,
) -> list[str] | None:
    """The plain base's cached answers (same served weights) to every record with the same prompt and
    settings, else None."""
    base_id = plain_base(contestant).served_as
    answers = []
    for record in eval_set.records:
        key = eval_cache_key(
            base_id, template_id, settings.to_dict(), user_text(record.question, record.options)
        )
        hit = store.cache_get(key)
        if hit is None:
            return None
        answers.append(hit["answer"])
    return answers


def extra_metrics(
    *,
    engine: ArenaEngine,
    contestant: Contestant,
    eval_set: EvalSet,
    answers: Sequence[str] | None,
    base_answers: Sequence[str] | None,
    scorers: Scorers | None,
    mcq_scoring: McqScoring,
    batch_size: int,
    notify: Callable[[str], None],
) -> list[MetricValue]:
    """Log-likelihood metrics and paired deltas for one contestant on one set (see the module docstring)."""
    values: list[MetricValue] = []
    is_adapter = contestant.adapter_run is not None
    if eval_set.kind == "free_text":
        if not is_adapter or answers is None:
            return values
        if base_answers is None:
            notify(_missing_base_note(contestant, eval_set))
            return values
        assert scorers is not None  # loaded by the runner for every free-text set
        references = [reference_text(r) for r in eval_set.records if isinstance(r, QARecord)]
        base = free_text_values([final_answer(a) for a in base_answers], references, scorers)
        adapter = free_text_values([final_answer(a) for a in answers], references, scorers)
        return paired_free_text_deltas(base, adapter)
    records = [r for r in eval_set.records if isinstance(r, MCQRecord)]
    if mcq_scoring in ("loglik", "both"):
        scores = score_contestant(engine, contestant, records, batch_size=batch_size)
        values += loglik_metrics(scores)
        if is_adapter:
            base_scores = score_contestant(engine, contestant, records, batch_size=batch_size, as_base=True)
            values += paired_loglik_deltas(base_scores, scores)
    if mcq_scoring in ("letter", "both") and is_adapter and answers is not None:
        if base_answers is None:
            notify(_missing_base_note(contestant, eval_set))
        else:
            finals = [final_answer(a) for a in answers]
            values += paired_letter_deltas([final_answer(a) for a in base_answers], finals, records)
    return values


def _missing_base_note(contestant: Contestant, eval_set: EvalSet) -> str:
    return (
        f"no paired deltas for {contestant.name} on {eval_set.label}: the plain base's answers to these "
        f"questions are not all cached; run `python -m arena.evaluate --model {contestant.model_key} "
        f"--adapter none` on the same data, split, --limit and settings first"
    )
