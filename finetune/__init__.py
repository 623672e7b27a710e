"""Fine-tuning: the model registry, the one 4-bit base-loading loop, medical QA data and LoRA training.

Run it with ``python -m finetune --help`` (see `finetune/__main__.py`). The registry
(`finetune.registry`) imports without torch, so the arena and tests can list models cheaply.
"""
