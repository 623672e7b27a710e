"""A run's artifacts: the output checks, the adapter folder (written atomically), `run.json`
provenance, the model card and the loss plot.

    python -c "from finetune.artifacts import git_commit; print(git_commit())"
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from finetune.registry import ModelSpec


class OutputError(RuntimeError):
    """The output folder cannot be written; nothing was left behind."""


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
    """The checkout's commit hash, or None outside git."""
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
    """A UTC-timestamp run id not yet used under `root`."""
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
            f"- Training: {run['steps_done']} steps ({train['lr_scheduler']} schedule), lr {train['learning_rate']}, "
            f"batch {train['batch_size']} × accumulation {train['grad_accum']}, {run['optimizer_used']}",
            f"- Final train loss {run['final_train_loss']}, validation loss "
            f"{validation if validation is not None else 'n/a'}",
            "",
            "Full provenance is in `run.json` beside this card; the loss curve is `loss.png`.",
            "",
        ]
    )


def plot_losses(
    losses: list[dict[str, float]],
    validation_history: list[dict[str, float]],
    validation_loss: float | None,
    path: Path,
    title: str,
) -> None:
    """Write the training (and validation) loss curve as a PNG."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.5), tight_layout=True)
    axes = figure.add_subplot()
    axes.plot([p["step"] for p in losses], [p["loss"] for p in losses], label="train loss (answer tokens)")
    if validation_history:
        axes.plot(
            [p["step"] for p in validation_history],
            [p["loss"] for p in validation_history],
            "o-",
            color="tab:orange",
            label="validation loss",
        )
    elif validation_loss is not None and losses:
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


def write_run_folder(
    output_root: Path, key: str, run_id: str, what: str, write: Callable[[Path], None]
) -> Path:
    """Write adapters/<key>/<run-id>/ atomically: `write(staging)` fills a hidden staging folder, renamed
    into place when complete; on any failure the staging folder and the folders made for it are removed,
    and an OSError becomes one line naming `what` could not be written."""
    model_dir = output_root / key
    final_dir = model_dir / run_id
    created = missing_folders(model_dir)
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{run_id}-", dir=model_dir))
    except OSError as error:
        remove_if_empty(created)
        raise OutputError(f"output folder {model_dir} is not writable ({error.strerror})") from None
    try:
        write(staging)
        open_permissions(staging)
        staging.rename(final_dir)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        remove_if_empty(created)
        if isinstance(error, OSError):  # a full disk or a folder removed under us: one line, no trace
            raise OutputError(f"could not write the {what} to {final_dir} ({error})") from None
        raise
    return final_dir


def save_run(model: Any, spec: ModelSpec, run: dict[str, Any], output_root: Path, adapter_dtype: str) -> Path:
    """Write adapters/<model>/<run-id>/: the adapter, run.json, model card and loss plot (atomically)."""

    def write(staging: Path) -> None:
        model.save_pretrained(staging)
        if adapter_dtype == "float16":
            shrink_adapter(staging / "adapter_model.safetensors")
        (staging / "run.json").write_text(json.dumps(run, indent=2))
        (staging / "README.md").write_text(model_card(spec, run))
        title = f"{spec.display_name} · LoRA r={run['config']['lora']['rank']} · {run['quant']}"
        plot_losses(
            run["losses"], run["validation_history"], run["validation_loss"], staging / "loss.png", title
        )

    return write_run_folder(output_root, spec.key, run["run_id"], "adapter", write)


def data_record(
    data: Any, split: Any, mix: list[dict[str, Any]] | None, split_seed: int, train: Any, val: Any
) -> dict[str, Any]:
    """run.json `data`: source, hash, mix, cleaning counts, split sizes."""
    return {
        "source": data.source,
        "kind": data.kind,
        "content_hash": data.content_hash,
        "mix": mix,
        "cleaning": {
            "read": data.report.read,
            "kept": data.report.kept,
            "dropped": data.report.dropped,
            # prompts too long to leave room for an answer at this max_seq_length
            "too_long_for_max_seq_length": train.too_long + val.too_long,
        },
        "split_sizes": split.sizes(),
        "split_seed": split_seed,
        "train_examples": len(train.examples),
    }


def outcome_record(
    outcome: Any, total_steps: int, warmup: int, resume: Path | None, dist: Any, tokens_per_rank: list[int]
) -> dict[str, Any]:
    """run.json's training figures: schedule, processes, steps, time, tokens, losses."""
    loop, validation_loss = outcome.state, outcome.validation_loss
    return {
        "schedule": {
            "total_steps": total_steps,
            "warmup_steps": warmup,
            "stopped_early": outcome.stopped_early,
            "resumed_from": str(resume) if resume else None,
        },
        "distributed": {
            "world_size": dist.world_size,
            "backend": dist.backend,
            "tokens_per_rank": tokens_per_rank,
        },
        "steps_done": loop.step,
        "train_seconds": round(loop.train_seconds, 2),
        "train_tokens": sum(tokens_per_rank),
        "train_tokens_per_second": round(sum(tokens_per_rank) / max(loop.train_seconds, 1e-9), 1),
        "losses": loop.losses,
        **loss_summary(loop.losses),
        "validation_loss": round(validation_loss, 5) if validation_loss is not None else None,
        "validation_history": loop.validation_history,
        "best_validation_loss": loop.best_validation_loss,
    }


def loss_summary(losses: list[dict[str, float]]) -> dict[str, float | None]:
    """Initial, final, minimum and mean training loss over a run's logged steps (None without steps)."""
    values = [float(point["loss"]) for point in losses]
    if not values:
        return dict.fromkeys(("initial_train_loss", "final_train_loss", "min_train_loss", "mean_train_loss"))
    return {
        "initial_train_loss": round(values[0], 5),
        "final_train_loss": round(values[-1], 5),
        "min_train_loss": round(min(values), 5),
        "mean_train_loss": round(sum(values) / len(values), 5),
    }


def host_facts() -> dict[str, Any]:
    """The machine facts recorded in run.json: torch, CUDA device, host."""
    import torch

    return {
        "git_commit": git_commit(),
        "torch": torch.__version__,
        "host": os.uname().nodename,
        "ended_at": datetime.now(UTC).isoformat(),
    }
