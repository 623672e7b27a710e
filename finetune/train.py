"""The LoRA fine-tuning recipe: config → data → base → train → save, the same for every model.

Reads like a recipe on purpose (torchtune style). The speed comes from three choices, each
measured by `bench/finetune_throughput.py`: batches grouped by length (little padding), no
gradient checkpointing where memory allows, and the vocabulary projection computed only at
answer positions (the loss is on answer tokens only, so the other logits are wasted work).

    python -m finetune --model smollm2-135m --preset demo
"""

from __future__ import annotations

import json
import math
import os
import random
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from finetune.config import FinetuneConfig
from finetune.data import (
    CleaningRules,
    LoadedData,
    Record,
    Split,
    load_dataset_source,
    split_records,
    target_text,
)
from finetune.gpu import TrainBackend, cuda_available
from finetune.loading import LoadedBase, load_base
from finetune.lora_targets import resolve_targets
from finetune.prompt import THINK_OPEN, render_prompt
from finetune.registry import END_OF_TURN, LoraRole, ModelSpec

IGNORE_INDEX = -100


class OutputError(RuntimeError):
    """The output folder cannot be written; nothing was left behind."""


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX over the prompt: the loss is on answer tokens only

    @property
    def answer_tokens(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)


@dataclass
class TrainResult:
    adapter_dir: Path
    run: dict[str, Any]
    losses: list[dict[str, float]] = field(default_factory=list)


# --- data -> token ids ---------------------------------------------------------------------------


@dataclass
class Tokenized:
    examples: list[Example]
    too_long: int = 0  # records whose prompt alone leaves no room for an answer: dropped, counted


# An example keeps its whole prompt; the answer end is cut, but at least this many answer tokens
# must fit, or the record is dropped (and counted) rather than trained with a truncated question.
MIN_ANSWER_TOKENS = 16


def end_of_turn_text(tokenizer: Any, spec: ModelSpec) -> str:
    """The family's end-of-turn token where the tokenizer knows it (Phi-3 `<|end|>`), else eos."""
    marker = END_OF_TURN[spec.chat_template]
    marker_id = tokenizer.convert_tokens_to_ids(marker)
    if isinstance(marker_id, int) and marker_id != tokenizer.unk_token_id:
        return marker
    return tokenizer.eos_token or ""


def tokenize(
    records: list[Record],
    tokenizer: Any,
    max_seq_length: int,
    desc: str = "tokenize",
    *,
    end_of_turn: str | None = None,
    thinking: bool = False,
) -> Tokenized:
    """Prompt + answer + end-of-turn token ids, labels on the answer only.

    The whole prompt is always kept (a question cut from the left trains an answer to nothing);
    an answer too long for `max_seq_length` loses its end.
    """
    from tqdm import tqdm

    end = (tokenizer.eos_token or "") if end_of_turn is None else end_of_turn
    out = Tokenized(examples=[])
    for record in tqdm(records, desc=desc, unit="ex", leave=False):
        options = getattr(record, "options", None)
        prompt = render_prompt(tokenizer, record.question, options, thinking=thinking)
        target = target_text(record, thinking=thinking)
        if prompt.endswith(f"{THINK_OPEN}\n") and target.startswith(f"{THINK_OPEN}\n"):
            target = target[len(THINK_OPEN) + 1 :]  # the template already opened the think block
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(target + end, add_special_tokens=False)["input_ids"]
        room = max_seq_length - len(prompt_ids)
        if room < min(MIN_ANSWER_TOKENS, len(answer_ids)):
            out.too_long += 1
            continue
        answer_ids = answer_ids[:room]
        out.examples.append(Example(prompt_ids + answer_ids, [IGNORE_INDEX] * len(prompt_ids) + answer_ids))
    return out


def batch_order(
    examples: list[Example], batch_size: int, seed: int, group_by_length: bool
) -> list[list[int]]:
    """Micro-batches of example indices for one epoch.

    With grouping, examples are shuffled, cut into chunks of 16 batches, sorted by length inside
    each chunk, and the resulting batches shuffled again: padding shrinks while the order stays random.
    """
    rng = random.Random(seed)
    indices = list(range(len(examples)))
    rng.shuffle(indices)
    if group_by_length:
        chunk = batch_size * 16
        indices = [
            i
            for start in range(0, len(indices), chunk)
            for i in sorted(indices[start : start + chunk], key=lambda j: len(examples[j].input_ids))
        ]
    batches = [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(examples: list[Example], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        attention[row, :n] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention}


def micro_batches(
    examples: list[Example], batch_size: int, seed: int, group: bool
) -> Iterator[list[Example]]:
    """Endless stream of micro-batches, a fresh seeded order each epoch."""
    epoch = 0
    while True:
        for batch in batch_order(examples, batch_size, seed + epoch, group):
            yield [examples[i] for i in batch]
        epoch += 1


# --- model ---------------------------------------------------------------------------------------


def lora_roles(spec: ModelSpec, target: str) -> tuple[LoraRole, ...]:
    """config.lora.target "all" = the registry's roles (every attention and MLP projection)."""
    return ("attention",) if target == "attention" else spec.lora_roles


def attach_lora(base: LoadedBase, config: FinetuneConfig) -> tuple[Any, list[str]]:
    """LoRA on the projections resolved from the loaded model's own module names; returns them too."""
    lora = config.lora
    modules = resolve_targets(base.model, lora_roles(base.spec, lora.target), base.spec.key)
    if base.backend.startswith("unsloth"):
        from unsloth import FastLanguageModel

        return FastLanguageModel.get_peft_model(
            base.model,
            r=lora.rank,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=modules,
            bias="none",
            use_gradient_checkpointing="unsloth" if config.train.gradient_checkpointing else False,
            random_state=config.train.seed,
        ), modules
    from peft import LoraConfig, get_peft_model

    if config.train.gradient_checkpointing:
        base.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        base.model.enable_input_require_grads()
    peft_config = LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=modules,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(base.model, peft_config), modules


def answer_only_loss(model: Any, batch: dict[str, Any]) -> tuple[Any, int]:
    """Mean cross-entropy over answer tokens, projecting only those positions onto the vocabulary."""
    import torch.nn.functional as F

    causal_lm = model.get_base_model()
    hidden = causal_lm.get_decoder()(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
    ).last_hidden_state
    # Position t predicts token t+1.
    shifted_labels = batch["labels"][:, 1:]
    keep = shifted_labels != IGNORE_INDEX
    logits = causal_lm.get_output_embeddings()(hidden[:, :-1][keep]).float()
    softcap = getattr(causal_lm.config, "final_logit_softcapping", None)
    if softcap:  # Gemma-2 style logit capping is part of the model, so the loss must see it
        logits = softcap * (logits / softcap).tanh()
    return F.cross_entropy(logits, shifted_labels[keep]), int(keep.sum())


def make_optimizer(model: Any, config: FinetuneConfig) -> tuple[Any, str]:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    settings = config.train
    if settings.optimizer == "adamw_8bit":
        try:
            import bitsandbytes as bnb

            return bnb.optim.AdamW8bit(
                params, lr=settings.learning_rate, weight_decay=settings.weight_decay
            ), "adamw_8bit"
        except (ImportError, RuntimeError):
            pass  # recorded in run.json as the optimizer actually used
    return torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay), "adamw"


def lr_lambda(settings: Any) -> Any:
    def factor(step: int) -> float:
        if step < settings.warmup_steps:
            return (step + 1) / (settings.warmup_steps + 1)
        if settings.lr_scheduler == "constant":
            return 1.0
        remaining = settings.max_steps - step
        return max(0.0, remaining / max(1, settings.max_steps - settings.warmup_steps))

    return factor


def evaluate_loss(model: Any, examples: list[Example], batch_size: int, pad_id: int) -> float | None:
    import torch

    if not examples:
        return None
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            loss, n = answer_only_loss(model, collate(examples[start : start + batch_size], pad_id))
            total += loss.item() * n
            tokens += n
    model.train()
    return total / max(1, tokens)


# --- telemetry and provenance --------------------------------------------------------------------


def peak_memory(device: str) -> dict[str, float | None]:
    """Peak process RSS always; on CUDA also peak torch-allocated VRAM and NVML's device reading."""
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    out: dict[str, float | None] = {
        "peak_rss_mb": round(rss_mb, 1),
        "peak_vram_mb": None,
        "nvml_used_mb": None,
    }
    if device == "cuda":
        import torch

        out["peak_vram_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
            out["nvml_used_mb"] = round(pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20, 1)
        except Exception:  # NVML is optional telemetry; torch's figure stands alone
            pass
    return out


def shrink_adapter(path: Path) -> None:
    """Store LoRA weights as float16: half the file, and PEFT casts them back on load."""
    import torch
    from safetensors.torch import load_file, save_file

    tensors = {name: tensor.to(torch.float16) for name, tensor in load_file(path).items()}
    save_file(tensors, path, metadata={"format": "pt"})


def open_permissions(folder: Path) -> None:
    """Give the finished run folder the modes a plain mkdir/open would have had.

    mkdtemp makes the staging folder 0700 and safetensors writes 0600; an adapter folder is meant
    to be shared (committed, served by the arena under another user), so honour the umask instead.
    """
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        path.chmod(0o666 & ~umask)


def git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def new_run_id(model_key: str, output_dir: Path) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run_id, n = stamp, 1
    while (output_dir / model_key / run_id).exists():  # never overwrite an earlier run
        n += 1
        run_id = f"{stamp}-{n}"
    return run_id


def missing_folders(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist yet, deepest first."""
    return [path for path in (folder, *folder.parents) if not path.exists()]


def remove_if_empty(folders: list[Path]) -> None:
    """Remove folders this run created (deepest first), unless something else has filled them."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (or already gone): its parents stay too


def check_writable(output_dir: Path) -> None:
    """Fail early when output_dir cannot be created and written; leave no folder behind either way."""
    created = missing_folders(output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output_dir, prefix=".write-test-"):
            pass
    except OSError as error:
        raise OutputError(f"output folder {output_dir} is not writable ({error.strerror})") from None
    finally:
        # The folders are made again at save time: a run that fails before then leaves no trace.
        remove_if_empty(created)


def model_card(spec: ModelSpec, run: dict[str, Any]) -> str:
    """A short Hugging Face model card for the adapter, in place of PEFT's empty template."""
    config, data = run["config"], run["data"]
    lora, train = config["lora"], config["train"]
    validation = run["validation_loss"]
    return "\n".join(
        [
            "---",
            f"base_model: {run['base_id']}",
            "library_name: peft",
            "tags: [medarena, lora, medical-qa]",
            "---",
            f"# {spec.display_name} · LoRA run {run['run_id']}",
            "",
            "A MedArena LoRA adapter, trained for research and education only: not for medical advice.",
            "",
            f"- Base: `{run['base_id']}` ({run['quantization']}, {run['backend']}); licence: {spec.license}",
            f"- Data: `{data['source']}` (sha256 {data['content_hash'][:12]}…), "
            f"{data['split_sizes']['train']} training records, split seed {data['split_seed']}",
            f"- LoRA: rank {lora['rank']}, alpha {lora['alpha']}, dropout {lora['dropout']}, "
            f"modules {', '.join(run['lora_target_modules'])}",
            f"- Training: {train['max_steps']} steps, lr {train['learning_rate']}, "
            f"batch {train['batch_size']} × accumulation {train['grad_accum']}, {run['optimizer_used']}",
            f"- Final train loss {run['final_train_loss']}, validation loss "
            f"{validation if validation is not None else 'n/a'}",
            "",
            "Full provenance is in `run.json` beside this card; the loss curve is `loss.png`.",
            "",
        ]
    )


def plot_losses(
    losses: list[dict[str, float]], validation_loss: float | None, path: Path, title: str
) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.5), tight_layout=True)
    axes = figure.add_subplot()
    axes.plot([p["step"] for p in losses], [p["loss"] for p in losses], label="train loss (answer tokens)")
    if validation_loss is not None and losses:
        axes.axhline(
            validation_loss,
            color="tab:orange",
            linestyle="--",
            label=f"final validation {validation_loss:.3f}",
        )
    axes.set_xlabel("optimiser step")
    axes.set_ylabel("cross-entropy")
    axes.set_title(title, fontsize=10)
    axes.legend()
    figure.savefig(path, dpi=110)


# --- the recipe ------------------------------------------------------------------------------------


def prepare_data(config: FinetuneConfig) -> tuple[LoadedData, Split]:
    settings = config.data
    rules = CleaningRules(
        min_question_chars=settings.min_question_chars,
        max_question_chars=settings.max_question_chars,
        min_answer_chars=settings.min_answer_chars,
        max_answer_chars=settings.max_answer_chars,
    )
    data = load_dataset_source(settings.source, limit=settings.limit, rules=rules, seed=settings.split_seed)
    return data, split_records(data.records, seed=settings.split_seed)


def train_one(
    spec: ModelSpec,
    config: FinetuneConfig,
    *,
    cache_dir: Path | None = None,
    backend: TrainBackend | None = None,
) -> TrainResult:
    """Fine-tune one model and write adapters/<model>/<run-id>/ atomically."""
    import torch
    from tqdm import tqdm

    started_at = datetime.now(UTC)
    output_root = Path(config.output_dir)
    check_writable(output_root / spec.key)

    # 1. data (fails fast, before any weights load)
    data, split = prepare_data(config)

    # 2. base + LoRA
    torch.manual_seed(config.train.seed)
    random.seed(config.train.seed)
    seq_length = config.train.seq_length(cuda_available())
    base = load_base(spec, cache_dir=cache_dir, max_seq_length=seq_length, purpose="train", backend=backend)
    tokenizer = base.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    end = end_of_turn_text(tokenizer, spec)
    thinking = config.prompt.thinking
    tokenized_train = tokenize(
        split.train, tokenizer, seq_length, "tokenize train", end_of_turn=end, thinking=thinking
    )
    tokenized_validation = tokenize(
        split.validation, tokenizer, seq_length, "tokenize validation", end_of_turn=end, thinking=thinking
    )
    train_examples, validation_examples = tokenized_train.examples, tokenized_validation.examples
    if not train_examples:
        raise ValueError("no training example fits train.max_seq_length; raise it or use shorter data")
    model, lora_modules = attach_lora(base, config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    optimizer, optimizer_used = make_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config.train))
    device = base.model.device

    # 3. train
    settings = config.train
    stream = micro_batches(train_examples, settings.batch_size, settings.seed, settings.group_by_length)
    losses: list[dict[str, float]] = []
    useful_tokens = 0
    model.train()
    if base.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    train_start = time.perf_counter()
    progress = tqdm(range(1, settings.max_steps + 1), desc=f"train {spec.key}", unit="step")
    for step in progress:
        step_loss, step_tokens = 0.0, 0
        for _ in range(settings.grad_accum):
            batch = {k: v.to(device) for k, v in collate(next(stream), pad_id).items()}
            loss, n_answer = answer_only_loss(model, batch)
            # Weight each micro-batch by its answer tokens, so the step's loss is a token mean.
            (loss * n_answer).backward()
            step_loss += loss.item() * n_answer
            step_tokens += n_answer
            useful_tokens += int(batch["attention_mask"].sum())
        for p in model.parameters():
            if p.grad is not None:
                p.grad /= max(1, step_tokens)
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        mean_loss = step_loss / max(1, step_tokens)
        if not math.isfinite(mean_loss):
            raise FloatingPointError(
                f"training diverged at step {step} (loss {mean_loss}); lower train.learning_rate"
            )
        if step % settings.logging_steps == 0 or step == settings.max_steps:
            losses.append({"step": step, "loss": round(mean_loss, 5), "lr": scheduler.get_last_lr()[0]})
            progress.set_postfix(loss=f"{mean_loss:.3f}")
    train_seconds = time.perf_counter() - train_start
    validation_loss = evaluate_loss(model, validation_examples, settings.batch_size * 2, pad_id)

    # 4. save into a hidden temporary folder, renamed into place only when complete
    run_id = new_run_id(spec.key, output_root)
    model_dir = output_root / spec.key
    final_dir = model_dir / run_id
    created = missing_folders(model_dir)
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{run_id}-", dir=model_dir))
    except OSError as error:
        remove_if_empty(created)
        raise OutputError(f"output folder {model_dir} is not writable ({error.strerror})") from None
    try:
        model.save_pretrained(staging)
        if config.train.adapter_dtype == "float16":
            shrink_adapter(staging / "adapter_model.safetensors")
        run = {
            "run_id": run_id,
            "model_key": spec.key,
            "display_name": spec.display_name,
            "base_id": spec.bnb_4bit_id if base.device == "cuda" else spec.hf_id,
            "backend": base.backend,
            "quantization": base.quantization,
            "config": config.to_dict(),
            "optimizer_used": optimizer_used,
            "lora_target_modules": lora_modules,  # resolved against the loaded model's module names
            "max_seq_length": seq_length,
            "end_of_turn": end,
            "data": {
                "source": data.source,
                "kind": data.kind,
                "content_hash": data.content_hash,
                "cleaning": {
                    "read": data.report.read,
                    "kept": data.report.kept,
                    "dropped": data.report.dropped,
                    # prompts too long to leave room for an answer at this max_seq_length
                    "too_long_for_max_seq_length": tokenized_train.too_long + tokenized_validation.too_long,
                },
                "split_sizes": split.sizes(),
                "split_seed": config.data.split_seed,
                "train_examples": len(train_examples),
            },
            "git_commit": git_commit(),
            "started_at": started_at.isoformat(),
            "ended_at": datetime.now(UTC).isoformat(),
            "train_seconds": round(train_seconds, 2),
            "train_tokens": useful_tokens,
            "train_tokens_per_second": round(useful_tokens / train_seconds, 1),
            "trainable_parameters": trainable,
            "total_parameters": total,
            "memory": peak_memory(base.device),
            "losses": losses,
            "final_train_loss": losses[-1]["loss"] if losses else None,
            "validation_loss": round(validation_loss, 5) if validation_loss is not None else None,
            "torch": torch.__version__,
            "host": os.uname().nodename,
        }
        (staging / "run.json").write_text(json.dumps(run, indent=2))
        (staging / "README.md").write_text(model_card(spec, run))
        plot_losses(
            losses, validation_loss, staging / "loss.png", f"{spec.display_name} · LoRA r={config.lora.rank}"
        )
        open_permissions(staging)
        staging.rename(final_dir)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        remove_if_empty(created)
        if isinstance(error, OSError):  # a full disk or a folder removed under us: one line, no trace
            raise OutputError(f"could not write the adapter to {final_dir} ({error})") from None
        raise
    return TrainResult(adapter_dir=final_dir, run=run, losses=losses)
