"""DPO on the arena's votes: a LoRA adapter trained with trl's `DPOTrainer` on the preference pairs of
`python -m arena.export --format dpo`, on the same base-loading path as supervised training
(`finetune.loading.load_base`, `finetune.steps.attach_lora`) and with the same prompt the arena
serves (`finetune.prompt.render_prompt`). The reference policy is the base with the adapter
disabled (trl's default for a PEFT model). The adapter lands in adapters/<model>/<run-id>/ like any
other run, so the arena serves it as its own contestant; its run.json names the votes snapshot.

    python -m arena.export --format dpo --out dpo/
    python -m finetune --model smollm2-135m --dpo dpo/ --max-steps 20

Run as: python -m pytest tests/test_dpo.py -q
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from finetune.artifacts import check_writable, host_facts, new_run_id, peak_memory, save_run
from finetune.batching import end_of_turn_text
from finetune.config import FinetuneConfig
from finetune.data import DataError
from finetune.dpo_pairs import SnapshotMismatch, read_pairs
from finetune.loading import load_base
from finetune.prompt import render_prompt
from finetune.registry import ModelSpec
from finetune.steps import attach_lora
from finetune.train import TrainResult


@dataclass(frozen=True)
class DpoSettings:
    """DPO's own knobs; the rest (LoRA, steps, learning rate, batch, seed, quant) is the FinetuneConfig."""

    beta: float = 0.1
    max_length: int = 512

    def __post_init__(self) -> None:
        if self.beta <= 0:
            raise ValueError(f"DPO beta must be positive, got {self.beta}.")
        if self.max_length < 16:
            raise ValueError(f"DPO max_length must be at least 16 tokens, got {self.max_length}.")


class TorchLogProbs:
    """What trl's fused LM head computes per token (log-probability of the label, entropy, log of the
    summed squared probabilities, mean logit, whether the label is the top-1 token), in plain torch.

    trl 1.15's DPOTrainer always computes these with its Triton kernel (`trl.kernels.chunked_logprob`),
    and Triton has no CPU driver ("0 active drivers"), so on CPU the trainer is given this instead:
    same arguments, same transforms (scale, soft-cap, temperature), autograd for the backward. It
    materialises the logits of the scored tokens, which the small CPU models here afford.
    """

    @staticmethod
    def apply(
        hidden: Any,
        weight: Any,
        bias: Any,
        targets: Any,
        temperature: float,
        chunk_size: int,
        final_logit_softcapping: float | None = None,
        logit_scale: float = 1.0,
        outputs: tuple[str, ...] = ("entropy", "log_sum_sq_probs", "mean_logits", "is_top1"),
    ) -> tuple[Any, Any, Any, Any, Any]:
        import torch

        logits = hidden.float() @ weight.float().t()
        if bias is not None:
            logits = logits + bias.float()
        logits = logits * logit_scale
        if final_logit_softcapping is not None:
            logits = final_logit_softcapping * torch.tanh(logits / final_logit_softcapping)
        logits = logits / temperature
        log_softmax = torch.log_softmax(logits, dim=-1)
        log_probs = log_softmax.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        probabilities = log_softmax.exp()
        entropy = -(probabilities * log_softmax).sum(-1) if "entropy" in outputs else None
        with torch.no_grad():
            log_sum_sq = torch.logsumexp(2 * log_softmax, dim=-1) if "log_sum_sq_probs" in outputs else None
            mean_logits = logits.mean(-1) if "mean_logits" in outputs else None
            is_top1 = logits.argmax(-1) == targets if "is_top1" in outputs else None
        return log_probs, entropy, log_sum_sq, mean_logits, is_top1


@contextmanager
def torch_log_probs_off_cuda(device: str) -> Iterator[None]:
    """Give trl's fused LM head `TorchLogProbs` while training off CUDA; put its kernel back after."""
    from trl.trainer import utils

    if device == "cuda":
        yield
        return
    kernel = utils._ChunkedLogProbFunction
    utils._ChunkedLogProbFunction = TorchLogProbs
    try:
        yield
    finally:
        utils._ChunkedLogProbFunction = kernel


def preference_dataset(pairs: list[dict[str, Any]], tokenizer: Any, end_of_turn: str) -> Any:
    """trl's standard preference format: the arena's rendered prompt, each answer closed by end-of-turn."""
    from datasets import Dataset

    return Dataset.from_list(
        [
            {
                "prompt": render_prompt(tokenizer, pair["prompt"]),
                "chosen": pair["chosen"].strip() + end_of_turn,
                "rejected": pair["rejected"].strip() + end_of_turn,
            }
            for pair in pairs
        ]
    )


def train_dpo(
    spec: ModelSpec,
    config: FinetuneConfig,
    export_dir: Path,
    *,
    cache_dir: Path | None = None,
    settings: DpoSettings = DpoSettings(),
    run_id: str | None = None,
) -> TrainResult:
    """Train a DPO LoRA adapter on an export folder and write adapters/<model>/<run-id>/."""
    import torch

    try:
        from trl import DPOConfig, DPOTrainer
    except ImportError:
        raise ImportError("DPO training needs trl: pip install '.[dpo]' (or bash setup.sh --test)") from None

    started_at = datetime.now(UTC)
    output_root = Path(config.output_dir)
    check_writable(output_root / spec.key)
    try:
        pairs, snapshot = read_pairs(Path(export_dir))
    except SnapshotMismatch as error:
        raise DataError(str(error)) from None
    if not pairs:
        raise DataError(
            f"{export_dir} holds no preference pairs (see its snapshot.json for what was left out)."
        )
    torch.manual_seed(config.train.seed)
    random.seed(config.train.seed)
    base = load_base(spec, cache_dir=cache_dir, max_seq_length=settings.max_length, quant=config.quant)
    tokenizer, end = base.tokenizer, end_of_turn_text(base.tokenizer, spec)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model, lora_modules = attach_lora(base, config)
    train = config.train
    with tempfile.TemporaryDirectory(prefix="medarena-dpo-") as scratch:
        arguments = DPOConfig(
            output_dir=scratch,
            beta=settings.beta,
            max_length=settings.max_length,
            max_steps=train.max_steps if train.max_steps and train.max_steps > 0 else -1,
            num_train_epochs=float(train.epochs or 1),
            warmup_steps=train.warmup_steps,
            lr_scheduler_type=train.lr_scheduler,
            per_device_train_batch_size=train.batch_size,
            gradient_accumulation_steps=train.grad_accum,
            learning_rate=train.learning_rate,
            seed=train.seed,
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            use_cpu=base.device == "cpu",
            bf16=False,
            fp16=False,
            disable_tqdm=True,
            dataset_num_proc=None,
        )
        trainer = DPOTrainer(
            model=model,
            args=arguments,
            train_dataset=preference_dataset(pairs, tokenizer, end),
            processing_class=tokenizer,
        )
        with torch_log_probs_off_cuda(base.device):
            output = trainer.train()
        history = trainer.state.log_history
    losses = [
        {"step": entry["step"], "loss": round(float(entry["loss"]), 5)}
        for entry in history
        if "loss" in entry
    ]
    margins = [entry.get("rewards/margins") for entry in history if "rewards/margins" in entry]
    run_id = run_id or new_run_id(spec.key, output_root)
    run = {
        "run_id": run_id,
        "model_key": spec.key,
        "display_name": spec.display_name,
        "training": "dpo",
        "base_id": spec.bnb_4bit_id if base.device == "cuda" and config.quant == "4bit" else spec.hf_id,
        "backend": base.backend,
        "quantization": base.quantization,
        "quant": config.quant,
        "config": config.to_dict(),
        "optimizer_used": "adamw_torch (trl DPOTrainer)",
        "lora_target_modules": lora_modules,
        "max_seq_length": settings.max_length,
        "end_of_turn": end,
        "dpo": {"beta": settings.beta, "pairs": len(pairs), "reward_margins": margins},
        "votes_snapshot": snapshot,  # which votes this adapter learned from
        "data": {
            "source": f"arena votes ({snapshot['votes_db']})",
            "kind": "preference",
            "content_hash": snapshot["pairs_sha256"],
            "mix": None,
            "cleaning": {"read": snapshot["votes"], "kept": len(pairs), "dropped": snapshot["excluded"]},
            "split_sizes": {"train": len(pairs), "validation": 0, "test": 0},
            "split_seed": config.data.split_seed,
            "train_examples": len(pairs),
        },
        "started_at": started_at.isoformat(),
        "steps_done": trainer.state.global_step,
        "train_seconds": round(output.metrics.get("train_runtime", 0.0), 2),
        "train_tokens_per_second": None,  # trl reports samples, not answer tokens
        "losses": losses,
        "final_train_loss": losses[-1]["loss"] if losses else None,
        "validation_loss": None,
        "validation_history": [],
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "total_parameters": sum(p.numel() for p in model.parameters()),
        "memory": peak_memory(base.device),
        **host_facts(),
    }
    return TrainResult(adapter_dir=save_run(model, spec, run, output_root, train.adapter_dtype), run=run)
