"""Blind in every sense: both answers reach the browser at one common pace, and an answer the token
budget cut is marked as cut.

- Pace: streaming speed gives model size away (a 135M model streams several times faster than a
  9B one). `paced_words` decides how many words of each side the browser may see: never more than
  the slower side has produced while both are still generating, and never more than a fixed
  `words_per_s` since both sides had their first words (so first-token time is hidden too). When
  generation ends, the rest is released at the same fixed pace. The reveal after the vote still
  shows each side's real latency and tokens/s: the pace changes the display, not the telemetry.
- Budget: `cut_at` says whether an answer stopped because it reached `max_new_tokens`; the voter
  sees `cut_mark` under it and the side's telemetry stores `cut_at_tokens`.
- `default_answer_budget`: 512 new tokens on a GPU; on CPU 160, what keeps a battle near 10 s by
  bench/serve_bench.py (one SmolLM2-135M battle of 64 tokens a side: 2.99 s on vLLM, 4.21 s on
  PEFT, so 160 tokens is about 7.5 s and 10.5 s).

    from arena.pacing import BattlePace, paced_words, word_prefix
    shown_a, shown_b = paced_words(words_a, words_b, done_a, done_b, elapsed_s, BattlePace())

Run as: python -m pytest tests/test_pacing.py -q
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

GPU_ANSWER_BUDGET = 512
CPU_ANSWER_BUDGET = 160
# On a CPU, the budget that keeps a battle near 10 s differs by engine (bench/serve_bench.py,
# 2026-12-07, 2 cores: 128 tokens a side took 1.2 s on llama.cpp, 3.5 s on vLLM, 5.3 s on PEFT).
# 384 leaves llama.cpp room on an AVX2-only CPU too (issue #25 measured it ~1.5x slower there).
CPU_ANSWER_BUDGETS: dict[str, int] = {"llamacpp": 384}
_WORD_END = re.compile(r"\S+")


def default_answer_budget(cuda: bool, backend: str = "peft") -> int:
    """New-token budget of an answer: GPU_ANSWER_BUDGET with CUDA; on a CPU, the serving backend's
    entry in CPU_ANSWER_BUDGETS, else CPU_ANSWER_BUDGET."""
    return GPU_ANSWER_BUDGET if cuda else CPU_ANSWER_BUDGETS.get(backend, CPU_ANSWER_BUDGET)


@dataclass(frozen=True)
class BattlePace:
    """The common display pace of both sides; `words_per_s` None releases at the slower side's rate only."""

    words_per_s: float | None = 40.0  # faster than anyone reads; a 512-token answer shows in ~10 s

    def __post_init__(self) -> None:
        if self.words_per_s is not None and not self.words_per_s > 0:
            raise ValueError(f"words_per_s must be positive (or None), got {self.words_per_s}.")


def word_count(text: str) -> int:
    """Words (whitespace-separated runs) in the text."""
    return len(_WORD_END.findall(text))


def word_prefix(text: str, words: int) -> str:
    """The text up to the end of its `words`-th word (all of it when it has no more words)."""
    if words <= 0:
        return ""
    for number, match in enumerate(_WORD_END.finditer(text), start=1):
        if number == words:
            return text[: match.end()]
    return text


def paced_words(
    words_a: int, words_b: int, done_a: bool, done_b: bool, elapsed_s: float | None, pace: BattlePace
) -> tuple[int, int]:
    """How many words of each side the browser may show now.

    `elapsed_s` runs from the moment both sides had their first words (None: not yet, show nothing).
    While a side is still generating, the other side shows no more than it has; the fixed pace caps
    both. A finished side does not hold the other back.
    """
    if elapsed_s is None:
        return 0, 0
    cap = math.inf if pace.words_per_s is None else math.floor(pace.words_per_s * max(elapsed_s, 0.0))
    shown_a = min(words_a, cap, math.inf if done_b else words_b)
    shown_b = min(words_b, cap, math.inf if done_a else words_a)
    return int(shown_a), int(shown_b)


def cut_at(output_tokens: int | None, max_new_tokens: int) -> int | None:
    """The budget an answer was cut at (it used all `max_new_tokens`), else None."""
    return max_new_tokens if output_tokens is not None and output_tokens >= max_new_tokens else None


def cut_mark(tokens: int) -> str:
    """What the voter sees under a cut answer (markdown)."""
    return f"\n\n*✂ cut at {tokens} tokens (the answer budget)*"
