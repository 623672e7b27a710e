"""Common streaming pace and cut marks (arena/pacing.py). Pure and fast; the service streams
through them in tests/test_service.py, the browser shows the mark in tests/test_browser.py.

Run as: python -m pytest tests/test_pacing.py -q
"""

from __future__ import annotations

import pytest

from arena.pacing import (
    BattlePace,
    cut_at,
    cut_mark,
    default_answer_budget,
    paced_words,
    word_count,
    word_prefix,
)


def test_while_both_generate_the_faster_side_waits_for_the_slower() -> None:
    unpaced = BattlePace(words_per_s=None)
    assert paced_words(120, 15, False, False, 3.0, unpaced) == (15, 15)  # a 135M model vs a 9B one
    assert paced_words(120, 15, True, False, 3.0, unpaced) == (15, 15)  # A done: still shown at B's rate
    assert paced_words(120, 90, True, True, 3.0, unpaced) == (120, 90)  # both done: everything


def test_the_fixed_pace_caps_both_sides_and_hides_first_token_time() -> None:
    pace = BattlePace(words_per_s=40.0)
    assert paced_words(120, 100, False, False, None, pace) == (0, 0)  # one side has no words yet
    assert paced_words(120, 100, False, False, 0.5, pace) == (20, 20)
    assert paced_words(120, 100, True, True, 2.6, pace) == (104, 100)
    with pytest.raises(ValueError, match="words_per_s"):
        BattlePace(words_per_s=0)


def test_word_prefixes_keep_the_text_as_written() -> None:
    text = "## Dose\n- **10 mg/kg**  every 6 h"
    assert word_count(text) == 8
    assert word_prefix(text, 3) == "## Dose\n-"
    assert word_prefix(text, 99) == text and word_prefix(text, 0) == ""


def test_an_answer_that_used_the_whole_budget_is_cut_and_marked() -> None:
    assert cut_at(512, 512) == 512 and cut_at(300, 512) is None and cut_at(None, 512) is None
    assert "cut at 512 tokens" in cut_mark(512)
    assert default_answer_budget(cuda=True) == 512 and default_answer_budget(cuda=False) < 512
    # on a CPU the budget follows the engine's pace: llama.cpp answers ~2x faster than vLLM
    assert default_answer_budget(cuda=False, backend="llamacpp") > default_answer_budget(
        cuda=False, backend="vllm"
    )
    assert default_answer_budget(cuda=True, backend="llamacpp") == 512
