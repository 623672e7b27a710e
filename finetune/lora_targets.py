"""LoRA targets resolved against the loaded model's own module names.

The registry asks for roles ("attention", "mlp"); which Linear layers carry them depends on the
checkpoint's layout, not on the model family: Microsoft's Phi-3 fuses `qkv_proj` and
`gate_up_proj`, while Unsloth's 4-bit Phi-3 repos are converted to the split Llama/Mistral layout
(`q_proj` ... `up_proj`). A role is satisfied by one complete layout found in the model; when
none is complete the run fails naming what was found, instead of training a subset silently.

    python -c "from finetune.lora_targets import LAYOUTS; print(LAYOUTS)"
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from finetune.registry import LoraRole

# Every layout a role comes in, in order of preference when a model has more than one.
LAYOUTS: dict[LoraRole, tuple[tuple[str, ...], ...]] = {
    "attention": (("q_proj", "k_proj", "v_proj", "o_proj"), ("qkv_proj", "o_proj")),
    "mlp": (("gate_proj", "up_proj", "down_proj"), ("gate_up_proj", "down_proj")),
    # A fused qkv_proj cannot take q and v alone; LoRA on the fused layer is the closest whole layout.
    "query_value": (("q_proj", "v_proj"), ("qkv_proj",)),
}


class LoraTargetError(ValueError):
    """A requested projection role has no complete layout in the loaded model."""


def linear_leaf_names(model: Any) -> set[str]:
    """Last name component of every Linear layer (bitsandbytes' Linear4bit is a Linear too)."""
    import torch

    return {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
    }


def resolve_targets(model: Any, roles: Sequence[LoraRole], model_key: str = "model") -> list[str]:
    """The module names to put LoRA on for `roles`, as found in `model`; fails when a role is incomplete."""
    found = linear_leaf_names(model)
    resolved: list[str] = []
    for role in roles:
        layout = next((names for names in LAYOUTS[role] if set(names) <= found), None)
        if layout is None:
            known = sorted({name for names in LAYOUTS[role] for name in names} & found)
            expected = " or ".join("/".join(names) for names in LAYOUTS[role])
            raise LoraTargetError(
                f"{model_key}: the loaded model has no complete set of {role} projections "
                f"(found {', '.join(known) or 'none'}; expected {expected}); refusing to train a subset"
            )
        resolved.extend(name for name in layout if name not in resolved)
    return resolved


# Fused projections and the split ones they concatenate (output rows in this order).
FUSED_PROJECTIONS: dict[str, tuple[str, ...]] = {
    "qkv_proj": ("q_proj", "k_proj", "v_proj"),
    "gate_up_proj": ("gate_proj", "up_proj"),
}


def fuse_split_lora(tensors: dict[str, Any], config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A split-layout adapter (q/k/v, gate/up) rewritten exactly for the fused layout (qkv, gate_up).

    Each fused layer's delta is the split deltas stacked by output rows: A is the split A's
    stacked (rank k*r), B their block diagonal. `rank_pattern` and `alpha_pattern` record the
    fused rank with alpha scaled alike, so alpha/r, hence every output, is unchanged. Returns the
    new tensors and adapter_config.json; an adapter with no split layers comes back as it is.
    """
    import torch

    out = dict(tensors)
    rank, alpha = int(config["r"]), float(config.get("lora_alpha", config["r"]))
    fused_ranks: dict[str, int] = {}
    for fused, parts in FUSED_PROJECTIONS.items():
        first = f".{parts[0]}.lora_A.weight"
        for key_a in [k for k in tensors if k.endswith(first)]:
            stem = key_a.removesuffix(first)
            names = [f"{stem}.{part}" for part in parts]
            if not all(f"{name}.lora_A.weight" in tensors for name in names):
                continue
            a = torch.cat([out.pop(f"{name}.lora_A.weight") for name in names])
            b = torch.block_diag(*[out.pop(f"{name}.lora_B.weight") for name in names])
            out[f"{stem}.{fused}.lora_A.weight"], out[f"{stem}.{fused}.lora_B.weight"] = a, b
            fused_ranks[fused] = rank * len(parts)
    if not fused_ranks:
        return tensors, config
    targets = set(config.get("target_modules") or [])
    for fused, parts in FUSED_PROJECTIONS.items():
        if fused in fused_ranks:
            targets = (targets - set(parts)) | {fused}
    new_config = {
        **config,
        "target_modules": sorted(targets),
        "rank_pattern": {**(config.get("rank_pattern") or {}), **fused_ranks},
        "alpha_pattern": {
            **(config.get("alpha_pattern") or {}),
            **{fused: alpha * r / rank for fused, r in fused_ranks.items()},
        },
    }
    return out, new_config
