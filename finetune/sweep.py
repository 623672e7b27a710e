"""Ablation sweeps: every combination of the `--sweep` axes, each cell trained in its own
subprocess under otherwise identical conditions, then one table (Markdown + CSV + PNG) of
trainable parameters, train time, tokens/s, peak memory, final train and validation loss.

    python -m finetune --model smollm2-135m --preset demo --sweep lora.rank=8,16 --sweep quant=4bit,16bit

A fresh interpreter per cell keeps the peak-memory figure the cell's own and leaves no patched
or cached state from one cell to the next. Cells go to `--sweep-dir` (default
`<output>/../sweeps/<model>-<time>/`), each with its own adapter folder and run.json.
"""

from __future__ import annotations

import csv
import itertools
import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from finetune.artifacts import loss_summary
from finetune.config import ConfigError, FinetuneConfig, build_config, cli_fields


@dataclass(frozen=True)
class Axis:
    key: str  # "quant" or "section.field"
    values: tuple[str, ...]


COLUMNS = (
    "trainable_parameters",
    "train_seconds",
    "train_tokens_per_second",
    "peak_memory_mb",
    "initial_train_loss",
    "final_train_loss",
    "min_train_loss",
    "mean_train_loss",
    "validation_loss",
)
LOSS_COLUMNS = ("initial_train_loss", "final_train_loss", "min_train_loss", "mean_train_loss")


def sweepable_keys() -> list[str]:
    """The keys --sweep accepts."""
    return ["quant", *(flag for flag, _section, _field in cli_fields())]


def parse_axes(specs: list[str]) -> list[Axis]:
    """["lora.rank=8,16", "quant=4bit,16bit"] -> axes; unknown keys fail listing the valid ones."""
    axes = []
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not values.strip():
            raise ConfigError(f"--sweep {spec!r} must be KEY=V1,V2,...")
        if key not in sweepable_keys():
            raise ConfigError(f"--sweep key {key!r} is unknown; valid: {', '.join(sweepable_keys())}")
        axes.append(Axis(key, tuple(v.strip() for v in values.split(",") if v.strip())))
    if len({a.key for a in axes}) != len(axes):
        raise ConfigError("--sweep names the same key twice")
    return axes


def cell_flags(axes: list[Axis], values: tuple[str, ...]) -> dict[str, Any]:
    """A cell's settings as config overrides ({"lora": {"rank": "8"}, "quant": "4bit"})."""
    overrides: dict[str, Any] = {}
    for axis, value in zip(axes, values, strict=True):
        section, _, name = axis.key.rpartition(".")
        if section:
            overrides.setdefault(section, {})[name] = value
        else:
            overrides[name] = value
    return overrides


def cells(axes: list[Axis]) -> list[tuple[str, ...]]:
    """Every combination of the sweep's axes."""
    return list(itertools.product(*(axis.values for axis in axes)))


def default_sweep_dir(config: FinetuneConfig, model_key: str) -> Path:
    """A new folder for a sweep's table, beside the adapters folder."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path(config.output_dir).resolve().parent / "sweeps" / f"{model_key}-{stamp}"


def run_sweep(
    model_key: str,
    axes: list[Axis],
    base_flags: dict[str, Any],
    passthrough: list[str],
    sweep_dir: Path,
    **build: Any,
) -> int:
    """Validate every cell, train each in a subprocess, write the table; returns an exit code."""
    grid = cells(axes)
    for values in grid:  # every cell's config must be valid before any trains
        build_config(**build, flags=_merge(base_flags, cell_flags(axes, values)))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, values in enumerate(grid):
        label = ", ".join(f"{a.key}={v}" for a, v in zip(axes, values, strict=True))
        print(f"\n=== sweep cell {index + 1}/{len(grid)}: {label} ===", flush=True)
        out = sweep_dir / f"cell-{index:02d}"
        flags = [f"--{a.key}={v}" for a, v in zip(axes, values, strict=True)]
        command = [
            sys.executable,
            "-m",
            "finetune",
            "--model",
            model_key,
            *passthrough,
            *flags,
            "--output",
            str(out),
        ]
        code = subprocess.call(command)
        run = _read_run(out / model_key) if code == 0 else None
        rows.append(table_row(dict(zip((a.key for a in axes), values, strict=True)), run))
    write_table(rows, [a.key for a in axes], sweep_dir)
    print(f"\nsweep table: {sweep_dir / 'sweep.md'}")
    print((sweep_dir / "sweep.md").read_text())
    return 0 if all(row["status"] == "ok" for row in rows) else 1


def _merge(base: dict[str, Any], cell: dict[str, Any]) -> dict[str, Any]:
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for key, value in cell.items():
        if isinstance(value, dict):
            merged.setdefault(key, {}).update(value)
        else:
            merged[key] = value
    return merged


def _read_run(model_dir: Path) -> dict[str, Any] | None:
    runs = sorted(model_dir.glob("*/run.json"))
    return json.loads(runs[-1].read_text()) if runs else None


def table_row(cell: dict[str, str], run: dict[str, Any] | None) -> dict[str, Any]:
    """One table row from a cell's run.json (blank figures and status 'failed' without one)."""
    row: dict[str, Any] = {**cell, "status": "ok" if run else "failed"}
    if run is None:
        return row | dict.fromkeys(COLUMNS)
    memory = run["memory"]
    peak = memory["peak_vram_mb"] if memory.get("peak_vram_mb") is not None else memory["peak_rss_mb"]
    plain = {name: run.get(name) for name in COLUMNS if name != "peak_memory_mb" and name not in LOSS_COLUMNS}
    # From the loss history, so runs written before these figures were recorded get them too.
    return row | plain | loss_summary(run.get("losses") or []) | {"peak_memory_mb": peak}


def write_table(rows: list[dict[str, Any]], axis_keys: list[str], folder: Path) -> None:
    """sweep.csv, sweep.md and sweep.png (validation loss and tokens/s per cell)."""
    header = [*axis_keys, "status", *COLUMNS]
    with (folder / "sweep.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if row[h] is None else str(row[h]) for h in header) + " |" for row in rows]
    (folder / "sweep.md").write_text("\n".join(lines) + "\n")
    from matplotlib.figure import Figure

    labels = ["\n".join(str(row[k]) for k in axis_keys) for row in rows]
    figure = Figure(figsize=(max(6, 1.4 * len(rows)), 4), tight_layout=True)
    for position, (column, title) in enumerate(
        [("validation_loss", "validation loss"), ("train_tokens_per_second", "tokens/s")], start=1
    ):
        axes = figure.add_subplot(1, 2, position)
        axes.bar(labels, [row[column] or 0 for row in rows])
        axes.set_title(title, fontsize=10)
    figure.suptitle(" × ".join(axis_keys), fontsize=10)
    figure.savefig(folder / "sweep.png", dpi=110)
