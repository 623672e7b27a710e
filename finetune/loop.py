"""The optimisation loop: token-weighted accumulation, LR schedule, periodic validation with early
stopping, resumable checkpoints, and data-parallel gradient sums (finetune/distributed.py).

    python -m finetune --model smollm2-135m --train.eval_steps 10 --train.early_stopping_patience 2
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune.batching import Example, collate, micro_batches
from finetune.checkpoint import LoopState, prune_checkpoints, save_checkpoint
from finetune.config import TrainSettings
from finetune.distributed import DistContext, sum_gradients, sum_values
from finetune.steps import answer_only_loss, evaluate_loss
from finetune.tracking import ExperimentLog, NoLog, peak_memory_mb, step_values


@dataclass(frozen=True)
class LoopPlan:
    """What the loop runs over; built by the recipe."""

    settings: TrainSettings
    total_steps: int
    pad_id: int
    device: Any
    dist: DistContext
    checkpoint_dir: Path | None  # None: no checkpoints
    checkpoint_meta: dict[str, Any]
    experiment_log: ExperimentLog = field(default_factory=NoLog)  # --train.report_to (rank 0 only)


@dataclass
class LoopOutcome:
    state: LoopState
    validation_loss: float | None
    stopped_early: bool


def _step(model: Any, batches: list[list[Example]], plan: LoopPlan) -> tuple[float, int, int]:
    """One optimiser step's forward/backward over this process's micro-batches; returns (loss sum, answer tokens, tokens)."""
    step_loss, step_tokens, padded = 0.0, 0, 0
    for examples in batches:
        batch = {k: v.to(plan.device) for k, v in collate(examples, plan.pad_id).items()}
        loss, n_answer = answer_only_loss(model, batch)
        # Weight each micro-batch by its answer tokens, so the step's loss is a token mean.
        (loss * n_answer).backward()
        step_loss += loss.item() * n_answer
        step_tokens += n_answer
        padded += int(batch["attention_mask"].sum())
    return step_loss, step_tokens, padded


def run_loop(
    model: Any,
    optimizer: Any,
    scheduler: Any,
    train: list[Example],
    validation: list[Example],
    plan: LoopPlan,
    state: LoopState,
    desc: str,
) -> LoopOutcome:
    """Train from `state.step` to `plan.total_steps` (or an early stop); returns the final state."""
    import torch
    from tqdm import tqdm

    settings, dist, log = plan.settings, plan.dist, plan.experiment_log
    device_type = getattr(plan.device, "type", str(plan.device))
    params = [p for p in model.parameters() if p.requires_grad]
    stream = micro_batches(train, settings.batch_size, settings.seed, settings.group_by_length)
    per_step = settings.grad_accum * dist.world_size
    for _ in range(state.step * per_step):  # a resumed run continues the same batch sequence
        next(stream)
    model.train()
    validation_loss, stopped_early = None, False
    started = time.perf_counter() - state.train_seconds
    steps = range(state.step + 1, plan.total_steps + 1)
    progress = tqdm(steps, desc=desc, unit="step", disable=not dist.is_main)
    for step in progress:
        step_started = time.perf_counter()
        # Every process walks the same stream and keeps every world_size-th micro-batch.
        mine = [
            batch
            for k, batch in enumerate(next(stream) for _ in range(per_step))
            if k % dist.world_size == dist.rank
        ]
        local_loss, local_tokens, padded = _step(model, mine, plan)
        sum_gradients(params, dist)
        step_loss, step_tokens = sum_values([local_loss, float(local_tokens)], dist)
        for p in params:
            if p.grad is not None:
                p.grad /= max(1.0, step_tokens)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, 1.0))  # the norm before clipping
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state.step, state.useful_tokens = step, state.useful_tokens + padded
        mean_loss = step_loss / max(1.0, step_tokens)
        if not math.isfinite(mean_loss):
            raise FloatingPointError(
                f"training diverged at step {step} (loss {mean_loss}); lower train.learning_rate"
            )
        if step % settings.logging_steps == 0 or step == plan.total_steps:
            learning_rate = scheduler.get_last_lr()[0]
            state.losses.append({"step": step, "loss": round(mean_loss, 5), "lr": learning_rate})
            progress.set_postfix(loss=f"{mean_loss:.3f}")
            if dist.is_main:
                seconds = time.perf_counter() - step_started
                memory = peak_memory_mb(device_type)
                log.log(step, step_values(mean_loss, learning_rate, grad_norm, padded, seconds, memory))
        if settings.eval_steps and step % settings.eval_steps == 0:
            validation_loss = evaluate_loss(model, validation, settings.batch_size * 2, plan.pad_id)
            stopped_early = _record_evaluation(state, step, validation_loss, settings)
            if dist.is_main and validation_loss is not None:
                log.log(step, {"validation/loss": validation_loss})
        else:
            validation_loss = None
        state.train_seconds = time.perf_counter() - started
        if (
            plan.checkpoint_dir is not None
            and settings.save_steps
            and step % settings.save_steps == 0
            and dist.is_main
        ):
            save_checkpoint(plan.checkpoint_dir, model, optimizer, scheduler, state, plan.checkpoint_meta)
            if settings.save_total_limit is not None:
                prune_checkpoints(plan.checkpoint_dir, settings.save_total_limit)
        if stopped_early:
            break
    state.train_seconds = time.perf_counter() - started
    if validation_loss is None:  # the last step was not an evaluation step
        validation_loss = evaluate_loss(model, validation, settings.batch_size * 2, plan.pad_id)
        if dist.is_main and validation_loss is not None:
            log.log(state.step, {"validation/loss": validation_loss})
    return LoopOutcome(state=state, validation_loss=validation_loss, stopped_early=stopped_early)


def _record_evaluation(state: LoopState, step: int, loss: float | None, settings: TrainSettings) -> bool:
    """Log a validation loss; True when early stopping's patience has run out."""
    if loss is None:
        return False
    state.validation_history.append({"step": step, "loss": round(loss, 5)})
    best = state.best_validation_loss
    if best is None or loss < best - settings.early_stopping_min_delta:
        state.best_validation_loss = round(loss, 5)
        state.evaluations_without_improvement = 0
    else:
        state.evaluations_without_improvement += 1
    patience = settings.early_stopping_patience
    return patience is not None and state.evaluations_without_improvement >= patience
