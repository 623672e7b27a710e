"""Faster multi-LoRA on vLLM's CPU engine: one matmul pair per active adapter, not per token.

vLLM's CPU LoRA ops (`vllm/lora/ops/torch_ops`, used by `PunicaWrapperCPU`) gather every token's
padded A and B matrices (`lora_b[indices]`), cast them to float32 and run a batched einsum, slice
by slice: ~8 small torch calls per slice, 14 slices in each of SmolLM2's 30 layers, plus a
[vocab x rank] gather for the lm_head on every sampled row. Even a batch with no adapter at all
pays for them in decode. On a 2-core CPU that was 40% of a decode step's worker time, more than the
base model's own matmuls (py-spy, one battle; README, "Serving").

`RowMaskPunicaWrapperCPU` computes the same sum the way the PEFT engine's `route_rows` does: for
each adapter slot present in the batch, `y += (mask * (x @ A.T)) @ B.T` over all rows, where `mask`
is the 0/1 column of rows that use the slot (none when every row does), and A stacks every slice's
A while B is block-diagonal, so one matmul pair covers a layer's q/k/v (or gate/up) slices. Rows
with no adapter (slot -1) cost nothing, and a batch without adapters skips LoRA entirely. They are
also left untouched, which vLLM 0.32's CPU ops get wrong: they index the stacked weights with -1,
i.e. the last slot, so once all `max_loras` slots hold adapters every base row got the last one's
delta (`tests/test_vllm_cpu_lora.py` shows it). One battle: 2.99 s instead of 5.32 s (serve_bench). vLLM merges the
LoRA scaling into B when it loads an adapter, so the `scale` it passes is 1.0 and is applied as
given. An lm_head slot whose B is all zero (adapters that do not train lm_head: every adapter this
project writes) is skipped; that check is cached on the tensor's version counter, which vLLM's
in-place slot writes bump. Paths this class does not cover (LoRA on embeddings, fully sharded
LoRA's split shrink/expand, full-linear modules) are vLLM's own.

It is installed only in the CPU engines the arena starts: `VLLMBackend` passes
`worker_cls="arena.serving.vllm_cpu_lora.RowMaskCPUWorker"` when `VLLMSettings.cpu_lora_ops == "row_mask"`
(the default), and that worker, in its own spawned process, points the CPU platform's
`get_punica_wrapper` at this class before the model and its LoRA manager are built. CUDA engines
keep vLLM's Triton kernels. `tests/test_vllm_cpu_lora.py` checks it against vLLM's own ops on
random slots, and `tests/test_vllm_backend.py` serves battles through it.

    python -m pytest tests/test_vllm_cpu_lora.py -q
"""

from __future__ import annotations

from typing import Any

import torch
from vllm.lora.punica_wrapper.punica_cpu import PunicaWrapperCPU
from vllm.v1.worker.cpu_worker import CPUWorker

WRAPPER_QUALNAME = "arena.serving.vllm_cpu_lora.RowMaskPunicaWrapperCPU"

# (slot, mask): the rows of a batch that use one adapter slot; mask None = every row does.
SlotRows = list[tuple[int, torch.Tensor | None]]


def slot_rows(indices: torch.Tensor, rows: int) -> SlotRows:
    """Each adapter slot used by `indices` (one per row, -1 = no adapter) with its float32 0/1
    row mask of shape [rows, 1]; rows past `len(indices)` (padding) use no adapter."""
    slots = sorted(int(s) for s in torch.unique(indices).tolist() if s >= 0)
    groups: SlotRows = []
    for slot in slots:
        if rows == indices.shape[0] and bool((indices == slot).all()):
            groups.append((slot, None))
            continue
        mask = torch.zeros(rows, 1)
        used = indices[:rows] == slot
        mask[: used.shape[0], 0] = used.float()
        groups.append((slot, mask))
    return groups


def fuse_slot(
    lora_a: tuple[torch.Tensor, ...], lora_b: tuple[torch.Tensor, ...], slot: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One slot's A matrices stacked ([slices * rank, in]) and its B matrices block-diagonal
    ([sum of outputs, slices * rank]), in float32: one matmul pair covers every slice."""
    a = torch.cat([stacked[slot, 0] for stacked in lora_a]).float()
    b = torch.block_diag(*[stacked[slot, 0] for stacked in lora_b]).float()
    return a, b


class FusedSlots:
    """float32 fused copies of each layer's adapter slots, rebuilt when vLLM writes a slot.

    Tiny bf16 matmuls are ~6x slower than float32 ones on this CPU (17 vs 3 us for [2, 576] x
    [576, 8]), so the products run in float32, as PEFT's adapters do. vLLM writes a slot in place
    (`set_lora`, `reset_lora`), which bumps the tensors' version counters: the cache key."""

    def __init__(self) -> None:
        self._fused: dict[tuple[int, int], tuple[tuple[int, ...], torch.Tensor, torch.Tensor]] = {}

    def get(
        self, lora_a: tuple[torch.Tensor, ...], lora_b: tuple[torch.Tensor, ...], slot: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The slot's fused (A, B), from the cache while none of the stacks changed."""
        key = (id(lora_a[0]), slot)
        versions = tuple(t._version for t in (*lora_a, *lora_b))
        cached = self._fused.get(key)
        if cached is None or cached[0] != versions:
            cached = (versions, *fuse_slot(lora_a, lora_b, slot))
            self._fused[key] = cached
        return cached[1], cached[2]


def add_lora_rows(
    y: torch.Tensor,
    x: torch.Tensor,
    lora_a: tuple[torch.Tensor, ...],
    lora_b: tuple[torch.Tensor, ...],
    scale: float,
    groups: SlotRows,
    slots: FusedSlots,
) -> None:
    """y += scale * (mask * (x @ A[slot].T)) @ B[slot].T for every slot group, all slices at once.

    `lora_a[i]` is [max_loras, 1, rank, in] and `lora_b[i]` [max_loras, 1, out_i, rank], as
    vLLM stacks them; y is [rows, sum of out_i] and is updated in place, in its own dtype."""
    x = x.reshape(-1, x.shape[-1]).float()
    for slot, mask in groups:
        a, b = slots.get(lora_a, lora_b, slot)
        shrunk = torch.mm(x, a.t())
        if mask is not None:
            shrunk.mul_(mask)
        if scale != 1.0:
            shrunk.mul_(scale)
        delta = torch.mm(shrunk, b.t())
        width = min(delta.shape[1], y.shape[1])  # an lm_head B may be narrower than padded logits
        y[:, :width].add_(delta[:, :width])


class RowMaskPunicaWrapperCPU(PunicaWrapperCPU):
    """`PunicaWrapperCPU` with linear and lm_head LoRA computed per adapter slot (module doc)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._token_groups: dict[int, SlotRows] = {}
        self._sampler_groups: dict[int, SlotRows] = {}
        self._slots = FusedSlots()
        self._zero_slots: dict[tuple[int, int, int], bool] = {}

    def update_metadata(self, *args: Any, **kwargs: Any) -> None:
        """vLLM's mapping (rewritten only when the batch's adapters change), then forget the
        row groups built from the previous one."""
        super().update_metadata(*args, **kwargs)
        self._token_groups.clear()
        self._sampler_groups.clear()

    @staticmethod
    def _groups(cache: dict[int, SlotRows], indices: torch.Tensor, rows: int) -> SlotRows:
        if rows not in cache:
            cache[rows] = slot_rows(indices, rows)
        return cache[rows]

    def add_lora_linear(
        self,
        y: torch.Tensor,
        x: torch.Tensor,
        lora_a_stacked: tuple[torch.Tensor, ...],
        lora_b_stacked: tuple[torch.Tensor, ...],
        scale: float,
        output_slices: tuple[int, ...],
        *,
        buffer: tuple[torch.Tensor, ...] | None = None,
        **kwargs: Any,
    ) -> None:
        """Linear-layer LoRA for every row, one slot at a time (y is updated in place)."""
        y2 = y.view(-1, y.shape[-1])
        groups = self._groups(self._token_groups, self.token_lora_indices, y2.shape[0])
        add_lora_rows(y2, x, lora_a_stacked, lora_b_stacked, scale, groups, self._slots)

    def _slot_is_zero(self, weights: torch.Tensor, slot: int) -> bool:
        key = (id(weights), weights._version, slot)
        if key not in self._zero_slots:
            if len(self._zero_slots) > 4096:  # versions of swapped-out adapters: drop them
                self._zero_slots.clear()
            self._zero_slots[key] = not bool(weights[slot].any())
        return self._zero_slots[key]

    def add_lora_logits(
        self,
        y: torch.Tensor,
        x: torch.Tensor,
        lora_a_stacked: torch.Tensor,
        lora_b_stacked: torch.Tensor,
        scale: Any,
        *,
        buffer: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> None:
        """lm_head LoRA per sampled row's slot; slots whose lm_head B is all zero are skipped."""
        y2 = y.view(-1, y.shape[-1])
        groups = [
            (slot, mask)
            for slot, mask in self._groups(self._sampler_groups, self.sampler_indices, y2.shape[0])
            if not self._slot_is_zero(lora_b_stacked, slot)
        ]
        if groups:
            add_lora_rows(y2, x, (lora_a_stacked,), (lora_b_stacked,), float(scale), groups, self._slots)


class RowMaskCPUWorker(CPUWorker):
    """vLLM's CPU worker, with `RowMaskPunicaWrapperCPU` as this process's LoRA wrapper."""

    def __init__(self, *args: Any, **kwargs: Any):
        from vllm.platforms import current_platform

        # This worker is its own spawned process, so the change reaches no other engine.
        type(current_platform).get_punica_wrapper = classmethod(lambda cls: WRAPPER_QUALNAME)
        super().__init__(*args, **kwargs)

    def lora_wrapper_names(self) -> list[str]:
        """The LoRA wrapper classes this worker's model uses (`VLLMBackend.lora_ops` asks)."""
        manager = self.model_runner.lora_manager._adapter_manager
        return sorted({type(wrapper).__name__ for wrapper in manager.punica_wrapper_mapping.values()})
