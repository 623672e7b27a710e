"""finetune.dpo.TorchLogProbs: the per-token figures trl's fused LM head needs, on CPU, checked against
the full-logits definitions (cross-entropy, softmax entropy, argmax) with scale, soft-cap and
temperature, and with gradients reaching the hidden states and the head."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def test_matches_the_full_logits_definitions_and_carries_gradients() -> None:
    from finetune.dpo import TorchLogProbs

    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(7, 16, generator=generator, requires_grad=True)
    weight = torch.randn(50, 16, generator=generator, requires_grad=True)
    targets = torch.randint(0, 50, (7,), generator=generator)
    log_probs, entropy, log_sum_sq, mean_logits, is_top1 = TorchLogProbs.apply(
        hidden, weight, None, targets, 0.7, 4096, 30.0, 0.5
    )
    logits = 30.0 * torch.tanh((hidden @ weight.t()) * 0.5 / 30.0) / 0.7
    expected = -torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    assert torch.allclose(log_probs, expected, atol=1e-5)
    probabilities = logits.softmax(-1)
    assert torch.allclose(entropy, -(probabilities * probabilities.log()).sum(-1), atol=1e-5)
    assert torch.allclose(log_sum_sq, (probabilities**2).sum(-1).log(), atol=1e-5)
    assert torch.allclose(mean_logits, logits.mean(-1), atol=1e-5)
    assert torch.equal(is_top1, logits.argmax(-1) == targets)
    (-log_probs.sum()).backward()
    assert hidden.grad is not None and weight.grad is not None and weight.grad.abs().sum() > 0
    only_log_probs = TorchLogProbs.apply(hidden, weight, None, targets, 1.0, 4096, None, 1.0, ())
    assert all(x is None for x in only_log_probs[1:])
