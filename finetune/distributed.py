"""Data parallelism for the one recipe: torchrun / `accelerate launch` set RANK and WORLD_SIZE.

Each process trains on every WORLD_SIZE-th micro-batch of the same seeded stream; after each
step's accumulation the LoRA gradients, answer-token counts and losses are summed across
processes, so every process takes the identical optimiser step the single-process run would
take with grad_accum × WORLD_SIZE micro-batches. Only rank 0 writes anything. gloo on CPU,
NCCL on CUDA.

    torchrun --nproc_per_node 2 -m finetune --model smollm2-135m --max-steps 2
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None  # None: a single process, no process group

    @property
    def is_main(self) -> bool:
        """Whether this process is rank 0 (the one that writes files)."""
        return self.rank == 0


def init_distributed() -> DistContext:
    """Join the process group torchrun/accelerate describe in the environment; single process otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, backend)


def broadcast_parameters(params: list[Any], ctx: DistContext) -> None:
    """Start every process from rank 0's LoRA initialisation."""
    if ctx.world_size > 1:
        import torch.distributed as dist

        for param in params:
            dist.broadcast(param.data, src=0)


def sum_gradients(params: list[Any], ctx: DistContext) -> None:
    """Sum each trainable parameter's gradient over all processes (in place)."""
    if ctx.world_size > 1:
        import torch.distributed as dist

        for param in params:
            if param.grad is not None:
                dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)


def sum_values(values: list[float], ctx: DistContext) -> list[float]:
    """Sum a few numbers over all processes."""
    if ctx.world_size == 1:
        return values
    import torch
    import torch.distributed as dist

    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def gather_values(value: int, ctx: DistContext) -> list[int]:
    """One integer from each process, in rank order (e.g. tokens each trained on)."""
    if ctx.world_size == 1:
        return [value]
    import torch.distributed as dist

    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, value)
    return [int(v) for v in out]


def shutdown(ctx: DistContext) -> None:
    """Tear down the process group when training was distributed."""
    if ctx.world_size > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
