"""Tiny random-weight checkpoints built offline for tests of the GPU path's loading code.

python -c "from tests.tiny_models import save_tiny_gemma3_multimodal as s; print(s('/tmp/g3'))"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_tiny_gemma3_multimodal(folder: Path, tokenizer: Any) -> Path:
    """A 2-layer Gemma3ForConditionalGeneration (SigLIP tower + text decoder), the MedGemma layout."""
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration
    from transformers.models.gemma3.configuration_gemma3 import Gemma3TextConfig
    from transformers.models.siglip.configuration_siglip import SiglipVisionConfig

    text = Gemma3TextConfig(
        vocab_size=len(tokenizer) + 8, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=128,
        sliding_window=16,
    )  # fmt: skip
    vision = SiglipVisionConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=28,
        patch_size=14,
    )
    base = len(tokenizer)
    config = Gemma3Config(
        text_config=text, vision_config=vision, mm_tokens_per_image=4,
        boi_token_index=base, eoi_token_index=base + 1, image_token_index=base + 2,
    )  # fmt: skip
    torch.manual_seed(0)
    Gemma3ForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
