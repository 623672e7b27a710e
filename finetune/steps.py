"""The model side of a training step: LoRA attachment, answer-only loss, optimiser, LR schedule,
validation loss. Pure of run bookkeeping (finetune/loop.py drives these; finetune/train.py is the recipe).

    python -c "from finetune.steps import lr_lambda; print([round(lr_lambda(10, 2, 'cosine')(s), 2) for s in range(10)])"
"""

from __future__ import annotations

import math
from typing import Any

from finetune.batching import IGNORE_INDEX, Example, collate
from finetune.config import FinetuneConfig
from finetune.loading import LoadedBase
from finetune.lora_targets import resolve_targets
from finetune.registry import LoraRole, ModelSpec

# lora.target presets as roles; None = the registry's roles for the model (every projection).
TARGET_ROLES: dict[str, tuple[LoraRole, ...] | None] = {
    "all": None,
    "attention": ("attention",),
    "qv": ("query_value",),
}


def lora_roles(spec: ModelSpec, target: str) -> tuple[LoraRole, ...]:
    """The roles a lora.target preset asks for, resolved later against the loaded model."""
    return TARGET_ROLES[target] or spec.lora_roles


def attach_lora(base: LoadedBase, config: FinetuneConfig) -> tuple[Any, list[str]]:
    """LoRA on the projections resolved from the loaded model's own module names; returns them too."""
    lora = config.lora
    modules = resolve_targets(base.model, lora_roles(base.spec, lora.target), base.spec.key)
    if base.backend.startswith("unsloth"):
        from finetune.gpu import import_unsloth

        return import_unsloth().FastLanguageModel.get_peft_model(
            base.model,
            r=lora.rank,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=modules,
            bias="none",
            use_gradient_checkpointing="unsloth" if config.train.gradient_checkpointing else False,
            random_state=config.train.seed,
            use_rslora=lora.use_rslora,
        ), modules
    from peft import LoraConfig, get_peft_model

    if config.train.gradient_checkpointing:
        base.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        base.model.enable_input_require_grads()
    peft_config = LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=modules,
        bias="none",
        task_type="CAUSAL_LM",
        use_rslora=lora.use_rslora,
    )
    return get_peft_model(base.model, peft_config), modules


def answer_only_loss(model: Any, batch: dict[str, Any]) -> tuple[Any, int]:
    """Mean cross-entropy over answer tokens, projecting only those positions onto the vocabulary."""
    import torch.nn.functional as F

    causal_lm = model.get_base_model()
    hidden = causal_lm.get_decoder()(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
    ).last_hidden_state
    # Position t predicts token t+1.
    shifted_labels = batch["labels"][:, 1:]
    keep = shifted_labels != IGNORE_INDEX
    logits = causal_lm.get_output_embeddings()(hidden[:, :-1][keep]).float()
    softcap = getattr(causal_lm.config, "final_logit_softcapping", None)
    if softcap:  # Gemma-2 style logit capping is part of the model, so the loss must see it
        logits = softcap * (logits / softcap).tanh()
    return F.cross_entropy(logits, shifted_labels[keep]), int(keep.sum())


# bitsandbytes' optimiser class per train.optimizer; torch AdamW is the fallback for each (same update,
# 32-bit states) where bitsandbytes or its kernel for the device is missing.
BNB_OPTIMIZERS = {
    "adamw_8bit": "AdamW8bit",
    "paged_adamw_8bit": "PagedAdamW8bit",
    "paged_adamw_32bit": "PagedAdamW32bit",
}


def make_optimizer(model: Any, config: FinetuneConfig) -> tuple[Any, str]:
    """The configured optimizer over the trainable parameters, and the name of the one actually used."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    settings = config.train
    class_name = BNB_OPTIMIZERS.get(settings.optimizer)
    if class_name is not None and (settings.optimizer == "adamw_8bit" or torch.cuda.is_available()):
        # Paged optimisers page their states through CUDA unified memory: on a CPU they would only add
        # a copy, so there the fallback below runs and run.json says so.
        try:
            import bitsandbytes as bnb

            optimizer = getattr(bnb.optim, class_name)(
                params, lr=settings.learning_rate, weight_decay=settings.weight_decay
            )
            return optimizer, settings.optimizer
        except (ImportError, RuntimeError, AttributeError):
            pass  # recorded in run.json as the optimizer actually used
    return torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay), "adamw"


def lr_lambda(total_steps: int, warmup: int, schedule: str) -> Any:
    """LR factor per step: linear warm-up, then linear or cosine decay to 0, or constant."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 - progress

    return factor


def evaluate_loss(model: Any, examples: list[Example], batch_size: int, pad_id: int) -> float | None:
    """Mean answer-token loss over the validation examples, without gradients."""
    import torch

    if not examples:
        return None
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            loss, n = answer_only_loss(model, collate(examples[start : start + batch_size], pad_id))
            total += loss.item() * n
            tokens += n
    model.train()
    return total / max(1, tokens)
