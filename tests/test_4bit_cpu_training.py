"""bitsandbytes 4-bit layers stay differentiable on CPU after a validation pass (finetune/loading.py).

Run as: python -m pytest tests/test_4bit_cpu_training.py -q
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
bnb = pytest.importorskip("bitsandbytes")

from finetune.loading import keep_4bit_weights_trainable  # noqa: E402


def _stack() -> tuple[torch.nn.Parameter, torch.nn.Sequential]:
    """A trainable input scale (standing in for an earlier LoRA layer) feeding two real NF4 layers."""
    torch.manual_seed(0)
    layers = []
    for _ in range(2):
        layer = bnb.nn.Linear4bit(64, 64, bias=False, compute_dtype=torch.float32, quant_type="nf4").to("cpu")
        layer.weight = bnb.nn.Params4bit(torch.randn(64, 64), requires_grad=False, quant_type="nf4").to("cpu")
        layers.append(layer)
    return torch.nn.Parameter(torch.ones(64)), torch.nn.Sequential(*layers)


def _gradient(scale: torch.nn.Parameter, stack: torch.nn.Sequential, inputs: torch.Tensor) -> torch.Tensor:
    scale.grad = None
    stack(inputs * scale).pow(2).sum().backward()
    assert scale.grad is not None, "no gradient reached the parameter before the 4-bit layers"
    return scale.grad.clone()


def test_gradient_through_4bit_layers_survives_a_validation_pass() -> None:
    scale, stack = _stack()
    assert keep_4bit_weights_trainable(stack) == 2
    inputs = torch.randn(8, 64)
    before = _gradient(scale, stack, inputs)
    stack.eval()
    with torch.no_grad():
        stack(torch.randn(8, 64))
    stack.train()
    after = _gradient(scale, stack, inputs)
    torch.testing.assert_close(after, before)
