"""Write merged weights as a GGUF file (llama.cpp / Ollama) and the Ollama `Modelfile` beside it.

The writer is the maintained `gguf` package (llama.cpp's own Python writer). The embedded bases
are GGUF files already, so their metadata (architecture hyper-parameters and the whole tokenizer:
tokens, merges, special ids) is copied from the base GGUF unchanged, and only the tensors are
replaced by the merged ones. Tensor names come from `gguf.get_tensor_name_map` (the table
llama.cpp's `convert_hf_to_gguf.py` uses) and the per-architecture layout changes that converter
applies are data in `LAYOUT` below; transformers' GGUF loader undoes exactly those.

K-quants (q4_k_m) come from llama.cpp's own quantizer, `llama_model_quantize`, through the
llama-cpp-python bindings (`pip install llama-cpp-python` builds llama.cpp; `setup.sh --test` does
it): the merged model is written as f16 first, then quantized exactly as `llama-quantize
model-f16.gguf model-q4_k_m.gguf Q4_K_M` would, including llama.cpp's per-tensor mix (Q6_K for
some attention-value and feed-forward-down tensors) and its fallbacks for rows not divisible by
256. On a CUDA machine the seed models (which have no base GGUF here) export through Unsloth's
`model.save_pretrained_gguf(dir, tokenizer, quantization_method="q4_k_m")`, which builds llama.cpp
and runs the same converter and quantizer.

    python -m finetune.export adapters/smollm2-135m/<run-id> --gguf f16
    python -m finetune.export adapters/smollm2-135m/<run-id> --gguf q4_k_m
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

GGUFType = Literal["f32", "f16", "q8_0", "q4_k_m"]
GGUF_WRITER_TYPES: tuple[GGUFType, ...] = ("f32", "f16", "q8_0")  # the `gguf` package writes these
# Written by llama.cpp's quantizer from an f16 file: our type -> llama-cpp-python's LLAMA_FTYPE name.
LLAMA_CPP_TYPES: dict[str, str] = {"q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M"}


class GGUFExportError(ValueError):
    """The GGUF cannot be written here; the message says why and what to do."""


def llama_cpp_installed() -> bool:
    """Whether llama-cpp-python (llama.cpp's quantizer and runtime) can be imported."""
    return importlib.util.find_spec("llama_cpp") is not None


def check_gguf_type(name: str) -> GGUFType:
    """`name` as a GGUF type this machine can write, or a refusal naming the valid ones and the way."""
    valid = get_args(GGUFType)
    if name not in valid:
        raise GGUFExportError(f"unknown GGUF type {name!r}; valid types: {', '.join(valid)}")
    if name in LLAMA_CPP_TYPES and not llama_cpp_installed():
        raise GGUFExportError(
            f"{name} needs llama.cpp's K-quant quantizer: `pip install llama-cpp-python` (it builds "
            "llama.cpp; `bash setup.sh --test` does it), or export f16 here and run "
            f"`llama-quantize model-f16.gguf model-{name}.gguf {name.upper()}`, or on a CUDA machine use "
            "Unsloth's save_pretrained_gguf (see README, Export)"
        )
    return name  # type: ignore[return-value]


def quantize_with_llama_cpp(source: Path, target: Path, gguf_type: str) -> None:
    """llama.cpp's `llama_model_quantize` from an f16 GGUF to `target`, as `llama-quantize` runs it."""
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, LLAMA_CPP_TYPES[gguf_type])
    params.nthread = len(os.sched_getaffinity(0))
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params))
    if status != 0 or not target.exists():
        raise GGUFExportError(f"llama.cpp could not quantize {source.name} to {gguf_type} (status {status})")


def _permute_heads(weights: np.ndarray, n_head: int) -> np.ndarray:
    # llama.cpp's convert_hf_to_gguf LlamaModel.permute: rotary halves interleaved per head.
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


@dataclass(frozen=True)
class Layout:
    """How llama.cpp's converter changes tensors of one GGUF architecture (transformers undoes it)."""

    permute_q_k: bool = False  # Llama family: q/k rows permuted for llama.cpp's RoPE
    norm_plus_one: bool = False  # Gemma family: RMSNorm stores (1 + w)


LAYOUT: dict[str, Layout] = {
    "llama": Layout(permute_q_k=True),
    "qwen2": Layout(),
    "qwen3": Layout(),
    "phi3": Layout(),
    "gemma2": Layout(norm_plus_one=True),
    "gemma3": Layout(norm_plus_one=True),
}


def _transform(layout: Layout, gguf_name: str, weights: np.ndarray, heads: int, kv_heads: int) -> np.ndarray:
    if layout.permute_q_k and ".attn_q." in gguf_name:
        return _permute_heads(weights, heads)
    if layout.permute_q_k and ".attn_k." in gguf_name:
        return _permute_heads(weights, kv_heads)
    if layout.norm_plus_one and gguf_name.endswith("norm.weight"):
        return weights + 1
    return weights


def _quantize(gguf_type: GGUFType, name: str, weights: np.ndarray) -> tuple[np.ndarray, Any]:
    import gguf

    # As llama.cpp's converter does: 1-D tensors (norms, biases) stay float32 in every file type.
    if weights.ndim == 1 or gguf_type == "f32":
        return weights.astype(np.float32), gguf.GGMLQuantizationType.F32
    if gguf_type == "f16":
        return weights.astype(np.float16), gguf.GGMLQuantizationType.F16
    qtype = gguf.GGMLQuantizationType.Q8_0
    if weights.shape[-1] % gguf.GGML_QUANT_SIZES[qtype][0]:
        return weights.astype(np.float16), gguf.GGMLQuantizationType.F16
    return gguf.quants.quantize(weights.astype(np.float32), qtype), qtype


FILE_TYPE = {"f32": 0, "f16": 1, "q8_0": 7}  # llama.cpp's LLAMA_FTYPE values


def write_gguf(
    state_dict: dict[str, Any],
    base_gguf: Path,
    out_path: Path,
    gguf_type: GGUFType,
    *,
    name: str,
    progress: Callable[[str], None] = print,
) -> Path:
    """Write `state_dict` (HF names, merged weights) as `out_path`, with `base_gguf`'s metadata."""
    import gguf

    check_gguf_type(gguf_type)
    if gguf_type in LLAMA_CPP_TYPES:
        f16 = out_path.with_name(f".{out_path.stem}-f16.gguf")
        try:
            write_gguf(state_dict, base_gguf, f16, "f16", name=name, progress=progress)
            staged = out_path.with_name(f".{out_path.name}.partial")
            progress(f"Quantizing with llama.cpp to {gguf_type} ...")
            quantize_with_llama_cpp(f16, staged, gguf_type)
            staged.replace(out_path)
        finally:
            f16.unlink(missing_ok=True)
        return out_path
    reader = gguf.GGUFReader(str(base_gguf))
    arch = reader.fields["general.architecture"].contents()
    if arch not in LAYOUT:
        raise GGUFExportError(f"no GGUF layout for architecture {arch!r}; known: {', '.join(LAYOUT)}")
    layout = LAYOUT[arch]
    n_blocks = int(reader.fields[f"{arch}.block_count"].contents())
    heads = int(reader.fields[f"{arch}.attention.head_count"].contents())
    kv_heads = int(reader.fields[f"{arch}.attention.head_count_kv"].contents())
    arch_enum = next(key for key, value in gguf.MODEL_ARCH_NAMES.items() if value == arch)
    names = gguf.get_tensor_name_map(arch_enum, n_blocks)

    by_gguf_name: dict[str, np.ndarray] = {}
    for hf_name, tensor in state_dict.items():
        mapped = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if mapped is not None:
            by_gguf_name[mapped] = tensor.detach().float().cpu().numpy()
    missing = [t.name for t in reader.tensors if t.name not in by_gguf_name]
    if missing:
        raise GGUFExportError(f"merged weights lack GGUF tensors {missing[:5]} (of {len(missing)})")

    out_path.parent.mkdir(parents=True, exist_ok=True)
    staged = out_path.with_name(f".{out_path.name}.partial")
    writer = gguf.GGUFWriter(str(staged), arch)
    skip = {"general.architecture", "general.file_type", "general.quantization_version", "general.name"}
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in skip:
            continue
        sub_type = field.types[-1] if len(field.types) > 1 else None
        writer.add_key_value(key, field.contents(), field.types[0], sub_type)
    writer.add_name(name)
    writer.add_file_type(FILE_TYPE[gguf_type])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for tensor in reader.tensors:  # the base's tensor set and order: what llama.cpp expects
        weights = _transform(layout, tensor.name, by_gguf_name[tensor.name], heads, kv_heads)
        data, qtype = _quantize(gguf_type, tensor.name, weights)
        writer.add_tensor(tensor.name, data, raw_dtype=qtype)
    progress(f"Writing {out_path} ({gguf_type}, {len(reader.tensors)} tensors) ...")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    staged.replace(out_path)
    return out_path


# Ollama's TEMPLATE (Go text/template) for each chat-template family of the registry; the same
# turns as CHAT_TEMPLATES in finetune/registry.py. Families without a system role fold it into
# the first user turn, as finetune/prompt.py does.
OLLAMA_TEMPLATES: dict[str, str] = {
    "chatml": (
        "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
        "{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}"
        "<|im_start|>assistant\n{{ .Response }}<|im_end|>\n"
    ),
    "qwen3": (
        "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
        "{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}"
        "<|im_start|>assistant\n<think>\n\n</think>\n\n{{ .Response }}<|im_end|>\n"
    ),
    "llama-3": (
        "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
        "{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}"
        "<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>"
    ),
    "deepseek-r1": (
        "{{ if .System }}{{ .System }}{{ end }}{{ if .Prompt }}<｜User｜>{{ .Prompt }}{{ end }}"
        "<｜Assistant｜><think>\n\n</think>\n\n{{ .Response }}<｜end▁of▁sentence｜>"
    ),
    "gemma": (
        "<start_of_turn>user\n{{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}<end_of_turn>\n"
        "<start_of_turn>model\n{{ .Response }}<end_of_turn>\n"
    ),
    "phi-3": (
        "{{ if .System }}<|system|>\n{{ .System }}<|end|>\n{{ end }}"
        "{{ if .Prompt }}<|user|>\n{{ .Prompt }}<|end|>\n{{ end }}<|assistant|>\n{{ .Response }}<|end|>\n"
    ),
    "mistral": "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }} [/INST]{{ .Response }}</s>",
}

# Greedy-ish defaults, close to the arena's deterministic decoding.
OLLAMA_PARAMETERS: dict[str, float | int] = {"temperature": 0.1, "top_p": 0.9, "repeat_penalty": 1.1}


def modelfile(gguf_name: str, family: str, system_prompt: str, stops: list[str]) -> str:
    """The Ollama Modelfile text for a GGUF beside it (`ollama create NAME -f Modelfile`)."""
    if family not in OLLAMA_TEMPLATES:
        raise GGUFExportError(
            f"no Ollama template for family {family!r}; known: {', '.join(OLLAMA_TEMPLATES)}"
        )
    lines = [
        f"FROM ./{gguf_name}",
        f'TEMPLATE """{OLLAMA_TEMPLATES[family]}"""',
        f'SYSTEM """{system_prompt}"""',
    ]
    lines += [f"PARAMETER {key} {value}" for key, value in OLLAMA_PARAMETERS.items()]
    lines += [f'PARAMETER stop "{stop}"' for stop in dict.fromkeys(stops)]
    return "\n".join(lines) + "\n"
