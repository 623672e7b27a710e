"""Typed fine-tuning configuration: defaults, validation, presets, YAML and CLI overrides.

One config serves every model, which is what makes runs comparable. Overrides come in one
order: defaults < `--preset` < `--config FILE.yaml` < `--section.field value` flags.

    python -m finetune --model smollm2-135m --config my.yaml --train.learning_rate 1e-4
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


class ConfigError(ValueError):
    """A config value of the wrong type or range; the message names the field."""


# Closed sets, checked where the config is built (the CLI takes strings).
Quant = Literal["4bit", "8bit", "16bit"]
QUANTS: tuple[str, ...] = typing.get_args(Quant)
LoraTarget = Literal["qv", "attention", "all"]
LORA_TARGETS: tuple[str, ...] = typing.get_args(LoraTarget)
Schedule = Literal["linear", "cosine", "constant"]
SCHEDULES: tuple[str, ...] = typing.get_args(Schedule)
# adamw: torch's AdamW; adamw_8bit: bitsandbytes' 8-bit states; paged_*: bitsandbytes' paged optimisers,
# whose states page out to CPU memory under GPU memory pressure (CUDA only; torch AdamW elsewhere).
Optimizer = Literal["adamw", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit"]
OPTIMIZERS: tuple[str, ...] = typing.get_args(Optimizer)
# Where per-step figures go besides run.json: TensorBoard event files, W&B (offline without a key), or nowhere.
ReportTo = Literal["none", "tensorboard", "wandb"]
REPORT_TO: tuple[str, ...] = typing.get_args(ReportTo)
Task = Literal["sft", "mcq"]
TASKS: tuple[str, ...] = typing.get_args(Task)
# Steps when neither train.max_steps nor train.epochs is set.
DEFAULT_MAX_STEPS = 60


@dataclass(frozen=True)
class LoraSettings:
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    # "all" = every attention and MLP projection the registry lists for the architecture;
    # "attention" = q/k/v/o; "qv" = the query and value projections of the original LoRA paper.
    target: str = "all"
    # rsLoRA scales by alpha/sqrt(rank) instead of alpha/rank, so high ranks keep learning.
    use_rslora: bool = False

    def __post_init__(self) -> None:
        _check(
            self.rank >= 1 and self.rank & (self.rank - 1) == 0,
            f"lora.rank must be a power of two (1, 2, 4, 8, 16, ...), got {self.rank}",
        )
        _check(self.alpha >= 1, "lora.alpha must be at least 1")
        _check(0.0 <= self.dropout < 1.0, "lora.dropout must be in [0, 1)")
        _check(self.target in LORA_TARGETS, f"lora.target must be one of {', '.join(LORA_TARGETS)}")


@dataclass(frozen=True)
class TrainSettings:
    learning_rate: float = 2e-4
    batch_size: int = 2
    grad_accum: int = 4
    # Exactly one of max_steps and epochs bounds a run; a layer that sets one clears the other.
    max_steps: int | None = DEFAULT_MAX_STEPS
    epochs: float | None = None
    warmup_steps: int = 5
    warmup_ratio: float | None = None  # a fraction of the total steps; replaces warmup_steps when set
    weight_decay: float = 0.0
    optimizer: str = "adamw_8bit"  # falls back to torch AdamW where bitsandbytes has no 8-bit kernel
    lr_scheduler: str = "linear"
    # None: 2048 on CUDA (what the seed notebooks use), 512 on CPU; presets may set their own.
    max_seq_length: int | None = None
    seed: int = 3407
    logging_steps: int = 1
    group_by_length: bool = True  # batches of similar length waste less compute on padding
    gradient_checkpointing: bool = False  # trades ~30% speed for memory; off where memory allows
    adapter_dtype: str = "float32"  # float16 halves the adapter file (the demo adapters are committed)
    eval_steps: int | None = None  # validation loss every N steps (always once at the end)
    early_stopping_patience: int | None = None  # stop after this many evaluations without improvement
    early_stopping_min_delta: float = 0.0  # an evaluation improves only by lowering the best loss by more
    save_steps: int | None = None  # a resumable checkpoint every N steps
    save_total_limit: int | None = None  # keep only the newest N checkpoints of a run (None: all)
    report_to: str = "none"  # tensorboard | wandb | none: per-step loss, lr, grad norm, tokens/s, memory
    # The encoder baseline (--task mcq) fine-tunes every weight, which needs a far lower rate than LoRA's.
    encoder_learning_rate: float = 5e-5

    def __post_init__(self) -> None:
        _check(0 < self.learning_rate < 1, "train.learning_rate must be in (0, 1)")
        _check(self.batch_size >= 1, "train.batch_size must be at least 1")
        _check(self.grad_accum >= 1, "train.grad_accum must be at least 1")
        _check(
            (self.max_steps is None) != (self.epochs is None),
            "set exactly one of train.max_steps and train.epochs (the other to none)",
        )
        _check(self.max_steps is None or self.max_steps >= 1, "train.max_steps must be at least 1")
        _check(self.epochs is None or self.epochs > 0, "train.epochs must be positive")
        _check(self.warmup_steps >= 0, "train.warmup_steps must not be negative")
        _check(
            self.warmup_ratio is None or 0 <= self.warmup_ratio < 1, "train.warmup_ratio must be in [0, 1)"
        )
        for name in ("eval_steps", "early_stopping_patience", "save_steps", "save_total_limit"):
            value = getattr(self, name)
            _check(value is None or value >= 1, f"train.{name} must be at least 1 (or none)")
        _check(self.early_stopping_min_delta >= 0, "train.early_stopping_min_delta must not be negative")
        _check(
            self.early_stopping_patience is None or self.eval_steps is not None,
            "train.early_stopping_patience needs train.eval_steps",
        )
        _check(self.weight_decay >= 0, "train.weight_decay must not be negative")
        _check(self.optimizer in OPTIMIZERS, f"train.optimizer must be one of {', '.join(OPTIMIZERS)}")
        _check(
            self.save_total_limit is None or self.save_steps is not None,
            "train.save_total_limit needs train.save_steps",
        )
        _check(self.report_to in REPORT_TO, f"train.report_to must be one of {', '.join(REPORT_TO)}")
        _check(0 < self.encoder_learning_rate < 1, "train.encoder_learning_rate must be in (0, 1)")
        _check(self.lr_scheduler in SCHEDULES, f"train.lr_scheduler must be one of {', '.join(SCHEDULES)}")
        _check(
            self.max_seq_length is None or 64 <= self.max_seq_length <= 32768,
            "train.max_seq_length must be in [64, 32768] (or none: 2048 on CUDA, 512 on CPU)",
        )
        _check(self.logging_steps >= 1, "train.logging_steps must be at least 1")
        _check(
            self.adapter_dtype in {"float32", "float16"}, "train.adapter_dtype must be 'float32' or 'float16'"
        )

    def seq_length(self, on_cuda: bool) -> int:
        """The sequence length a run uses: the configured one, else the device's default."""
        if self.max_seq_length is not None:
            return self.max_seq_length
        return DEFAULT_SEQ_LENGTH["cuda" if on_cuda else "cpu"]

    def total_steps(self, micro_batches_per_epoch: int, world_size: int = 1) -> int:
        """Optimiser steps of the run: max_steps, or epochs over the data across all processes."""
        if self.max_steps is not None:
            return self.max_steps
        per_step = self.grad_accum * world_size
        return max(1, math.ceil(self.epochs * micro_batches_per_epoch / per_step))

    def warmup(self, total_steps: int) -> int:
        """Warm-up steps: warmup_ratio of the total when set, else warmup_steps."""
        if self.warmup_ratio is not None:
            return round(self.warmup_ratio * total_steps)
        return self.warmup_steps


DEFAULT_SEQ_LENGTH = {"cuda": 2048, "cpu": 512}


@dataclass(frozen=True)
class DataSettings:
    source: str = "bundled"
    # Several sources mixed by weight into one set: "path1:0.7,path2:0.3" (or a YAML list of
    # {source, weight}); replaces `source` when set. Seeded by split_seed, so every model sees the same set.
    mix: str | None = None
    limit: int | None = None  # a seeded random sample of this many cleaned records (split_seed)
    split_seed: int = 42
    # Cleaning length filters, in characters (counted in the cleaning report when they drop a record).
    min_question_chars: int = 10
    max_question_chars: int = 4000
    min_answer_chars: int = 1  # one letter is a whole multiple-choice answer
    max_answer_chars: int = 4000

    def __post_init__(self) -> None:
        _check(bool(self.source.strip()), "data.source must not be empty")
        _check(self.limit is None or self.limit >= 3, "data.limit must be at least 3 (train/validation/test)")
        _check(
            0 <= self.min_question_chars <= self.max_question_chars,
            "data.min_question_chars must be in [0, data.max_question_chars]",
        )
        _check(
            0 <= self.min_answer_chars <= self.max_answer_chars,
            "data.min_answer_chars must be in [0, data.max_answer_chars]",
        )


@dataclass(frozen=True)
class PromptSettings:
    # Reasoning models (Qwen3, DeepSeek-R1-Distill) think before answering only when this is on;
    # it applies to every model alike, so runs stay comparable.
    thinking: bool = False


@dataclass(frozen=True)
class FinetuneConfig:
    lora: LoraSettings = field(default_factory=LoraSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    data: DataSettings = field(default_factory=DataSettings)
    prompt: PromptSettings = field(default_factory=PromptSettings)
    # 4bit: QLoRA on an NF4 base; 8bit: LoRA on a bitsandbytes int8 base; 16bit: LoRA on an
    # unquantised base (bfloat16 on CUDA; float32 on CPU, where bf16 matmuls are slow).
    quant: str = "4bit"
    output_dir: str = "adapters"
    # sft: LoRA on a decoder, answer tokens as targets; mcq: an encoder with a multiple-choice head
    # (the BioBERT baseline, finetune/mcq_encoder.py).
    task: str = "sft"

    def __post_init__(self) -> None:
        _check(self.quant in QUANTS, f"quant must be one of {', '.join(QUANTS)}, got {self.quant!r}")
        _check(self.task in TASKS, f"task must be one of {', '.join(TASKS)}, got {self.task!r}")

    def to_dict(self) -> dict[str, Any]:
        """The whole config as nested dicts (written to run.json)."""
        return dataclasses.asdict(self)


# A preset is a named set of overrides, applied identically to every model.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "default": {},
    # Small, useful adapters for the embedded bases on 2 CPU cores in a few minutes.
    "demo": {
        "train": {
            "learning_rate": 1e-3,
            "max_steps": 40,
            "warmup_steps": 3,
            "max_seq_length": 256,
            "adapter_dtype": "float16",
        },
        "lora": {"rank": 8, "alpha": 16},
    },
}


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _coerce(value: Any, annotation: Any, name: str) -> Any:
    """Convert a YAML/CLI value to the field's declared type, or fail naming the field."""
    hint = annotation
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = True, args[0]
    if value is None or (optional and isinstance(value, str) and value.lower() in {"none", "null"}):
        if optional:
            return None
        raise ConfigError(f"{name} must not be empty")
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in {"true", "1", "yes"}:
                return True
            if str(value).lower() in {"false", "0", "no"}:
                return False
            raise ValueError
        if hint is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        if hint in (int, float) and isinstance(value, bool):
            raise ValueError
        return hint(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be of type {hint.__name__}, got {value!r}") from None


def _merge_section(current: Any, overrides: dict[str, Any], section: str) -> Any:
    hints = typing.get_type_hints(type(current))
    known = {f.name for f in dataclasses.fields(current)}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown {section} setting(s) {sorted(unknown)}; valid: {sorted(known)}")
    overrides = dict(overrides)
    if section == "data" and isinstance(overrides.get("mix"), list):
        overrides["mix"] = mix_string(overrides["mix"])
    values = {name: _coerce(value, hints[name], f"{section}.{name}") for name, value in overrides.items()}
    if section == "train":
        # max_steps and epochs are alternatives: a later layer setting one clears the other.
        for chosen, other in (("epochs", "max_steps"), ("max_steps", "epochs")):
            if values.get(chosen) is not None and other not in values:
                values[other] = None
    return dataclasses.replace(current, **values)


def mix_string(entries: list[Any]) -> str:
    """A YAML mix list ([{source: a.jsonl, weight: 0.7}, ...]) as the flag form "a.jsonl:0.7,..."."""
    parts = []
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != {"source", "weight"}:
            raise ConfigError("each data.mix entry must be a mapping with exactly 'source' and 'weight'")
        parts.append(f"{entry['source']}:{entry['weight']}")
    return ",".join(parts)


def apply_overrides(config: FinetuneConfig, overrides: dict[str, Any]) -> FinetuneConfig:
    """Apply nested overrides such as {"train": {"max_steps": 5}, "output_dir": "x"}."""
    if not isinstance(overrides, dict):
        raise ConfigError("a config file must hold a mapping of sections to settings")
    sections = {f.name for f in dataclasses.fields(config)}
    unknown = set(overrides) - sections
    if unknown:
        raise ConfigError(f"unknown config section(s) {sorted(unknown)}; valid: {sorted(sections)}")
    updates: dict[str, Any] = {}
    for name, value in overrides.items():
        current = getattr(config, name)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"config section {name} must be a mapping")
            updates[name] = _merge_section(current, value, name)
        else:
            updates[name] = _coerce(value, typing.get_type_hints(FinetuneConfig)[name], name)
    return dataclasses.replace(config, **updates)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A config YAML as nested dicts, or ConfigError naming the file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML ({error.__class__.__name__})") from None
    return loaded or {}


def build_config(
    *, preset: str = "default", yaml_file: str | Path | None = None, flags: dict[str, Any] | None = None
) -> FinetuneConfig:
    """Defaults, then the preset, then the YAML, then flag overrides: one validated config."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
    config = apply_overrides(FinetuneConfig(), PRESETS[preset])
    if yaml_file is not None:
        config = apply_overrides(config, load_yaml(yaml_file))
    return apply_overrides(config, flags or {})


def cli_fields() -> list[tuple[str, str, Any]]:
    """(flag name, section, field) for every setting, so the CLI is generated from the types."""
    out: list[tuple[str, str, Any]] = []
    defaults = FinetuneConfig()
    for section in dataclasses.fields(defaults):
        value = getattr(defaults, section.name)
        if dataclasses.is_dataclass(value):
            out.extend((f"{section.name}.{f.name}", section.name, f) for f in dataclasses.fields(value))
    return out
