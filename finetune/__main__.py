"""`python -m finetune`: LoRA-fine-tune registry models under identical conditions.

    python -m finetune --list
    python -m finetune --model smollm2-135m --preset demo
    python -m finetune --model smollm2-135m --max-steps 20 --data ../shared/data/medquad/medquad.jsonl
    python -m finetune --all --config my.yaml          # each model in its own subprocess
    python -m finetune --config configs/smollm2-135m_medquad.yaml
    python -m finetune --model smollm2-135m --sweep lora.rank=8,16 --sweep quant=4bit,16bit
    python -m finetune --resume adapters/smollm2-135m/.checkpoints/<run-id>
    python -m finetune --model biobert --task mcq --preset demo    # the encoder baseline (MCQ head)
    python -m finetune --model smollm2-135m --dpo dpo/ --max-steps 20   # DPO on arena votes (finetune/dpo.py)
    torchrun --nproc_per_node 2 -m finetune --model smollm2-135m --max-steps 20   # data parallel

Every flag `--section.field` is generated from the typed config (see finetune/config.py).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune.artifacts import OutputError
from finetune.checkpoint import CheckpointError
from finetune.config import ConfigError, FinetuneConfig, apply_overrides, build_config, cli_fields
from finetune.data import DataError
from finetune.gpu import import_unsloth_first
from finetune.loading import BaseUnavailableError, availability
from finetune.lora_targets import LoraTargetError
from finetune.mcq_encoder import EncoderUnavailableError
from finetune.registry import (
    ENCODERS,
    MODELS,
    REGISTRY,
    EncoderSpec,
    ModelSpec,
    UnknownModelError,
    get_model,
    get_trainable,
)

if TYPE_CHECKING:
    from finetune.train import TrainResult


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: model choice, presets, config file, typed overrides, sweeps."""
    parser = argparse.ArgumentParser(prog="python -m finetune", description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--model", action="append", metavar="KEY", help="registry key (repeatable)")
    which.add_argument("--all", action="store_true", help="every registry model whose base loads here")
    which.add_argument("--list", action="store_true", help="print the model registry and exit")
    parser.add_argument(
        "--data",
        help="data source: bundled, bundled-mcq, a .jsonl/.csv/.parquet path, a hub set, or NAME=FILE "
        "(a local export of hub set NAME in its own columns)",
    )
    parser.add_argument("--config", help="YAML file with lora/train/data sections")
    parser.add_argument("--preset", default="default", help="named overrides: default or demo")
    parser.add_argument("--max-steps", type=int, help="optimiser steps (same as --train.max_steps)")
    parser.add_argument("--output", help="adapter folder root (default: adapters)")
    parser.add_argument("--quant", help="base precision: 4bit (QLoRA NF4, default), 8bit or 16bit")
    parser.add_argument(
        "--task",
        help="sft (LoRA on a decoder, default) or mcq (an encoder baseline with a multiple-choice head)",
    )
    parser.add_argument(
        "--sweep",
        action="append",
        metavar="KEY=V1,V2",
        help="ablation axis (repeatable): one subprocess per cell",
    )
    parser.add_argument(
        "--sweep-dir", type=Path, help="sweep output (default: <output>/../sweeps/<model>-<time>)"
    )
    parser.add_argument(
        "--resume", type=Path, help="continue from a checkpoint (step folder or a run's checkpoints)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, help="converted-base cache (default: $MEDARENA_CACHE or ~/.cache/medarena)"
    )
    parser.add_argument(
        "--dpo",
        type=Path,
        help="train with DPO on a vote export (python -m arena.export --format dpo --out DIR)",
    )
    parser.add_argument("--dpo-beta", type=float, default=0.1, help="DPO beta (default 0.1)")
    for flag, _section, field in cli_fields():
        parser.add_argument(
            f"--{flag}",
            dest=flag,
            default=None,
            metavar=field.name.upper(),
            help=f"default {field.default!r}",
        )
    return parser.parse_args(argv)


def flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields set by flags, as {section: {field: value}}."""
    overrides: dict[str, Any] = {}
    for flag, section, field in cli_fields():
        value = getattr(args, flag)
        if value is not None:
            overrides.setdefault(section, {})[field.name] = value
    if args.max_steps is not None:
        overrides.setdefault("train", {})["max_steps"] = args.max_steps
    if args.data is not None:
        overrides.setdefault("data", {})["source"] = args.data
    if args.output is not None:
        overrides["output_dir"] = args.output
    if args.quant is not None:
        overrides["quant"] = args.quant
    if args.task is not None:
        overrides["task"] = args.task
    return overrides


def print_registry(cache_dir: Path | None) -> None:
    """Print every registry model and whether it can be trained here."""
    header = f"{'key':<22} {'model':<30} {'params':>7} {'ctx':>7}  {'here':<4} how / what is missing"
    print(header)
    print("-" * len(header))
    for spec in MODELS:
        available, how = availability(spec, cache_dir)
        print(
            f"{spec.key:<22} {spec.display_name:<30} {spec.params_b:>6g}B {spec.context_length:>7}"
            f"  {'yes' if available else 'no':<4} {how}"
        )
    for encoder in ENCODERS:
        stand_in = encoder.offline_stand_in
        how = (
            f"encoder baseline (--task mcq), never served; offline: {stand_in.name} from {stand_in.package}"
            if stand_in and stand_in.model_dir()
            else "encoder baseline (--task mcq), never served; needs its hub checkpoint"
        )
        print(
            f"{encoder.key:<22} {encoder.display_name:<30} {encoder.params_b:>6g}B {encoder.context_length:>7}"
            f"  {'yes' if stand_in and stand_in.model_dir() else 'no':<4} {how}"
        )
    print(
        f"\n{len(MODELS)} models and {len(ENCODERS)} encoder baseline; 4-bit ids, chat templates and LoRA "
        "targets: finetune/registry.py"
    )


def without_options(argv: list[str], options: tuple[str, ...], switches: tuple[str, ...] = ()) -> list[str]:
    """The command line minus the named options (each with its value) and switches."""
    kept, skip_next = [], False
    for arg in argv:
        if skip_next:
            skip_next = False
        elif arg in options:
            skip_next = True
        elif arg not in switches and not arg.startswith(tuple(f"{o}=" for o in options)):
            kept.append(arg)
    return kept


def without_model_selection(argv: list[str]) -> list[str]:
    """The command line minus --all and every --model KEY, to pass on to one-model subprocesses."""
    return without_options(argv, ("--model",), ("--all",))


def train_in_subprocesses(keys: list[str], argv: list[str]) -> int:
    """Train each model in a fresh interpreter: Unsloth patches globally and keeps VRAM in-process."""
    passthrough = without_model_selection(argv)
    failures = 0
    for key in keys:
        print(f"\n=== {key} ===", flush=True)
        code = subprocess.call([sys.executable, "-m", "finetune", "--model", key, *passthrough])
        failures += code != 0
    print(f"\n{len(keys) - failures} of {len(keys)} models trained")
    return 1 if failures else 0


def train_encoder(spec: EncoderSpec, config: FinetuneConfig) -> int:
    """The encoder baseline: a multiple-choice head, scored per epoch (finetune/mcq_encoder.py)."""
    from finetune.mcq_encoder import train_mcq

    if config.task != "mcq":
        raise ConfigError(f"{spec.key} is an encoder baseline; train it with --task mcq")
    run_dir, run = train_mcq(spec, config)
    test = run["test"]["metrics"]["mcq_accuracy"]
    print(
        f"run written: {run_dir}\n  {run['base_id']}, {run['steps_done']} steps over {len(run['epochs'])} epochs, "
        f"loss {run['initial_train_loss']:.3f} -> {run['final_train_loss']:.3f}, "
        f"test accuracy {test['value']:.3f} [{test['ci_low']:.3f}, {test['ci_high']:.3f}]"
    )
    return 0


def report(result: TrainResult) -> int:
    """One summary line per run (rank 0 only under torchrun)."""
    if result.adapter_dir is None:
        return 0
    run = result.run
    print(
        f"adapter written: {result.adapter_dir}\n"
        f"  loss {run['losses'][0]['loss']:.3f} -> {run['final_train_loss']:.3f}, validation {run['validation_loss']}, "
        f"{run['train_tokens_per_second']} tok/s, peak RSS {run['memory']['peak_rss_mb']} MB"
    )
    return 0


def resume_run(args: argparse.Namespace) -> int:
    """Continue a checkpointed run with its saved config (flags still override, e.g. more steps)."""
    import_unsloth_first()
    from finetune.checkpoint import find_checkpoint, read_meta
    from finetune.train import train_one

    checkpoint = find_checkpoint(args.resume)
    meta = read_meta(checkpoint)
    config = apply_overrides(apply_overrides(FinetuneConfig(), meta["config"]), flag_overrides(args))
    spec = get_model(meta["model_key"])
    run_id = meta["run_id"]
    if (Path(config.output_dir) / spec.key / run_id).exists():  # that run finished: keep it, add a new one
        run_id = None
    print(f"resuming {spec.key} from {checkpoint} (step {meta['step']})", flush=True)
    return report(train_one(spec, config, cache_dir=args.cache_dir, resume=checkpoint, run_id=run_id))


def sweep(args: argparse.Namespace, argv: list[str], specs: list[ModelSpec], config: FinetuneConfig) -> int:
    """Run the --sweep grid for one model."""
    from finetune.sweep import default_sweep_dir, parse_axes, run_sweep

    if len(specs) != 1:
        raise ConfigError("--sweep takes exactly one --model")
    axes = parse_axes(args.sweep)
    passthrough = without_options(argv, ("--model", "--sweep", "--sweep-dir", "--output"), ("--all",))
    folder = args.sweep_dir or default_sweep_dir(config, specs[0].key)
    return run_sweep(
        specs[0].key,
        axes,
        flag_overrides(args),
        passthrough,
        folder,
        preset=args.preset,
        yaml_file=args.config,
    )


def main(argv: list[str] | None = None) -> int:
    """python -m finetune: fine-tune the chosen models (or list them, or sweep)."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        if args.list:
            print_registry(args.cache_dir)
            return 0
        if args.resume is not None:
            return resume_run(args)
        config: FinetuneConfig = build_config(
            preset=args.preset, yaml_file=args.config, flags=flag_overrides(args)
        )
        if args.all and config.task != "sft":
            raise ConfigError(
                "--all trains the generative models (task sft); run --model biobert --task mcq alone"
            )
        if args.all:
            keys = [spec.key for spec in MODELS if availability(spec, args.cache_dir)[0]]
            skipped = [spec.key for spec in MODELS if spec.key not in keys]
            if skipped:
                print(f"skipping (base not available here): {', '.join(skipped)}")
            return train_in_subprocesses(keys, argv)
        if not args.model:
            print(
                "error: name a model with --model KEY (or --all, --list); valid keys: " + ", ".join(REGISTRY),
                file=sys.stderr,
            )
            return 2
        trainables = [get_trainable(key) for key in args.model]  # validate every key before training any
        if len(trainables) == 1 and isinstance(trainables[0], EncoderSpec) and not args.sweep:
            return train_encoder(trainables[0], config)
        if any(isinstance(spec, EncoderSpec) for spec in trainables) and len(trainables) > 1:
            raise ConfigError("train an encoder baseline on its own: --model biobert --task mcq")
        if config.task != "sft":
            raise ConfigError(
                "--task mcq trains an encoder baseline (--model biobert); generative models are scored "
                "on multiple choice by python -m arena.evaluate"
            )
        specs = [get_model(key) for key in args.model]
        if args.sweep:
            return sweep(args, argv, specs, config)
        if len(specs) > 1:
            return train_in_subprocesses([s.key for s in specs], argv)
        import_unsloth_first()  # before anything imports transformers/PEFT/TRL (Unsloth patches them)
        if args.dpo is not None:
            from finetune.dpo import DpoSettings, train_dpo

            settings = DpoSettings(beta=args.dpo_beta)
            return report(train_dpo(specs[0], config, args.dpo, cache_dir=args.cache_dir, settings=settings))
        from finetune.train import train_one

        return report(train_one(specs[0], config, cache_dir=args.cache_dir))
    except (
        UnknownModelError,
        ConfigError,
        LoraTargetError,
        DataError,
        BaseUnavailableError,
        EncoderUnavailableError,
        OutputError,
        CheckpointError,
        FloatingPointError,
        ValueError,
        ImportError,  # MEDARENA_TRAIN_BACKEND=unsloth without Unsloth installed
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; no adapter was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
