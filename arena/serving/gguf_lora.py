"""PEFT LoRA adapters converted to llama.cpp's GGUF LoRA format, once, cached by content.

llama.cpp attaches an adapter to a context from a GGUF file whose tensors are named after the base
GGUF's (`blk.3.attn_q.weight.lora_a` / `.lora_b`) with `general.type = adapter`, `adapter.type =
lora` and `adapter.lora.alpha`. This is the part of llama.cpp's `convert_lora_to_gguf.py` the arena
needs, written with the `gguf` package alone (no torch, no base model folder): the projections the
registry's LoRA roles target, renamed; q/k rows permuted for the architectures whose GGUF converter
permutes them (llama: HF's rotate-half rope layout vs GGUF's interleaved one); alpha rescaled for
rsLoRA so llama.cpp's `alpha / rank` equals PEFT's scaling. What it cannot express (DoRA, rank or
alpha patterns, LoRA on embeddings or heads, bias) is refused with one sentence.

The cache key is the adapter files' SHA-256 plus `CONVERTER_VERSION` plus the base architecture
it was permuted for; the digest is also written into the GGUF and checked when it is read back.

    python -c "from arena.serving.gguf_lora import *; print(CONVERTER_VERSION)"

Run as: python -m pytest tests/test_llamacpp_backend.py -q
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Bump whenever the written GGUF changes for the same adapter (the cache key includes it).
CONVERTER_VERSION = 1
DIGEST_KEY = "medarena.adapter_sha256"
VERSION_KEY = "medarena.converter_version"

# PEFT module path (under model.layers.N.) -> the base GGUF's tensor name (under blk.N.).
GGUF_NAMES: dict[str, str] = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
# Architectures whose GGUF converter permutes q/k rows (convert_hf_to_gguf.py's LlamaModel.permute).
ROPE_PERMUTED: frozenset[str] = frozenset({"llama"})
PEFT_KEY = re.compile(r"^base_model\.model\.model\.layers\.(\d+)\.([a-z_]+\.[a-z_]+)\.lora_([AB])\.weight$")


class AdapterConversionError(ValueError):
    """An adapter that cannot be served as a GGUF LoRA; the message is one sentence."""


@dataclass(frozen=True)
class BaseArchitecture:
    """What the conversion needs from the base GGUF (read from its metadata)."""

    arch: str  # general.architecture
    n_head: int
    n_head_kv: int

    @property
    def tag(self) -> str:
        """A short cache-key part: adapters are permuted per architecture and head layout."""
        return f"{self.arch}-{self.n_head}-{self.n_head_kv}"


def adapter_digest(adapter_dir: Path) -> str:
    """SHA-256 over the adapter's config and weights (the files that define the conversion)."""
    digest = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        digest.update(name.encode())
        with (adapter_dir / name).open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def rope_permute(rows: Any, n_head: int) -> Any:
    """llama.cpp's q/k row permutation (rotate-half -> interleaved), on the output dimension."""
    return (
        rows.reshape(n_head, 2, rows.shape[0] // n_head // 2, *rows.shape[1:])
        .swapaxes(1, 2)
        .reshape(rows.shape)
    )


def lora_alpha(config: dict[str, Any]) -> float:
    """The `adapter.lora.alpha` that makes llama.cpp's alpha / rank equal PEFT's scaling."""
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    return alpha * rank**0.5 if config.get("use_rslora") else alpha  # rsLoRA scales by alpha / sqrt(r)


def config_problem(config: dict[str, Any]) -> str | None:
    """Why a PEFT config has no GGUF LoRA equivalent here, or None."""
    if config.get("peft_type", "LORA") != "LORA":
        return f"it is a {config.get('peft_type')} adapter, not LoRA"
    if config.get("use_dora"):
        return "DoRA adapters have no llama.cpp equivalent"
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        return "per-module rank or alpha patterns are not supported"
    if config.get("modules_to_save"):
        return "modules_to_save (fully trained layers) cannot be attached as a LoRA"
    if config.get("bias", "none") != "none" or config.get("lora_bias"):
        return "LoRA bias terms are not supported"
    return None


def gguf_tensors(adapter_dir: Path, base: BaseArchitecture) -> tuple[dict[str, Any], float]:
    """The adapter's tensors under GGUF names (lora_a: rank x in, lora_b: out x rank) and its alpha."""
    import numpy as np
    from safetensors.numpy import load_file

    try:
        config = json.loads((adapter_dir / "adapter_config.json").read_text())
        weights = load_file(str(adapter_dir / "adapter_model.safetensors"))
    except Exception as error:  # unreadable files: one sentence, never a traceback
        raise AdapterConversionError(f"its files cannot be read ({type(error).__name__}: {error})") from error
    problem = config_problem(config)
    if problem:
        raise AdapterConversionError(problem)
    tensors: dict[str, Any] = {}
    for key, value in weights.items():
        match = PEFT_KEY.match(key)
        if match is None or match.group(2) not in GGUF_NAMES:
            raise AdapterConversionError(f"tensor {key} targets a module llama.cpp adapters cannot hold")
        block, module, half = match.groups()
        array = value.astype(np.float32) if value.dtype not in (np.float16, np.float32) else value
        if half == "B" and base.arch in ROPE_PERMUTED and module in ("self_attn.q_proj", "self_attn.k_proj"):
            heads = base.n_head if module == "self_attn.q_proj" else base.n_head_kv
            try:
                array = rope_permute(array, heads)
            except ValueError as error:  # rows that are not this base's heads: another model's adapter
                raise AdapterConversionError(
                    f"its {module} has {array.shape[0]} output rows, which do not split into this "
                    f"base's {heads} heads (was it trained on another model?)"
                ) from error
        suffix = "lora_a" if half == "A" else "lora_b"
        tensors[f"blk.{block}.{GGUF_NAMES[module]}.weight.{suffix}"] = np.ascontiguousarray(array)
    if not tensors:
        raise AdapterConversionError("it holds no LoRA tensors")
    unpaired = {n.rsplit(".", 1)[0] for n in tensors} - {
        n.rsplit(".", 1)[0] for n in tensors if n.endswith("lora_a") and n[:-1] + "b" in tensors
    }
    if unpaired:
        raise AdapterConversionError(f"{sorted(unpaired)[0]} has lora_A or lora_B but not both")
    return tensors, lora_alpha(config)


def write_gguf_lora(adapter_dir: Path, target: Path, base: BaseArchitecture, digest: str) -> None:
    """Write the GGUF LoRA for `adapter_dir` to `target` (staged, renamed last)."""
    import gguf

    tensors, alpha = gguf_tensors(adapter_dir, base)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, staged = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}-", suffix=".part")
    os.close(handle)
    try:
        writer = gguf.GGUFWriter(staged, base.arch)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_string(DIGEST_KEY, digest)
        writer.add_uint32(VERSION_KEY, CONVERTER_VERSION)
        for name, array in tensors.items():
            writer.add_tensor(name, array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(staged, target)  # an interrupted conversion never leaves a file that looks complete
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged)


def converted_lora(adapter_dir: Path, base: BaseArchitecture, cache_dir: Path) -> tuple[Path, str]:
    """The cached GGUF LoRA of `adapter_dir` for `base` (converted on first use) and its digest."""
    digest = adapter_digest(adapter_dir)
    target = cache_dir / f"gguf-lora-v{CONVERTER_VERSION}" / base.tag / f"{digest[:32]}.gguf"
    if not target.exists():
        write_gguf_lora(adapter_dir, target, base, digest)
    return target, digest
