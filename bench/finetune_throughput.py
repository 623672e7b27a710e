"""Training throughput and peak memory: `python -m finetune` against the seeds' recipe.

Both sides train LoRA adapters on the same 4-bit smollm2-135m base (`finetune.loading.load_base`),
with the same LoRA config, tokenized examples (labels masked on the prompt), batch size x gradient
accumulation, optimiser, learning-rate schedule and number of optimiser steps:

- ours: `python -m finetune --model smollm2-135m ...` (length-grouped batches, no gradient
  checkpointing, vocabulary projection at answer positions only);
- seeds' recipe: transformers `Trainer` + PEFT after `peft.prepare_model_for_kbit_training` with its
  defaults (gradient checkpointing on), `DataCollatorForSeq2Seq` padding to the longest sequence of
  each batch, random batches (no length grouping), full-vocabulary logits.

Each side runs in its own subprocess, back to back, so peak RSS (from `os.wait4`) is per side.
Useful tokens are the non-padding tokens of every micro-batch trained on, counted the same way on
both sides; tokens/s is over the training loop only (model load and tokenization excluded).

    python bench/finetune_throughput.py                      # bundled free-text data, 12 steps
    python bench/finetune_throughput.py --steps 20 --data ../shared/data/medquad/medquad.jsonl

Prints both tokens/s, both peak RSS and the ratios; writes bench/results/finetune_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: `finetune` lives in the repo root
    sys.path.insert(0, str(ROOT))

from finetune.config import FinetuneConfig, build_config  # noqa: E402

MODEL_KEY = "smollm2-135m"
RESULTS_FILE = ROOT / "bench" / "results" / "finetune_throughput.json"


@dataclass(frozen=True)
class SideResult:
    name: str
    useful_tokens: int
    train_seconds: float
    peak_rss_mb: float
    first_loss: float
    last_loss: float

    @property
    def tokens_per_second(self) -> float:
        return self.useful_tokens / self.train_seconds

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"tokens_per_second": round(self.tokens_per_second, 1)}


def workload_flags(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The config overrides both sides share (the rest are finetune/config.py defaults)."""
    flags: dict[str, dict[str, Any]] = {
        "train": {"max_steps": args.steps, "max_seq_length": args.max_seq_length},
        "data": {"source": args.data},
    }
    if args.limit is not None:
        flags["data"]["limit"] = args.limit
    return flags


def cli_flags(flags: dict[str, dict[str, Any]]) -> list[str]:
    return [
        f"--{section}.{name}={value}" for section, values in flags.items() for name, value in values.items()
    ]


def run_measured(command: list[str]) -> float:
    """Run a command to completion; return its own peak RSS in MB (not the parent's, not a sibling's)."""
    process = subprocess.Popen(command, cwd=ROOT)
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"benchmark side failed (exit {process.returncode}): {' '.join(command)}")
    return usage.ru_maxrss / 1024  # Linux reports KiB


def run_ours(flags: dict[str, dict[str, Any]], work: Path) -> SideResult:
    output = work / "ours"
    command = [sys.executable, "-m", "finetune", "--model", MODEL_KEY, "--output", str(output)]
    peak_rss_mb = run_measured([*command, *cli_flags(flags)])
    (run_json,) = (output / MODEL_KEY).glob("*/run.json")
    run = json.loads(run_json.read_text())
    return SideResult(
        name="ours (python -m finetune)",
        useful_tokens=run["train_tokens"],
        train_seconds=run["train_seconds"],
        peak_rss_mb=round(peak_rss_mb, 1),
        first_loss=run["losses"][0]["loss"],
        last_loss=run["losses"][-1]["loss"],
    )


def run_seeds_recipe(flags: dict[str, dict[str, Any]], work: Path) -> SideResult:
    result_file = work / "seeds_recipe.json"
    command = [sys.executable, __file__, "--side", "seeds-recipe", "--result-file", str(result_file)]
    peak_rss_mb = run_measured([*command, *cli_flags(flags)])
    figures = json.loads(result_file.read_text())
    return SideResult(name="seeds' recipe (Trainer + PEFT)", peak_rss_mb=round(peak_rss_mb, 1), **figures)


def seeds_recipe_figures(config: FinetuneConfig, work: Path) -> dict[str, Any]:
    """Train the seeds' way in this process; return useful tokens, seconds and first/last loss."""
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    from finetune.batching import end_of_turn_text, prepare_data, tokenize
    from finetune.gpu import cuda_available
    from finetune.loading import load_base
    from finetune.steps import attach_lora

    settings = config.train
    seq_length = settings.seq_length(cuda_available())
    torch.manual_seed(settings.seed)
    _data, split, _mix = prepare_data(config)
    base = load_base(MODEL_KEY, max_seq_length=seq_length)
    end = end_of_turn_text(base.tokenizer, base.spec)
    examples = tokenize(split.train, base.tokenizer, seq_length, end_of_turn=end).examples
    dataset = [
        {"input_ids": e.input_ids, "labels": e.labels, "attention_mask": [1] * len(e.input_ids)}
        for e in examples
    ]
    base.model = prepare_model_for_kbit_training(base.model)  # defaults: gradient checkpointing on
    model, _modules = attach_lora(base, config)  # the same LoraConfig as ours (config has checkpointing off)

    class Clock(TrainerCallback):
        started = finished = 0.0

        def on_train_begin(self, *args: Any, **kwargs: Any) -> None:
            Clock.started = time.perf_counter()

        def on_train_end(self, *args: Any, **kwargs: Any) -> None:
            Clock.finished = time.perf_counter()

    class CountingTrainer(Trainer):
        """Counts the non-padding tokens of every micro-batch it actually trains on."""

        useful_tokens = 0

        def training_step(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            CountingTrainer.useful_tokens += int(inputs["attention_mask"].sum())
            return super().training_step(model, inputs, *args, **kwargs)

    arguments = TrainingArguments(
        output_dir=str(work / "trainer"),
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        max_steps=settings.max_steps,
        learning_rate=settings.learning_rate,
        warmup_steps=settings.warmup_steps,
        weight_decay=settings.weight_decay,
        lr_scheduler_type=settings.lr_scheduler,
        optim="adamw_bnb_8bit" if settings.optimizer == "adamw_8bit" else "adamw_torch",
        max_grad_norm=1.0,
        logging_steps=1,
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        use_cpu=base.device == "cpu",
        seed=settings.seed,
        train_sampling_strategy="random",  # the seeds: random batches, no length grouping
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
    trainer = CountingTrainer(
        model=model,
        args=arguments,
        train_dataset=dataset,
        data_collator=DataCollatorForSeq2Seq(base.tokenizer, padding="longest", label_pad_token_id=-100),
        callbacks=[Clock()],
    )
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {
        "useful_tokens": CountingTrainer.useful_tokens,
        "train_seconds": round(Clock.finished - Clock.started, 2),
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--steps", type=int, default=12, help="optimiser steps per side (default 12)")
    parser.add_argument("--data", default="bundled", help="data source (default: bundled free text)")
    parser.add_argument("--limit", type=int, help="keep only the first N records")
    parser.add_argument("--max-seq-length", type=int, default=512, help="train.max_seq_length (default 512)")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE, help="where to write the JSON figures")
    # Internal: the seeds'-recipe child process.
    parser.add_argument("--side", choices=["seeds-recipe"], help=argparse.SUPPRESS)
    parser.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    args, extra = parser.parse_known_args(argv)
    args.extra = extra
    return args


def child_config(extra: list[str]) -> FinetuneConfig:
    """Rebuild the shared config from the `--section.field=value` flags the parent passed down."""
    flags: dict[str, dict[str, Any]] = {}
    for item in extra:
        key, _, value = item.removeprefix("--").partition("=")
        section, _, name = key.partition(".")
        flags.setdefault(section, {})[name] = value
    return build_config(flags=flags)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.side == "seeds-recipe":
        with tempfile.TemporaryDirectory(prefix="seeds-recipe-") as tmp:
            figures = seeds_recipe_figures(child_config(args.extra), Path(tmp))
        args.result_file.write_text(json.dumps(figures))
        return 0

    flags = workload_flags(args)
    config = build_config(flags=flags)
    with tempfile.TemporaryDirectory(prefix="finetune-bench-") as tmp:
        ours = run_ours(flags, Path(tmp))
        seeds = run_seeds_recipe(flags, Path(tmp))
    speedup = ours.tokens_per_second / seeds.tokens_per_second
    memory_ratio = ours.peak_rss_mb / seeds.peak_rss_mb
    settings = config.train
    report = {
        "model": MODEL_KEY,
        "workload": {
            "data": args.data,
            "limit": args.limit,
            "steps": settings.max_steps,
            "batch_size": settings.batch_size,
            "grad_accum": settings.grad_accum,
            "max_seq_length": settings.max_seq_length,
            "lora_rank": config.lora.rank,
            "optimizer": settings.optimizer,
        },
        "ours": ours.as_dict(),
        "seeds_recipe": seeds.as_dict(),
        "tokens_per_second_ratio": round(speedup, 2),
        "peak_rss_ratio": round(memory_ratio, 2),
        "host": {
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "python": platform.python_version(),
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print()
    for side in (ours, seeds):
        print(
            f"{side.name:<34} {side.tokens_per_second:8.1f} useful tok/s  "
            f"({side.useful_tokens} tokens in {side.train_seconds:.1f} s)  peak RSS {side.peak_rss_mb:7.0f} MB  "
            f"loss {side.first_loss:.3f} -> {side.last_loss:.3f}"
        )
    print(f"ours / seeds' recipe: {speedup:.2f}x tokens/s, {memory_ratio:.2f}x peak RSS")
    print(f"written: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
