"""Option log-likelihood MCQ scoring on the real embedded SmolLM2 base, cross-checked with lm-eval.

python -m pytest tests/test_mcq_loglik.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest

from arena.eval.lm_eval_check import cross_check, load_float32, load_mcq_jsonl
from arena.eval.mcq_loglik import TARGET_DELIMITER, encode_pair, mcq_choices, mcq_context, score_items
from tests.conftest import SHARED_DATA

MEDQA = SHARED_DATA / "medqa_usmle" / "medqa_usmle.jsonl"
CROSS_CHECK_ITEMS = 20  # 1 accuracy point on 20 items means the same prediction on every item

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base_dir() -> Path:
    from finetune.loading import local_source
    from finetune.registry import get_model

    return Path(local_source(get_model("smollm2-135m"), None))


@pytest.fixture(scope="module")
def medqa() -> list:
    if not MEDQA.exists():
        pytest.skip(f"MedQA-USMLE not found at {MEDQA} (the shared data folder beside the checkout)")
    return load_mcq_jsonl(MEDQA, CROSS_CHECK_ITEMS)


def test_batched_option_scores_equal_one_sequence_at_a_time(base_dir: Path, medqa: list) -> None:
    import torch

    model, tokenizer = load_float32(base_dir)
    items = medqa[:2]
    scores = score_items(model, tokenizer, items, choice_format="option", batch_size=8)
    for record, item in zip(items, scores, strict=True):
        assert item.labels == tuple(record.options) and item.gold == record.answer
        for choice, value in zip(mcq_choices(record, "option"), item.loglik, strict=True):
            context, continuation = encode_pair(
                tokenizer, mcq_context(tokenizer, record), TARGET_DELIMITER + choice
            )
            assert len(continuation) > 1  # option text: several tokens, each scored
            with torch.inference_mode():
                logits = model(input_ids=torch.tensor([context + continuation])).logits[0]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            expected = sum(
                float(logprobs[len(context) - 1 + k, token]) for k, token in enumerate(continuation)
            )
            assert value == pytest.approx(expected, abs=1e-3)


def test_lm_eval_agrees_within_one_point_on_medqa(base_dir: Path, medqa: list) -> None:
    result = cross_check(base_dir, medqa, choice_format="letter")
    assert result.n == CROSS_CHECK_ITEMS
    assert result.acc_gap_points <= 1.0, result.summary()
    assert result.max_abs_loglik_diff < 1e-3, result.summary()
    assert result.lm_eval_acc_norm == pytest.approx(result.ours_acc_norm, abs=0.01), result.summary()
