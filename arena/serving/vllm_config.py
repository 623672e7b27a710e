"""Settings and bookkeeping for the vLLM backend, importable without vLLM.

What each registry base is served from (`served_model`), the engine settings (`VLLMSettings`),
the bytes a contestant's weights take (`weights_bytes`), and the start-up check that refuses a
broken adapter (`check_adapter`). Used by `arena/serving/vllm_backend.py` and `bench/serve_bench.py`.

    python -c "from arena.serving.vllm_config import *; from finetune.registry import get_model; print(served_model(get_model('smollm2-135m'), VLLMSettings()))"
"""

from __future__ import annotations

import json
import os
import struct
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from finetune.gpu import CudaDtype, estimated_vram_mb
from finetune.loading import (
    BaseUnavailableError,
    _hub_cached,
    base_override,
    convert_embedded,
    converted_dir,
    twin_folder,
    unavailable_reason,
)
from finetune.registry import ModelSpec

Dtype = Literal["bfloat16", "float16", "float32"]
# How each CPU engine's worker threads are placed (README, "Serving backends", tuning):
# "spread": engine i gets core i mod n, so engines on different bases decode on different cores;
# "all": every engine's worker uses every core; "vllm": vLLM's own auto binding (one core per
# engine, the others reserved for its scheduler: on 2 cores every engine lands on core 0);
# "nobind": no pinning, OpenMP's default thread count.
CpuBinding = Literal["spread", "all", "vllm", "nobind"]
CPU_BINDINGS: tuple[CpuBinding, ...] = ("spread", "all", "vllm", "nobind")
# How a CPU engine computes LoRA: "row_mask", one matmul pair per adapter slot in the batch
# (arena/serving/vllm_cpu_lora.py); "vllm", vLLM's own per-token gathers (vllm/lora/ops/torch_ops).
CpuLoraOps = Literal["row_mask", "vllm"]
CPU_LORA_OPS: tuple[CpuLoraOps, ...] = ("row_mask", "vllm")
CPU_LORA_WORKER = "arena.serving.vllm_cpu_lora.RowMaskCPUWorker"  # vLLM's CPUWorker + that LoRA wrapper
DTYPE_BYTES: dict[str, int] = {"bfloat16": 2, "float16": 2, "float32": 4}
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's accepted max_lora_rank values
SAFETENSORS_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "U8": 1, "I8": 1, "F64": 8, "I32": 4, "I64": 8}


@dataclass(frozen=True)
class VLLMSettings:
    """Engine settings, the same for every base. Defaults fit beside other work on a 2-core box."""

    dtype: Dtype = "bfloat16"
    max_model_len: int = 2048
    max_num_seqs: int = 32  # 8 concurrent battles = 16 sequences, with room
    max_loras: int = 4  # adapters resident in the batch at once (more stay in vLLM's CPU cache)
    # The highest adapter rank accepted. Each engine is started with the smallest rank vLLM
    # supports that holds its own adapters (`engine_lora_rank`): vLLM pads every adapter to the
    # engine's rank, and on a CPU its LoRA kernels gather padded weights per token.
    max_lora_rank: int = 64
    kv_cache_gib: int = 1  # CPU: VLLM_CPU_KVCACHE_SPACE per engine
    # CUDA: the share of the GPU all engines together may take (never more than NVML's free
    # memory); each engine gets an equal part of it (`engine_memory_fraction`).
    gpu_memory_utilization: float = 0.9
    tensor_parallel_size: int = 1
    # No effect on a CPU with LoRA: vLLM's CPU platform sets compilation mode NONE whenever LoRA
    # is on (vllm/platforms/cpu.py), and a CPU has no CUDA graphs. On CUDA: graphs on.
    enforce_eager: bool = False
    cpu_binding: CpuBinding = "spread"
    preload_iomp: bool = False  # CPU: LD_PRELOAD Intel OpenMP (`intel-openmp`) into the engines
    cpu_lora_ops: CpuLoraOps = "row_mask"

    def __post_init__(self) -> None:
        if self.cpu_binding not in CPU_BINDINGS:
            raise ValueError(f"cpu_binding must be one of {list(CPU_BINDINGS)}")
        if self.cpu_lora_ops not in CPU_LORA_OPS:
            raise ValueError(f"cpu_lora_ops must be one of {list(CPU_LORA_OPS)}")
        if self.dtype not in DTYPE_BYTES:
            raise ValueError(f"dtype must be one of {sorted(DTYPE_BYTES)}")
        if self.max_lora_rank not in VLLM_LORA_RANKS:
            raise ValueError(f"max_lora_rank must be one vLLM supports {VLLM_LORA_RANKS}")
        if not (self.max_model_len >= 256 and self.max_num_seqs >= 2 and self.kv_cache_gib >= 1):
            raise ValueError("max_model_len >= 256, max_num_seqs >= 2 and kv_cache_gib >= 1 are required")
        if not 0 < self.gpu_memory_utilization <= 1 or self.tensor_parallel_size < 1:
            raise ValueError("gpu_memory_utilization must be in (0, 1] and tensor_parallel_size >= 1")


@dataclass(frozen=True)
class ServedModel:
    """What one vLLM engine loads for a registry base."""

    source: str  # local folder or hub id
    quantization: str | None  # vLLM's `quantization=` (None: plain weights)
    device: str
    label: str  # the contestant's quantization label
    dtype: str | None = None  # CUDA: the type the engine computes in (CPU: VLLMSettings.dtype)


DTYPE_LABEL: dict[str, str] = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}


def served_weights(served: ServedModel, settings: VLLMSettings) -> str:
    """The served weights' tag (`Contestant.weights`): the AWQ/GPTQ format of a quantized repository,
    else the precision the plain weights are served in ("bf16", "fp16", "fp32")."""
    return served.quantization or DTYPE_LABEL[served.dtype or settings.dtype]


def served_model(
    spec: ModelSpec, settings: VLLMSettings, cache_dir: Path | None = None, cuda: CudaDtype | None = None
) -> ServedModel:
    """What one engine loads. `cuda`: the GPU's 16-bit type (`finetune.gpu.device_cuda_dtype`), None
    on a CPU. CUDA: the registry's AWQ/GPTQ repository where it names one, else the full-precision
    hf_id in that type (vLLM 0.32 cannot serve the bnb-4bit repos). CPU: the converted embedded base
    (or a cached HF model) in `settings.dtype`. MEDARENA_BASE_<KEY> (or a twin) overrides either."""
    override = base_override(spec) or twin_folder(spec.vllm_cuda_id)
    if cuda is not None:
        if spec.vllm_quantization is not None and override is None:  # AWQ/GPTQ kernels compute in fp16
            label = f"{spec.vllm_quantization} vLLM"
            return ServedModel(spec.vllm_cuda_id, spec.vllm_quantization, "cuda", label, "float16")
        # vLLM refuses fp16 for some families (Gemma-2, Gemma-3: numerical instability): float32 there.
        dtype = cuda if cuda == "bfloat16" or spec.fp16_serving else "float32"
        return ServedModel(override or spec.vllm_cuda_id, None, "cuda", f"{DTYPE_LABEL[dtype]} vLLM", dtype)
    label = f"{DTYPE_LABEL[settings.dtype]} vLLM"
    if override is not None:
        return ServedModel(override, None, "cpu", label)
    if spec.embedded is not None:
        return ServedModel(str(convert_embedded(spec, cache_dir)), None, "cpu", label)
    if (converted_dir(spec, cache_dir) / "config.json").exists():
        return ServedModel(str(converted_dir(spec, cache_dir)), None, "cpu", label)
    if _hub_cached(spec.hf_id):
        return ServedModel(spec.hf_id, None, "cpu", label)
    raise BaseUnavailableError(unavailable_reason(spec))


# --- CUDA: which bases start, and each engine's share of the GPU --------------------------------

# Without --models/MEDARENA_MODELS every registry base is "available" on a CUDA host (the hub):
# the default set is this many, in registry order, of those that fit.
DEFAULT_CUDA_BASES = 4
# vLLM's own reserve for CUDA graphs, activations and the sampler, per engine.
VLLM_RUNTIME_MB = 2048


def vllm_vram_mb(spec: ModelSpec) -> float:
    """VRAM one engine needs at least: weights as served (AWQ/GPTQ ~4-bit, else 16-bit) plus
    vLLM's runtime and a little KV cache."""
    if spec.vllm_quantization is not None:
        return estimated_vram_mb(spec) + VLLM_RUNTIME_MB
    return spec.params_b * 2 * 1024 + VLLM_RUNTIME_MB


def engine_memory_fraction(
    settings: VLLMSettings, free_mb: float, total_mb: float, bases: int, reserve_mb: float = 1024
) -> float:
    """`gpu_memory_utilization` for each of `bases` engines on one GPU: the settings' share of the
    card, capped by what NVML says is free now (other processes' memory stays theirs), split evenly.
    vLLM reads the value as a fraction of the card's total memory."""
    if bases < 1 or total_mb <= 0:
        raise ValueError("engine_memory_fraction needs at least one base and a card's total memory")
    usable = min(settings.gpu_memory_utilization * total_mb, free_mb - reserve_mb)
    if usable <= 0:
        raise BaseUnavailableError(f"the GPU has {free_mb:.0f} MB free: no room for a vLLM engine")
    return round(usable / total_mb / bases, 4)


def engine_arguments(
    served: ServedModel, settings: VLLMSettings, lora_rank: int, memory_fraction: float
) -> dict[str, Any]:
    """The `AsyncEngineArgs` keywords one engine starts with (tests validate the CUDA ones
    through vLLM's own config checks)."""
    row_mask = served.device == "cpu" and settings.cpu_lora_ops == "row_mask"
    return {
        "model": served.source,
        "dtype": served.dtype or settings.dtype,
        "quantization": served.quantization,
        "enable_lora": True,
        "max_loras": settings.max_loras,
        "max_lora_rank": lora_rank,
        "max_model_len": settings.max_model_len,
        "max_num_seqs": settings.max_num_seqs,
        "gpu_memory_utilization": memory_fraction,
        "tensor_parallel_size": settings.tensor_parallel_size,
        "enforce_eager": settings.enforce_eager,
        "disable_log_stats": True,
        **({"worker_cls": CPU_LORA_WORKER} if row_mask else {}),
    }


# --- CPU engine processes: thread placement and preloaded libraries ------------------------------


def cpu_engine_env(settings: VLLMSettings, engine_index: int, cores: Sequence[int]) -> dict[str, str]:
    """The variables one CPU engine's processes start with (vLLM reads them when it spawns them);
    `cores` are the core ids this process may run on (`os.sched_getaffinity(0)`)."""
    env: dict[str, str] = {"VLLM_CPU_KVCACHE_SPACE": str(settings.kv_cache_gib)}
    ids = sorted(cores)
    if settings.cpu_binding == "spread":
        env["VLLM_CPU_OMP_THREADS_BIND"] = str(ids[engine_index % len(ids)])
    elif settings.cpu_binding == "all":
        env["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(map(str, ids))
    elif settings.cpu_binding == "nobind":
        env["VLLM_CPU_OMP_THREADS_BIND"] = "nobind"
    iomp = Path(sys.prefix) / "lib" / "libiomp5.so"  # the `intel-openmp` wheel puts it there
    if settings.preload_iomp and iomp.exists():
        preload = os.environ.get("LD_PRELOAD", "")
        env["LD_PRELOAD"] = f"{iomp} {preload}".strip() if "libiomp" not in preload else preload
    return env


@contextmanager
def engine_environment(env: dict[str, str]) -> Iterator[None]:
    """Set `env` while an engine spawns its processes, then restore ours. A variable the
    operator already set (other than LD_PRELOAD, which is extended) is left as it is."""
    saved = {key: os.environ.get(key) for key in env}
    try:
        for key, value in env.items():
            if key == "LD_PRELOAD" or key not in os.environ:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --- memory accounting: the bytes one contestant's weights take ---------------------------------


def _safetensors_tensors(path: Path) -> dict[str, dict[str, Any]]:
    """A safetensors file's tensor table, from its header only (raises on a corrupt file)."""
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        if length > 100_000_000:
            raise ValueError("header length is implausible")
        header = json.loads(handle.read(length))
    header.pop("__metadata__", None)
    return header


def weights_bytes(files: Sequence[Path], dtype_bytes: int | None) -> int:
    """Bytes the tensors take once loaded: cast to `dtype_bytes` per element, or as stored (None)."""
    total = 0
    for path in files:
        for info in _safetensors_tensors(path).values():
            count = 1
            for dim in info["shape"]:
                count *= dim
            total += count * (dtype_bytes or SAFETENSORS_BYTES.get(info["dtype"], 2))
    return total


def adapter_rank(path: Path) -> int:
    """The LoRA rank PEFT recorded for an adapter (0 when unreadable: refused later, with a reason)."""
    try:
        config = json.loads((path / "adapter_config.json").read_text())
        return max([int(config.get("r", 0)), *map(int, (config.get("rank_pattern") or {}).values())])
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


def engine_lora_rank(ranks: Sequence[int], max_rank: int) -> int:
    """The smallest rank vLLM accepts that holds every adapter rank up to `max_rank` (at least 8)."""
    wanted = max([r for r in ranks if 0 < r <= max_rank], default=0)
    return next(rank for rank in VLLM_LORA_RANKS if rank >= wanted)


def check_adapter(path: Path, max_rank: int) -> None:
    """Refuse an adapter before vLLM sees it: unreadable config or weights, or a rank too high."""
    import torch
    from safetensors.torch import load_file

    json.loads((path / "adapter_config.json").read_text())  # readable, or refused here
    rank = adapter_rank(path)
    if not 0 < rank <= max_rank:
        raise ValueError(f"LoRA rank {rank} is outside 1..{max_rank} (VLLMSettings.max_lora_rank)")
    tensors = load_file(str(path / "adapter_model.safetensors"))
    if not tensors:
        raise ValueError("adapter_model.safetensors holds no tensors")
    if not all(bool(torch.isfinite(t).all()) for t in tensors.values()):
        raise ValueError("adapter weights contain NaN or infinity")


def process_tree_rss_mb() -> float:
    """RSS of this process and its children (vLLM's engine and worker processes), in MB."""
    import psutil

    process = psutil.Process()
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:  # a child that just exited
            continue
    return total / 2**20
