"""The LoRA fine-tuning recipe: config → data → base → LoRA → train → save, the same for every model.

Reads like a recipe on purpose (torchtune style); the parts live beside it: finetune/batching.py
(tokens and batches), finetune/steps.py (LoRA, loss, optimiser, schedule), finetune/loop.py (the
loop, evaluation, early stopping, checkpoints), finetune/distributed.py (data parallel) and
finetune/artifacts.py (run folder, run.json, model card, plot). The speed comes from three
choices, each measured by `bench/finetune_throughput.py`: batches grouped by length, no gradient
checkpointing where memory allows, and the vocabulary projection computed only at answer positions.

    python -m finetune --model smollm2-135m --preset demo
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from finetune.artifacts import (  # noqa: F401  (git_commit: arena.evaluate imports it from here)
    OutputError,
    check_writable,
    data_record,
    git_commit,
    host_facts,
    new_run_id,
    outcome_record,
    peak_memory,
    save_run,
)
from finetune.batching import end_of_turn_text, prepare_data, tokenize
from finetune.checkpoint import LoopState, checkpoint_root, restore
from finetune.config import FinetuneConfig
from finetune.distributed import broadcast_parameters, gather_values, init_distributed, shutdown
from finetune.gpu import TrainBackend, cuda_available
from finetune.loading import base_provenance, load_base
from finetune.loop import LoopPlan, run_loop
from finetune.registry import ModelSpec
from finetune.steps import attach_lora, lr_lambda, make_optimizer
from finetune.tracking import check_writer_installed, log_folder, open_log


@dataclass
class TrainResult:
    adapter_dir: Path | None  # None on ranks other than 0, which write nothing
    run: dict[str, Any]


def train_one(
    spec: ModelSpec,
    config: FinetuneConfig,
    *,
    cache_dir: Path | None = None,
    backend: TrainBackend | None = None,
    resume: Path | None = None,
    run_id: str | None = None,
) -> TrainResult:
    """Fine-tune one model and write adapters/<model>/<run-id>/ atomically (rank 0 only)."""
    import torch

    started_at, dist = datetime.now(UTC), init_distributed()
    output_root = Path(config.output_dir)
    if dist.is_main:
        check_writable(output_root / spec.key)
    # 1. data and the experiment-log writer (fail fast, before any weights load)
    check_writer_installed(config.train.report_to if dist.is_main else "none")
    data, split, mix = prepare_data(config)
    # 2. base + LoRA
    torch.manual_seed(config.train.seed)
    random.seed(config.train.seed)
    settings, seq_length = config.train, config.train.seq_length(cuda_available())
    base = load_base(
        spec, cache_dir=cache_dir, max_seq_length=seq_length, backend=backend, quant=config.quant
    )
    tokenizer, end, thinking = base.tokenizer, end_of_turn_text(base.tokenizer, spec), config.prompt.thinking
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train = tokenize(split.train, tokenizer, seq_length, "tokenize train", end_of_turn=end, thinking=thinking)
    val = tokenize(
        split.validation, tokenizer, seq_length, "tokenize validation", end_of_turn=end, thinking=thinking
    )
    if not train.examples:
        raise ValueError("no training example fits train.max_seq_length; raise it or use shorter data")
    model, lora_modules = attach_lora(base, config)
    broadcast_parameters([p for p in model.parameters() if p.requires_grad], dist)
    optimizer, optimizer_used = make_optimizer(model, config)
    total_steps = settings.total_steps(-(-len(train.examples) // settings.batch_size), dist.world_size)
    warmup = settings.warmup(total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(total_steps, warmup, settings.lr_scheduler)
    )
    state = restore(resume, model, optimizer, scheduler) if resume else LoopState()
    run_id = run_id or new_run_id(spec.key, output_root)
    log_dir = log_folder(output_root, spec.key, run_id)
    report_to = settings.report_to if dist.is_main else "none"
    experiment_log = open_log(report_to, log_dir, f"{spec.key}/{run_id}", config.to_dict())
    # 3. train
    plan = LoopPlan(
        settings,
        total_steps,
        pad_id,
        base.model.device,
        dist,
        checkpoint_dir=checkpoint_root(output_root, spec.key, run_id) if settings.save_steps else None,
        checkpoint_meta={"model_key": spec.key, "run_id": run_id, "config": config.to_dict()},
        experiment_log=experiment_log,
    )
    if base.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    try:
        outcome = run_loop(
            model, optimizer, scheduler, train.examples, val.examples, plan, state, f"train {spec.key}"
        )
    finally:
        experiment_log.close()
    tokens_per_rank = gather_values(outcome.state.useful_tokens, dist)
    shutdown(dist)
    # 4. provenance, then the adapter folder (rank 0 only)
    run = {
        "run_id": run_id,
        "model_key": spec.key,
        "display_name": spec.display_name,
        **base_provenance(base),
        "backend": base.backend,
        "quantization": base.quantization,
        "quant": config.quant,
        "config": config.to_dict(),
        "optimizer_used": optimizer_used,
        "experiment_log": {"report_to": report_to, "dir": str(log_dir) if report_to != "none" else None},
        "lora_target_modules": lora_modules,
        "max_seq_length": seq_length,
        "end_of_turn": end,
        "data": data_record(data, split, mix, config.data.split_seed, train, val),
        "started_at": started_at.isoformat(),
        **outcome_record(outcome, total_steps, warmup, resume, dist, tokens_per_rank),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "total_parameters": sum(p.numel() for p in model.parameters()),
        "memory": peak_memory(base.device),
        **host_facts(),
    }
    if not dist.is_main:
        return TrainResult(adapter_dir=None, run=run)
    return TrainResult(adapter_dir=save_run(model, spec, run, output_root, settings.adapter_dtype), run=run)
