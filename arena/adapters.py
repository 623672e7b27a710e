"""The adapter catalogue: which adapter runs exist, which is the latest, and the contestant type.

One place for discovery (adapters/<model>/<run-id>/ with config, sound tensors and a run.json whose
recorded base matches the base it would be attached to), for "latest" selection (run ids are UTC
timestamps) and for `Contestant` (a base, optionally with one adapter run; `id` is the stable
`<model key>/<run id or base>`, `name` the display label). The engines, the vLLM backend and
`arena.evaluate` all read adapters through here.

    from arena.adapters import discover_adapters, latest_runs
    found, warnings = discover_adapters(project_paths().adapters_dir)
    latest_runs(found)["smollm2-135m"].run_id

Run as: python -c "from arena.adapters import *; from finetune.paths import project_paths; print(discover_adapters(project_paths().adapters_dir))"
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from finetune.registry import ENCODER_REGISTRY, MODELS, UnknownModelError, get_model

BASE_ADAPTER = "__base__"  # PEFT's name for "no adapter" in a mixed batch


LABEL_SEPARATOR = " · "  # display labels read "<display name> · <LoRA run | base> · <quantisation>"


def contestant_id(model_key: str, adapter_run: str | None) -> str:
    """The stable id votes, results and cached answers are stored under: `<model key>/<run id or base>`."""
    return f"{model_key}/{adapter_run or 'base'}"


def id_from_label(label: str) -> str:
    """The stable id behind a display label written by this version's registry (used once, to migrate
    databases that stored labels); a label it cannot read is kept as its own id, so nothing is merged."""
    parts = label.split(LABEL_SEPARATOR)
    by_display = {spec.display_name: spec.key for spec in MODELS}
    if len(parts) != 3 or parts[0] not in by_display:
        return label
    adapter = parts[1]
    if adapter == "base":
        return contestant_id(by_display[parts[0]], None)
    if adapter.startswith("LoRA ") and adapter[5:]:
        return contestant_id(by_display[parts[0]], adapter[5:])
    return label


def label_from_id(stable_id: str) -> str:
    """A display label for a contestant that is not served now (current registry name, no quantisation)."""
    model_key, _, run = stable_id.partition("/")
    spec = next((s for s in MODELS if s.key == model_key), None)
    if spec is None or not run:
        return stable_id
    return f"{spec.display_name}{LABEL_SEPARATOR}{'base' if run == 'base' else f'LoRA {run}'}"


@dataclass(frozen=True)
class AdapterInfo:
    """One complete adapter run on disk: adapters/<model_key>/<run_id>/."""

    model_key: str
    run_id: str
    path: Path


@dataclass(frozen=True)
class Contestant:
    """One arena entrant: a base model, optionally with one adapter run, at one quantisation."""

    model_key: str
    display_name: str
    adapter_run: str | None
    adapter_path: Path | None
    quantization: str

    @property
    def name(self) -> str:
        """The display label shown to clinicians (stored beside the id as the label at the time)."""
        adapter = f"LoRA {self.adapter_run}" if self.adapter_run else "base"
        return LABEL_SEPARATOR.join((self.display_name, adapter, self.quantization))

    @property
    def id(self) -> str:
        """Stable id `<model key>/<run id or base>`: survives a renamed display name or quantisation."""
        return contestant_id(self.model_key, self.adapter_run)

    @property
    def adapter_name(self) -> str:
        """The PEFT / vLLM adapter name of this contestant (BASE_ADAPTER for the plain base)."""
        # PEFT adapter names become module keys, which may not contain dots.
        return (
            f"run_{self.adapter_run.replace('-', '_').replace('.', '_')}"
            if self.adapter_run
            else BASE_ADAPTER
        )


MAX_WARNING_CHARS = 300


def one_line(text: str, limit: int = MAX_WARNING_CHARS) -> str:
    """A warning as one readable line (tracebacks and tensor dumps can run to 50,000 characters)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def adapter_weights_problem(weights: Path) -> str | None:
    """Why an adapter's tensors cannot be served (unreadable, empty, NaN/Inf), or None when sound.

    A NaN adapter with a valid header otherwise loads silently, answers nothing and, in a mixed
    batch, blanks the other row too (NaN times a zero mask is still NaN).
    """
    import torch
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt") as handle:
            keys = list(handle.keys())
            if not keys:
                return "adapter_model.safetensors holds no tensors"
            for key in keys:
                tensor = handle.get_tensor(key)
                if tensor.numel() == 0:
                    return f"tensor {key} is empty"
                if not torch.isfinite(tensor).all():
                    return f"tensor {key} holds NaN or infinite values"
    except Exception as error:  # a truncated or foreign file: report it, never crash start-up
        return f"adapter_model.safetensors cannot be read ({type(error).__name__}: {error})"
    return None


def provenance_problem(run_dir: Path, model_key: str) -> str | None:
    """Why a run's run.json says it was trained on another base than `model_key`'s, or None.

    A run without run.json records no base and is not refused here (hand-made and test adapters);
    one whose `model_key` differs, or whose `base_id` is neither the registry's full-precision nor its
    4-bit repository for that key, would be attached to the wrong weights and is skipped.
    """
    path = run_dir / "run.json"
    if not path.is_file():
        return None
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return "run.json is unreadable, so its base cannot be checked"
    if not isinstance(run, dict):
        return "run.json is not an object, so its base cannot be checked"
    recorded_key = run.get("model_key")
    if recorded_key is not None and recorded_key != model_key:
        return f"run.json says it was trained on {recorded_key}, not {model_key}"
    try:
        spec = get_model(model_key)
    except UnknownModelError:
        return f"{model_key} is not a registry model"
    if run.get("hf_id") is not None:  # the full-precision identity; base_id may name a mirror of it
        recorded_base, allowed = run["hf_id"], {spec.hf_id}
    else:
        recorded_base, allowed = run.get("base_id"), {spec.hf_id, spec.bnb_4bit_id, spec.vllm_cuda_id}
    if recorded_base is not None and recorded_base not in allowed:
        return f"run.json records base {recorded_base}, but {model_key} is served from {spec.hf_id}"
    return None


def latest_runs(adapters: Iterable[AdapterInfo]) -> dict[str, AdapterInfo]:
    """The newest run per model key (run ids are UTC timestamps, so the largest is the newest)."""
    newest: dict[str, AdapterInfo] = {}
    for info in adapters:
        if info.model_key not in newest or info.run_id > newest[info.model_key].run_id:
            newest[info.model_key] = info
    return newest


def discover_adapters(adapters_dir: Path) -> tuple[list[AdapterInfo], list[str]]:
    """Every complete adapter run under adapters/<model>/<run-id>/, plus warnings for broken ones."""
    found: list[AdapterInfo] = []
    warnings: list[str] = []
    if not adapters_dir.is_dir():
        return found, [missing_adapters_note(adapters_dir)]
    keys = {spec.key for spec in MODELS}
    for model_dir in sorted(p for p in adapters_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if model_dir.name in ENCODER_REGISTRY:  # trained runs of a baseline that cannot generate
            warnings.append(
                f"skipped adapters/{model_dir.name}: an encoder baseline, not served in the arena"
            )
            continue
        if model_dir.name not in keys:
            warnings.append(f"skipped adapters/{model_dir.name}: not a registry model")
            continue
        for run_dir in sorted(p for p in model_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            missing = [
                name
                for name in ("adapter_config.json", "adapter_model.safetensors")
                if not (run_dir / name).exists()
            ]
            if missing:
                warnings.append(
                    f"skipped adapter {model_dir.name}/{run_dir.name}: missing {', '.join(missing)}"
                )
                continue
            try:
                json.loads((run_dir / "adapter_config.json").read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                warnings.append(
                    f"skipped adapter {model_dir.name}/{run_dir.name}: adapter_config.json is corrupt"
                )
                continue
            problem = provenance_problem(run_dir, model_dir.name) or adapter_weights_problem(
                run_dir / "adapter_model.safetensors"
            )
            if problem:  # skipped here, so "latest" falls back to the newest sound run
                warnings.append(one_line(f"skipped adapter {model_dir.name}/{run_dir.name}: {problem}"))
                continue
            found.append(AdapterInfo(model_dir.name, run_dir.name, run_dir))
    return found, warnings


def missing_adapters_note(adapters_dir: Path) -> str:
    """The start-up note for an adapters folder that does not exist, naming it and any folder beside
    it with a similar name (a misspelt --adapters or MEDARENA_ADAPTERS_DIR)."""
    parent = adapters_dir.parent
    siblings = [p.name for p in parent.iterdir() if p.is_dir()] if parent.is_dir() else []
    close = difflib.get_close_matches(adapters_dir.name, siblings, n=1, cutoff=0.6)
    hint = f" Did you mean {parent / close[0]}?" if close else ""
    return (
        f"The adapters folder {adapters_dir} does not exist, so only base models are served "
        f"(no fine-tuned adapters).{hint} Pass --adapters or set MEDARENA_ADAPTERS_DIR."
    )


def select_adapters(adapters: list[AdapterInfo], selection: str | Sequence[str]) -> list[AdapterInfo]:
    """'latest' (newest run per model), 'all', or an explicit list of 'model/run-id'."""
    if selection == "all":
        return adapters
    if selection == "latest":
        return list(latest_runs(adapters).values())
    wanted = set(selection)
    return [info for info in adapters if f"{info.model_key}/{info.run_id}" in wanted]
