"""`arena/serving/vllm_cpu_lora.py` against vLLM's own CPU LoRA wrapper (vllm-cpu), on vLLM's real mappings.

Both wrappers get the same `LoRAMapping` through `update_metadata` (vLLM's own conversion of request
LoRA ids to slots), the same stacked A/B tensors in vLLM's layout, and the same output tensor; the
row-mask wrapper must add what vLLM's adds, leave rows without an adapter untouched, and skip
an lm_head slot whose B is zero until it is written. The engine-level check (battles served through
it agree with the PEFT engine) is in tests/test_vllm_backend.py.

Run: ``python -m pytest tests/test_vllm_cpu_lora.py -q``
"""

from __future__ import annotations

import importlib.util

import pytest

pytestmark = [
    pytest.mark.slow,  # importing vLLM takes ~10 s
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed"),
]

MAX_LORAS, RANK, HIDDEN, VOCAB = 4, 8, 64, 96
SLICES = (64, 16, 16)  # a fused q/k/v projection: three output slices


def stacks(dtype, filled_slots, slices=SLICES, in_features=HIDDEN, seed=0):
    """Random A [slots, 1, rank, in] and B [slots, 1, out, rank] per slice, zero in empty slots."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    a = tuple(torch.zeros(MAX_LORAS, 1, RANK, in_features, dtype=dtype) for _ in slices)
    b = tuple(torch.zeros(MAX_LORAS, 1, size, RANK, dtype=dtype) for size in slices)
    for slot in filled_slots:
        for tensor in a + b:
            tensor[slot] = torch.randn(tensor.shape[1:], generator=generator).to(dtype) / 4
    return a, b


def wrappers(index_mapping, prompt_mapping, lora_index_to_id, is_prefill):
    """vLLM's PunicaWrapperCPU and ours, both given one LoRAMapping (ids > 0; 0 = no adapter)."""
    from vllm.lora.layers import LoRAMapping
    from vllm.lora.punica_wrapper.punica_cpu import PunicaWrapperCPU

    from arena.serving.vllm_cpu_lora import RowMaskPunicaWrapperCPU

    mapping = LoRAMapping(index_mapping, prompt_mapping, is_prefill=is_prefill)
    made = []
    for cls in (PunicaWrapperCPU, RowMaskPunicaWrapperCPU):
        wrapper = cls(64, 8, "cpu")
        wrapper.update_metadata(mapping, lora_index_to_id, MAX_LORAS, VOCAB)
        made.append(wrapper)
    return made


# Rows of two requests per case: (per-token LoRA ids, per-request ids); slot i holds LoRA id i + 1.
MIXED_DECODE = ((1, 0, 3, 1, 0), (1, 0, 3, 1, 0), False)
MIXED_PREFILL = ((1, 1, 1, 0, 0, 3, 3), (1, 0, 3), True)
ONE_ADAPTER = ((2, 2, 2), (2, 2, 2), False)
NO_ADAPTER = ((0, 0, 0, 0), (0, 0, 0, 0), False)


@pytest.mark.parametrize("case", [MIXED_DECODE, MIXED_PREFILL, ONE_ADAPTER, NO_ADAPTER])
def test_linear_lora_matches_vllms_own_ops(case) -> None:
    import torch

    tokens, requests, prefill = case
    stock, ours = wrappers(tokens, requests, [1, 2, 3, None], prefill)
    a, b = stacks(torch.float32, filled_slots=(0, 1, 2))
    x = torch.randn(len(tokens), HIDDEN, generator=torch.Generator().manual_seed(1))
    y = torch.randn(len(tokens), sum(SLICES), generator=torch.Generator().manual_seed(2))
    y_stock, y_ours = y.clone(), y.clone()
    stock.add_lora_linear(y_stock, x, a, b, 1.0, SLICES)
    ours.add_lora_linear(y_ours, x, a, b, 1.0, SLICES)
    torch.testing.assert_close(y_ours, y_stock, atol=1e-5, rtol=1e-5)
    base_rows = [i for i, lora_id in enumerate(tokens) if lora_id == 0]
    assert torch.equal(y_ours[base_rows], y[base_rows])  # no adapter: exactly the base output
    adapter_rows = [i for i, lora_id in enumerate(tokens) if lora_id != 0]
    if adapter_rows:
        assert (y_ours[adapter_rows] - y[adapter_rows]).abs().max() > 0.1  # the adapter did act


def test_bf16_matches_vllms_own_ops_to_rounding() -> None:
    import torch

    tokens, requests, prefill = MIXED_DECODE
    stock, ours = wrappers(tokens, requests, [1, 2, 3, None], prefill)
    a, b = stacks(torch.bfloat16, filled_slots=(0, 1, 2))
    x = torch.randn(len(tokens), HIDDEN, generator=torch.Generator().manual_seed(1)).bfloat16()
    y = torch.randn(len(tokens), sum(SLICES), generator=torch.Generator().manual_seed(2)).bfloat16()
    y_stock, y_ours = y.clone(), y.clone()
    stock.add_lora_linear(y_stock, x, a, b, 1.0, SLICES)
    ours.add_lora_linear(y_ours, x, a, b, 1.0, SLICES)
    assert y_ours.dtype == torch.bfloat16
    torch.testing.assert_close(y_ours.float(), y_stock.float(), atol=0.05, rtol=0.02)


def test_rows_without_an_adapter_stay_untouched_when_every_slot_is_full() -> None:
    """vLLM's CPU ops gather slot -1 (the last slot) for rows with no adapter; that slot is empty
    only while fewer adapters than `max_loras` are resident. The row-mask wrapper never reads it."""
    import torch

    tokens = (1, 0, 4, 0, 2)
    stock, ours = wrappers(tokens, tokens, [1, 2, 3, 4], False)
    a, b = stacks(torch.float32, filled_slots=(0, 1, 2, 3))
    x = torch.randn(len(tokens), HIDDEN, generator=torch.Generator().manual_seed(3))
    y = torch.zeros(len(tokens), sum(SLICES))
    ours.add_lora_linear(y, x, a, b, 1.0, SLICES)
    # vLLM 0.32's own ops give the base rows (1 and 3) the last slot's delta; if a vLLM upgrade
    # fixes that, this line fails and the README's note on it should go.
    y_stock = torch.zeros_like(y)
    stock.add_lora_linear(y_stock, x, a, b, 1.0, SLICES)
    last = torch.cat([x[1] @ a_i[3, 0].T @ b_i[3, 0].T for a_i, b_i in zip(a, b, strict=True)])
    torch.testing.assert_close(y_stock[1], last, atol=1e-5, rtol=1e-5)
    for row, lora_id in enumerate(tokens):
        slot = lora_id - 1
        expected = (
            torch.zeros(sum(SLICES))
            if lora_id == 0
            else torch.cat([x[row] @ a_i[slot, 0].T @ b_i[slot, 0].T for a_i, b_i in zip(a, b, strict=True)])
        )
        torch.testing.assert_close(y[row], expected, atol=1e-5, rtol=1e-5)


def test_lm_head_lora_is_skipped_while_zero_and_applied_once_written() -> None:
    import torch

    tokens = (1, 0, 2)
    stock, ours = wrappers(tokens, tokens, [1, 2, None, None], False)
    (a,), (b,) = stacks(torch.float32, filled_slots=(), slices=(VOCAB,))
    x = torch.randn(len(tokens), HIDDEN, generator=torch.Generator().manual_seed(4))
    logits = torch.randn(len(tokens), VOCAB, generator=torch.Generator().manual_seed(5))
    untouched = logits.clone()
    ours.add_lora_logits(untouched, x, a, b, 1.0)
    assert torch.equal(untouched, logits)  # every adapter's lm_head B is zero: nothing to add
    # An adapter that trains lm_head is written into its slot in place (as vLLM's set_lora does).
    (a_new,), (b_new,) = stacks(torch.float32, filled_slots=(1,), slices=(VOCAB,), seed=7)
    a.copy_(a_new)
    b.copy_(b_new)
    y_stock, y_ours = logits.clone(), logits.clone()
    stock.add_lora_logits(y_stock, x, a, b, 1.0)
    ours.add_lora_logits(y_ours, x, a, b, 1.0)
    torch.testing.assert_close(y_ours, y_stock, atol=1e-5, rtol=1e-5)
    assert (y_ours[2] - logits[2]).abs().max() > 0.1 and torch.equal(y_ours[:2], logits[:2])
