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
IMAGE_TOKENS = ("<start_of_image>", "<end_of_image>", "<image_soft_token>")

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
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token=bos, eos_token=eos, pad_token=pad)
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
            mm_tokens_per_image=4,
            boi_token_index=boi,
            eoi_token_index=eoi,
            image_token_index=image,
            **({} if tied is None else {"tie_word_embeddings": tied}),
        )
    else:
        config = AutoConfig.for_model(architecture.model_type, **text)
    config.architectures = [architecture.class_name]
    return config


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
        tokenizer.save_pretrained(folder)
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
