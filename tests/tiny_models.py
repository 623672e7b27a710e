"""Tiny random-weight twins of the seed models, built offline from registry data.

A twin matches the checkpoint the GPU path loads in everything except size: the same
`model_type` and transformers class (MedGemma as `Gemma3ForConditionalGeneration` with a tiny
SigLIP tower; Gemma-3-1B as `gemma3_text`), the same module names and layout (Phi-3/3.5 split as
Unsloth's Llama-fied 4-bit repos, fused as Microsoft's full-precision ones), the config settings
that change code paths (`ModelSpec.architecture`: tied embeddings, sliding windows, soft-capping,
rope scaling), and a tokenizer carrying the family's chat template and special tokens.

One builder, no per-model branches: every difference comes from `finetune.registry`. A twin is
written for each repository the GPU path reads (the 4-bit repo, the full-precision `hf_id`, and
any vLLM repo), into `<dir>/<owner>--<name>`, the layout `MEDARENA_TWINS=<dir>` reads
(finetune/loading.py `twin_folder`): with it set, every loader, the vLLM backend and export
resolve those repositories to the twins.

    python -m tests.tiny_models /tmp/twins              # all 12 seeds
    MEDARENA_TWINS=/tmp/twins python -m finetune --model phi3 --max-steps 2 --data.limit 8
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from finetune.prompt import SYSTEM_PROMPT
from finetune.registry import CHAT_TEMPLATES, END_OF_TURN, MODELS, Architecture, ModelSpec

# Every seed: the registry models without an embedded offline base.
SEEDS: tuple[ModelSpec, ...] = tuple(spec for spec in MODELS if spec.architecture is not None)

# Sizes only: head_dim 32 is the smallest vLLM's CPU attention accepts.
TEXT_SIZE: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 32,
    "max_position_embeddings": 4096,
}
VISION_SIZE: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "image_size": 28,
    "patch_size": 14,
}
MM_TOKENS_PER_IMAGE = 4
IMAGE_TOKENS = ("<start_of_image>", "<end_of_image>", "<image_soft_token>")
# The named tokens a family's processor reads off its tokenizer (Gemma-3's: boi, eoi, image).
FAMILY_NAMED_TOKENS: dict[str, dict[str, str]] = {
    "gemma": dict(zip(("boi_token", "eoi_token", "image_token"), IMAGE_TOKENS, strict=True)),
}
# Ordinary vocabulary entries a family's code looks up by text (vLLM's Gemma-3 processor finds the
# newlines around an image as `vocab["\\n" * 1..4]` (gemma3_mm.py:349); a byte-level twin spells them otherwise).
FAMILY_PLAIN_TOKENS: dict[str, tuple[str, ...]] = {"gemma": tuple("\n" * n for n in range(1, 5))}
# Where transformers 5.17's save_pretrained names weights otherwise than the hub's checkpoint does:
# {model_type: ((saved prefix, hub prefix), ...)}. Google's Gemma-3 files hold the SigLIP tower as
# `vision_tower.vision_model.*`, the name vLLM loads; transformers writes `vision_tower.*`.
HUB_PREFIXES: dict[str, tuple[tuple[str, str], ...]] = {
    "gemma3": (("vision_tower.", "vision_tower.vision_model."),),
}
# An image-text checkpoint ships its processor (the hub's processor_config.json), which vLLM loads:
# {model_type: (processor class, image processor class)}; the PIL image processor needs no torchvision.
VISION_PROCESSORS: dict[str, tuple[str, str]] = {"gemma3": ("Gemma3Processor", "Gemma3ImageProcessorPil")}

# Each template family's tokenizer: (bos, eos, pad, the other special tokens its template uses).
FAMILY_TOKENS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "llama-3": (
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|finetune_right_pad_id|>",
        ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
    ),
    "chatml": ("<|endoftext|>", "<|im_end|>", "<|endoftext|>", ("<|im_start|>",)),
    "qwen3": ("<|endoftext|>", "<|im_end|>", "<|endoftext|>", ("<|im_start|>", "<think>", "</think>")),
    "gemma": ("<bos>", "<eos>", "<pad>", ("<start_of_turn>", "<end_of_turn>", *IMAGE_TOKENS)),
    "phi-3": (
        "<s>",
        "<|endoftext|>",
        "<|endoftext|>",
        ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>"),
    ),
    "mistral": ("<s>", "</s>", "</s>", ("[INST]", "[/INST]")),
    "deepseek-r1": (
        "<｜begin▁of▁sentence｜>",
        "<｜end▁of▁sentence｜>",
        "<｜end▁of▁sentence｜>",
        ("<｜User｜>", "<｜Assistant｜>", "<think>", "</think>"),
    ),
}

# Unsloth re-lays a fused checkpoint out as split projections: (fused module, split modules).
FUSED_PROJECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("self_attn.qkv_proj", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
    ("mlp.gate_up_proj", ("mlp.gate_proj", "mlp.up_proj")),
)
TRAINING_TEXT = (
    SYSTEM_PROMPT,
    "Which electrolyte disturbance is most typical of tumour lysis syndrome? Hyperkalaemia.",
    "What is the first-line treatment for uncomplicated hypertension? A thiazide diuretic.",
    "Sepsis is life-threatening organ dysfunction caused by a dysregulated host response to infection.",
)


# Why vLLM cannot serve an image-text twin (MedGemma) on the CPU image setup.sh builds, read in vLLM
# 0.32.0 and transformers 5.17.0: vLLM's registry imports gemma3_mm.py to inspect and load
# Gemma3ForConditionalGeneration (vllm/model_executor/models/registry.py:1093), and its line 10
# imports transformers' Gemma3ImageProcessor, whose module (image_processing_gemma3.py:20) imports
# torchvision; transformers 5 keeps the PIL processor in another module, which vLLM never imports.
# PyPI's torchvision 0.28.0 (torch 2.13's) is a CUDA build: its _C.so links libtorch_cuda.so, absent
# from torch 2.13.0+cpu, so its import fails ("operator torchvision::nms does not exist") and setup.sh
# removes it. No engine argument helps: `language_model_only`, `limit_mm_per_prompt={"image": 0}` and
# `mm_processor_kwargs` (use_fast) are read only once the class is imported. Serving the checkpoint
# as a text-only Gemma3ForCausalLM would need a converted copy, which CUDA does not serve, and would
# skip the `language_model.` renaming (issue #19, fault 3) that this cell exists to prove.
VLLM_IMAGE_TEXT_REASON = (
    "vLLM cannot import Gemma3ForConditionalGeneration without torchvision: "
    "vllm/model_executor/models/gemma3_mm.py:10 imports transformers' Gemma3ImageProcessor, "
    "whose transformers/models/gemma3/image_processing_gemma3.py:20 imports torchvision; PyPI's "
    "torchvision 0.28 is a CUDA build that cannot load beside torch 2.13.0+cpu (setup.sh removes it), "
    "and no engine argument (language_model_only, limit_mm_per_prompt, mm_processor_kwargs) avoids "
    "the import (tests/tiny_models.py, VLLM_IMAGE_TEXT_REASON)"
)


def vllm_serves_image_text() -> bool:
    """Whether vLLM can load an image-text Gemma-3 here (see VLLM_IMAGE_TEXT_REASON)."""
    return importlib.util.find_spec("torchvision") is not None


def repo_folder(root: Path, repo_id: str) -> Path:
    """Where the twin standing in for `repo_id` lives under `root` (MEDARENA_TWINS)."""
    return root / repo_id.replace("/", "--")


def twin_tokenizer(template: str) -> Any:
    """A byte-level BPE tokenizer with the family's special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bos, eos, pad, others = FAMILY_TOKENS[template]
    specials = list(dict.fromkeys([bos, eos, pad, *others, END_OF_TURN[template]]))
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    core.train_from_iterator(TRAINING_TEXT * 4, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        extra_special_tokens=FAMILY_NAMED_TOKENS.get(template),
    )
    tokenizer.add_tokens(list(FAMILY_PLAIN_TOKENS.get(template, ())))
    tokenizer.chat_template = CHAT_TEMPLATES[template]
    return tokenizer


def _config_settings(architecture: Architecture) -> dict[str, Any]:
    """The registry's settings at twin size: a scalar rope factor list is repeated per rotary pair."""
    settings = dict(architecture.config)
    rope = settings.get("rope_scaling")
    if isinstance(rope, dict):
        pairs = TEXT_SIZE["head_dim"] // 2
        settings["rope_scaling"] = {
            name: [value] * pairs
            if name.endswith("_factor") and rope.get("rope_type") == "longrope"
            else value
            for name, value in rope.items()
        }
    return settings


def twin_config(architecture: Architecture, tokenizer: Any) -> Any:
    from transformers import AutoConfig

    text = {
        **TEXT_SIZE,
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        **_config_settings(architecture),
    }
    if architecture.vision:
        boi, eoi, image = tokenizer.convert_tokens_to_ids(list(IMAGE_TOKENS))
        tied = text.pop("tie_word_embeddings", None)
        config = AutoConfig.for_model(
            architecture.model_type,
            text_config=text,
            vision_config=VISION_SIZE,
            mm_tokens_per_image=MM_TOKENS_PER_IMAGE,
            boi_token_index=boi,
            eoi_token_index=eoi,
            image_token_index=image,
            **({} if tied is None else {"tie_word_embeddings": tied}),
        )
    else:
        config = AutoConfig.for_model(architecture.model_type, **text)
    config.architectures = [architecture.class_name]
    return config


def twin_processor(architecture: Architecture, tokenizer: Any) -> Any:
    """The image-text processor the checkpoint ships, at twin size (one image = 4 soft tokens)."""
    import transformers

    processor_class, image_class = VISION_PROCESSORS[architecture.model_type]
    image_processor = getattr(transformers, image_class)(
        size={"height": VISION_SIZE["image_size"], "width": VISION_SIZE["image_size"]}
    )
    return getattr(transformers, processor_class)(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_length=MM_TOKENS_PER_IMAGE,
        chat_template=tokenizer.chat_template,
    )


def _hub_names(folder: Path, prefixes: tuple[tuple[str, str], ...]) -> None:
    """Rename the saved weights to the hub checkpoint's names (HUB_PREFIXES)."""
    if not prefixes:
        return
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    state = load_file(str(path))
    for saved, hub in prefixes:
        state = {
            hub + name.removeprefix(saved)
            if name.startswith(saved) and not name.startswith(hub)
            else name: value
            for name, value in state.items()
        }
    save_file(state, str(path), metadata={"format": "pt"})


def _relayout(state: dict[str, Any], fused_to_split: bool) -> dict[str, Any]:
    """The same weights with fused projections split (or split ones fused), by FUSED_PROJECTIONS."""
    import torch

    out = dict(state)
    for fused, parts in FUSED_PROJECTIONS:
        for name in [n for n in state if (f".{fused}." in n if fused_to_split else f".{parts[0]}." in n)]:
            if fused_to_split:
                tensor = out.pop(name)
                sizes = _split_sizes(fused, tensor.shape[0])
                for part, piece in zip(parts, torch.split(tensor, sizes), strict=True):
                    out[name.replace(fused, part)] = piece.clone()
            else:
                pieces = [out.pop(name.replace(parts[0], part)) for part in parts]
                out[name.replace(parts[0], fused)] = torch.cat(pieces)
    return out


def _split_sizes(fused: str, rows: int) -> list[int]:
    q = TEXT_SIZE["num_attention_heads"] * TEXT_SIZE["head_dim"]
    kv = TEXT_SIZE["num_key_value_heads"] * TEXT_SIZE["head_dim"]
    return [q, kv, kv] if fused.endswith("qkv_proj") else [rows // 2, rows // 2]


def build_twin(spec: ModelSpec, root: Path, seed: int = 0) -> dict[str, Path]:
    """Write the twins of every repository `spec` is loaded from; returns {repo id: folder}.

    The full-precision twin is drawn from `seed`; the 4-bit repo's twin holds the same weights
    (re-laid out where Unsloth's copy splits the projections), as the real repos do."""
    import torch
    import transformers

    assert spec.architecture is not None, f"{spec.key} has no registry architecture to copy"
    tokenizer = twin_tokenizer(spec.chat_template)
    torch.manual_seed(seed)
    full = getattr(transformers, spec.architecture.class_name)(twin_config(spec.architecture, tokenizer))
    layouts = {spec.hf_id: (spec.architecture, full.state_dict())}
    bnb = spec.bnb_architecture or spec.architecture
    split = bnb.class_name != spec.architecture.class_name
    layouts[spec.bnb_4bit_id] = (bnb, _relayout(full.state_dict(), fused_to_split=True) if split else None)
    written: dict[str, Path] = {}
    for repo, (architecture, state) in layouts.items():
        folder = repo_folder(root, repo)
        if state is None:  # the same layout: the same files
            model = full
        else:
            model = getattr(transformers, architecture.class_name)(twin_config(architecture, tokenizer))
            model.load_state_dict(state, strict=True)
        model.save_pretrained(folder)
        _hub_names(folder, HUB_PREFIXES.get(architecture.model_type, ()))
        tokenizer.save_pretrained(folder)
        if architecture.vision:
            twin_processor(architecture, tokenizer).save_pretrained(folder)
        (folder / "twin.json").write_text(
            json.dumps(
                {"twin_of": repo, "model_key": spec.key, "class": architecture.class_name, "seed": seed}
            )
        )
        written[repo] = folder
    return written


def build_twins(root: Path, specs: Iterable[ModelSpec] = SEEDS) -> dict[str, Path]:
    """Twins of every seed (or `specs`) under `root`; returns {repo id: folder}."""
    written: dict[str, Path] = {}
    for spec in specs:
        written |= build_twin(spec, root)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "twins")
    for repo, folder in build_twins(target).items():
        print(f"{repo}: {folder}")
