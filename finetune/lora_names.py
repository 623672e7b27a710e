"""Match an adapter's module names to the checkpoint it is applied to (vLLM serving, export).

vLLM drops LoRA modules whose names match no module of the served model, without a warning. A
MedGemma adapter is trained on the text decoder alone (Unsloth `FastModel(text_only=True)`, or
transformers with `TEXT_ONLY_KEY_MAPPING`), so its modules are `model.layers.*`; the served
checkpoint is the whole image-text model, whose decoder is `model.language_model.layers.*`
(transformers >= 4.52) or `language_model.model.layers.*` (the hub's MedGemma files), and vLLM
maps both onto `language_model.model.layers.*`. Served unchanged, the adapter applied to nothing
and the "fine-tuned" contestant answered as the base.

`served_adapter` compares the adapter's modules with the checkpoint's weight names (HF naming,
which vLLM's own `hf_to_vllm_mapper` then maps for adapter and weights alike): an adapter whose
modules all exist is served as it is; one whose decoder sits under another prefix is written
once more with the checkpoint's prefix; one trained on Unsloth's split Phi-3 layout (`q_proj`,
`gate_proj`) is fused exactly for Microsoft's `qkv_proj`/`gate_up_proj` checkpoint
(`finetune.lora_targets.fuse_split_lora`); one that still matches nothing is refused with one
sentence.

    python -c "from finetune.lora_names import checkpoint_weight_names as n; print(len(n('/tmp/twin')))"
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from finetune.lora_targets import fuse_split_lora

ADAPTER_PREFIX = "base_model.model."
LORA_SUFFIXES = (".lora_A.weight", ".lora_B.weight")
# A module exists in the checkpoint when it has a plain or a quantized (AWQ/GPTQ) weight.
WEIGHT_SUFFIXES = (".weight", ".qweight")


class AdapterMismatchError(ValueError):
    """The adapter's modules are not the served checkpoint's: serving it would change nothing."""


def checkpoint_weight_names(source: str) -> frozenset[str] | None:
    """Every weight name of a local checkpoint folder or a hub repository (its index or headers);
    None where they cannot be read here (a hub id offline), and then nothing is checked."""
    folder = Path(source)
    if folder.is_dir():
        index = folder / "model.safetensors.index.json"
        if index.is_file():
            return frozenset(json.loads(index.read_text())["weight_map"])
        files = sorted(folder.glob("*.safetensors"))
        return frozenset(name for path in files for name in _tensor_names(path)) or None
    try:
        from huggingface_hub import get_safetensors_metadata

        metadata = get_safetensors_metadata(source)
    except Exception:  # offline, gated or no safetensors: vLLM's own start-up decides
        return None
    return frozenset(metadata.weight_map)


def _tensor_names(path: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return list(handle.keys())


def lora_modules(keys: Collection[str]) -> list[str]:
    """The module names LoRA weight keys attach to, in the checkpoint's naming."""
    modules = {
        key.removeprefix(ADAPTER_PREFIX).removesuffix(suffix)
        for key in keys
        for suffix in LORA_SUFFIXES
        if key.endswith(suffix)
    }
    return sorted(modules)


def adapter_modules(adapter: Path) -> list[str]:
    """The module names an adapter's LoRA weights attach to (from the safetensors header)."""
    return lora_modules(_tensor_names(adapter / "adapter_model.safetensors"))


def _exists(module: str, weights: Collection[str]) -> bool:
    return any(module + suffix in weights for suffix in WEIGHT_SUFFIXES)


def _decoder_prefix(module: str, weights: Collection[str]) -> tuple[str, str] | None:
    """(adapter prefix, checkpoint prefix) of the decoder layers, when the checkpoint holds the
    same `layers.*` module under a different prefix."""
    start = module.find("layers.")
    if start < 0:
        return None
    tail = module[start:]
    found = {
        name[: -len(tail + suffix)]
        for name in weights
        for suffix in WEIGHT_SUFFIXES
        if name.endswith("." + tail + suffix) or name == tail + suffix
    }
    return (module[:start], found.pop()) if len(found) == 1 else None


def module_renames(modules: Sequence[str], weights: Collection[str]) -> dict[str, str] | None:
    """{adapter module: checkpoint module} putting every module on an existing weight (only the
    decoder's prefix may differ), or None when no such renaming exists."""
    missing = [m for m in modules if not _exists(m, weights)]
    if not missing:
        return {m: m for m in modules}
    prefixes = _decoder_prefix(missing[0], weights)
    if prefixes is None or not all(m.startswith(prefixes[0]) for m in modules):
        return None
    renamed = {m: prefixes[1] + m.removeprefix(prefixes[0]) for m in modules}
    return renamed if all(_exists(m, weights) for m in renamed.values()) else None


def served_adapter(adapter: Path, weights: Collection[str] | None, work_dir: Path) -> Path:
    """The adapter folder to hand vLLM: `adapter` itself, or a rewritten copy under `work_dir`
    (decoder prefix renamed, and/or split q/k/v and gate/up LoRA fused for a fused checkpoint).

    Raises AdapterMismatchError when no rewrite puts every module on the served checkpoint."""
    if weights is None:
        return adapter
    modules = adapter_modules(adapter)
    if not modules:
        raise AdapterMismatchError("adapter_model.safetensors holds no LoRA weights")
    if module_renames(modules, weights) == {m: m for m in modules}:
        return adapter
    from safetensors.torch import load_file

    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    config = json.loads((adapter / "adapter_config.json").read_text())
    for candidate_tensors, candidate_config in ((tensors, config), fuse_split_lora(tensors, config)):
        renames = module_renames(lora_modules(candidate_tensors), weights)
        if renames is not None:
            return _write(candidate_tensors, candidate_config, renames, work_dir / adapter.name)
    missing = [m for m in modules if not _exists(m, weights)]
    raise AdapterMismatchError(
        f"{len(missing)} of its {len(modules)} LoRA modules (e.g. {missing[0]}) are not in the served "
        f"checkpoint, where they would be silently ignored ({len(modules) - len(missing)} would apply)"
    )


def _write(tensors: dict[str, Any], config: dict[str, Any], renames: dict[str, str], target: Path) -> Path:
    from safetensors.torch import save_file

    target.mkdir(parents=True, exist_ok=True)
    out = {}
    for key, tensor in tensors.items():
        for suffix in LORA_SUFFIXES:
            module = key.removeprefix(ADAPTER_PREFIX).removesuffix(suffix)
            if key.endswith(suffix) and module in renames:
                key = ADAPTER_PREFIX + renames[module] + suffix
                break
        out[key] = tensor.contiguous()
    save_file(out, str(target / "adapter_model.safetensors"))
    (target / "adapter_config.json").write_text(json.dumps(config, indent=2))
    return target
