"""Adapters renamed or fused for the checkpoint that serves them (issue #19, faults 3 and 10).

vLLM ignores LoRA modules it cannot match, silently: a MedGemma adapter trained on the text
decoder (`model.layers.*`) against the image-text checkpoint (`model.language_model.layers.*`),
or a Phi-3 adapter trained on Unsloth's split layout against Microsoft's fused one.

Run: ``python -m pytest tests/test_lora_names.py -q``
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune.lora_names import AdapterMismatchError, adapter_modules, served_adapter

LAYER = "model.layers.0"
PROJECTIONS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.down_proj")


def write_adapter(folder: Path, modules: list[str], rank: int = 4) -> Path:
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    tensors = {}
    for module in modules:
        tensors[f"base_model.model.{module}.lora_A.weight"] = torch.randn(rank, 64)
        tensors[f"base_model.model.{module}.lora_B.weight"] = torch.randn(32, rank)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    config = {
        "r": rank,
        "lora_alpha": 2 * rank,
        "target_modules": ["q_proj", "k_proj", "v_proj", "down_proj"],
    }
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


def test_a_text_only_medgemma_adapter_is_renamed_onto_the_image_text_checkpoint(tmp_path: Path) -> None:
    adapter = write_adapter(tmp_path / "run", [f"{LAYER}.{p}" for p in PROJECTIONS])
    for prefix in ("model.language_model.", "language_model.model."):  # transformers 5 / the hub's files
        weights = {f"{prefix}layers.0.{p}.weight" for p in PROJECTIONS} | {"model.vision_tower.x.weight"}
        served = served_adapter(adapter, weights, tmp_path / prefix)
        assert served != adapter
        assert adapter_modules(served) == sorted(f"{prefix}layers.0.{p}" for p in PROJECTIONS)


def test_a_matching_adapter_is_served_as_it_is(tmp_path: Path) -> None:
    adapter = write_adapter(tmp_path / "run", [f"{LAYER}.{p}" for p in PROJECTIONS])
    weights = {f"{LAYER}.{p}.weight" for p in PROJECTIONS}
    assert served_adapter(adapter, weights, tmp_path / "work") == adapter
    assert served_adapter(adapter, None, tmp_path / "work") == adapter  # names unknown: vLLM decides


def test_an_adapter_that_applies_to_no_module_is_refused(tmp_path: Path) -> None:
    adapter = write_adapter(tmp_path / "run", [f"{LAYER}.{p}" for p in PROJECTIONS])
    weights = {"transformer.h.0.attn.c_attn.weight", "transformer.h.0.mlp.c_proj.weight"}
    with pytest.raises(AdapterMismatchError, match=r"4 of its 4 LoRA modules .*\(0 would apply\)"):
        served_adapter(adapter, weights, tmp_path / "work")


@pytest.mark.slow  # builds and loads two tiny models
def test_split_phi3_lora_fused_for_microsofts_layout_gives_the_same_logits(tmp_path: Path) -> None:
    """Unsloth's 4-bit Phi-3 is a Llama with split projections; vLLM and export load Microsoft's fused one."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    from finetune.registry import get_model
    from tests.tiny_models import build_twin

    spec = get_model("phi3")
    folders = build_twin(spec, tmp_path / "twins")
    split = AutoModelForCausalLM.from_pretrained(folders[spec.bnb_4bit_id], dtype=torch.float32)
    fused = AutoModelForCausalLM.from_pretrained(folders[spec.hf_id], dtype=torch.float32)
    assert type(split).__name__ == "LlamaForCausalLM" and type(fused).__name__ == "Phi3ForCausalLM"
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    torch.manual_seed(1)
    tuned = get_peft_model(
        split, LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False)
    )
    tuned.save_pretrained(tmp_path / "run")
    inputs = torch.tensor([[5, 17, 42, 99, 7]])
    with torch.no_grad():
        expected = tuned(inputs).logits
        served = served_adapter(tmp_path / "run", set(fused.state_dict()), tmp_path / "work")
        config = json.loads((served / "adapter_config.json").read_text())
        assert sorted(config["target_modules"]) == ["down_proj", "gate_up_proj", "o_proj", "qkv_proj"]
        got = PeftModel.from_pretrained(fused, str(served))(inputs).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
