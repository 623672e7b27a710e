"""Engine adapter switching on the real smollm2-135m base: the fast switch serves exactly the
adapter PEFT's own by-name routing serves, and switching back and forth never reloads anything.

Run: ``python -m pytest tests/test_engine.py -q``
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from arena.serving.common import GenerationSettings
from arena.serving.peft_engine import BASE_ADAPTER, ArenaEngine
from finetune.prompt import render_prompt

MODEL = "smollm2-135m"
QUESTION = "What is the first-line treatment for uncomplicated hypertension?"


@pytest.fixture(scope="module")
def two_adapter_engine(tiny_adapters: Path, tmp_path_factory: pytest.TempPathFactory) -> ArenaEngine:
    """An engine with two different adapters on one resident base.

    The second adapter is the tiny trained one with its LoRA B matrices scaled by -4: a real,
    distinct adapter file, so serving the wrong one shows in the logits.
    """
    from safetensors.torch import load_file, save_file

    root = tmp_path_factory.mktemp("two-adapters")
    (source,) = sorted((tiny_adapters / MODEL).iterdir())
    first, second = root / MODEL / "20260101-000000", root / MODEL / "20260101-000001"
    shutil.copytree(source, first)
    shutil.copytree(source, second)
    weights = load_file(second / "adapter_model.safetensors")
    scaled = {k: (v * -4 if "lora_B" in k else v).contiguous() for k, v in weights.items()}
    save_file(scaled, second / "adapter_model.safetensors")
    return ArenaEngine.start(adapters_dir=root, model_keys=[MODEL], adapter_selection="all")


def last_logits(engine: ArenaEngine, name: str, *, routed: bool) -> object:
    """Next-token logits for one contestant: by engine switch, or by PEFT's adapter_names routing."""
    import torch

    resident = engine.base_for(name)
    adapter = engine.contestant(name).adapter_name
    tokenizer = resident.loaded.tokenizer
    inputs = tokenizer(render_prompt(tokenizer, QUESTION), return_tensors="pt", add_special_tokens=False)
    with resident.lock, torch.inference_mode():
        if routed:
            return resident.model(**inputs, adapter_names=[adapter]).logits[0, -1]
        resident.switch_adapter(adapter)
        return resident.model(**inputs).logits[0, -1]


def test_fast_switch_serves_the_same_adapter_as_peft_routing(two_adapter_engine: ArenaEngine) -> None:
    import torch

    engine = two_adapter_engine
    adapters = [n for n in engine.contestant_names() if "LoRA" in n]
    assert len(adapters) == 2 and len(engine.contestant_names()) == 3
    assert len(engine.base_for(adapters[0]).lora_layers) == 30 * 7  # q,k,v,o,gate,up,down per block

    switched = {name: last_logits(engine, name, routed=False) for name in [*adapters, *adapters]}
    for name in adapters:  # switched there and back: still the same adapter as PEFT routes to
        torch.testing.assert_close(switched[name], last_logits(engine, name, routed=True), atol=1e-4, rtol=0)
    assert (switched[adapters[0]] - switched[adapters[1]]).abs().max().item() > 0.05


def test_single_contestant_batches_switch_and_mixed_batches_route(two_adapter_engine: ArenaEngine) -> None:
    engine = two_adapter_engine
    first, second = (n for n in engine.contestant_names() if "LoRA" in n)
    settings = GenerationSettings(max_new_tokens=8)
    resident = engine.base_for(first)

    engine.generate_answers(first, [(QUESTION, None)], settings)
    assert resident.active_adapter == engine.contestant(first).adapter_name
    engine.generate_answers(second, [(QUESTION, None)], settings)
    assert resident.active_adapter == engine.contestant(second).adapter_name

    base = next(n for n in engine.contestant_names() if "LoRA" not in n)
    assert engine.contestant(base).adapter_name == BASE_ADAPTER
    updates = list(engine.stream_pair(QUESTION, first, base, settings))
    final = updates[-1]
    assert final.finished and final.a.telemetry and final.b.telemetry
    assert final.a.telemetry.batched_with_other_side and final.a.error is None and final.b.error is None
    assert final.a.text and final.b.text


@pytest.mark.parametrize("pairing", ["two adapters", "adapter and plain base"])
def test_mixed_batch_rows_get_their_own_adapter_as_with_peft_routing(
    two_adapter_engine: ArenaEngine, pairing: str
) -> None:
    import torch

    engine = two_adapter_engine
    first, second = (n for n in engine.contestant_names() if "LoRA" in n)
    base = next(n for n in engine.contestant_names() if "LoRA" not in n)
    rows = [engine.contestant(n).adapter_name for n in (first, second if pairing == "two adapters" else base)]
    resident = engine.base_for(first)
    tokenizer = resident.loaded.tokenizer
    prompts = [
        render_prompt(tokenizer, QUESTION),
        render_prompt(tokenizer, "How is type 2 diabetes diagnosed?"),
    ]
    inputs = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    with resident.lock, torch.inference_mode():
        routed = resident.model(**inputs, adapter_names=rows).logits[:, -1]
        with resident.route_rows(rows):
            masked = resident.model(**inputs).logits[:, -1]
        after = resident.model(**inputs, adapter_names=rows).logits[:, -1]
    torch.testing.assert_close(masked, routed, atol=1e-4, rtol=0)
    torch.testing.assert_close(after, routed)  # scalings and active adapters restored
    assert (routed[0] - routed[1]).abs().max().item() > 0.05
