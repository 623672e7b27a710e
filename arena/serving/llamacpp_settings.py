"""Settings of the llama.cpp backend, importable without llama-cpp-python (arena/serving/backends.py reads them).

python -c "from arena.serving.llamacpp_settings import LlamaCppSettings; print(LlamaCppSettings().cpu_threads())"
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class LlamaCppSettings:
    """Engine settings, the same for every base."""

    threads: int = 0  # CPU threads split between busy lanes; 0: the cores this process may use
    sequences: int = 8  # concurrent answers one contestant decodes in one batch
    context_tokens: int = 4096  # KV cache of one contestant, shared by its sequences
    batch_tokens: int = 512  # prompt tokens per compute step (llama.cpp's n_ubatch)
    decode_nice: int = 5  # decode threads yield to the app's threads (DECODE_NICE; 0: same priority)

    def __post_init__(self) -> None:
        if self.threads < 0 or not 1 <= self.sequences <= 64:
            raise ValueError("threads must be >= 0 and sequences in [1, 64]")
        if self.context_tokens < 256 or self.batch_tokens < 32:
            raise ValueError("context_tokens must be >= 256 and batch_tokens >= 32")
        if not 0 <= self.decode_nice <= 19:
            raise ValueError("decode_nice must be in [0, 19]")

    def cpu_threads(self) -> int:
        """The threads to split: the setting, else the cores this process may run on."""
        return self.threads or len(os.sched_getaffinity(0))
