"""Every registry model's prompt, rendered offline: the same system text and question appear
exactly once, thinking is off, and answers end with the family's end-of-turn token.

Templates: Unsloth's bundled copies (`unsloth.chat_templates`) where one matches the model's own,
Google's Gemma-2 template verbatim (it raises on a system message), and the registry's
fallbacks otherwise. Rendering runs on a minimal real tokenizer, so no model is downloaded.

Run: ``python -m pytest tests/test_prompts.py -q``
"""

from __future__ import annotations

import functools
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from finetune.prompt import SYSTEM_PROMPT, final_answer, render_prompt, with_thinking
from finetune.registry import CHAT_TEMPLATES, END_OF_TURN, MODELS, ModelSpec

ROOT = Path(__file__).resolve().parent.parent


def skip_without_unsloth() -> None:
    """Skip unless Unsloth is installed, without importing it: its import patches transformers."""
    if importlib.util.find_spec("unsloth") is None:
        pytest.skip("setup.sh --test installs Unsloth (--no-deps) for these tests")


QUESTION = "Which electrolyte disturbance is most typical of tumour lysis syndrome?"
OPTIONS = {"A": "Hypokalaemia", "B": "Hyperkalaemia", "C": "Hypercalcaemia", "D": "Hyponatraemia"}

# google/gemma-2-9b-it's own chat template (tokenizer_config.json), verbatim.
GEMMA2_OWN = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)

# Which bundled Unsloth template matches each model's own (None: the registry's fallback).
UNSLOTH_TEMPLATE: dict[str, str | None] = {
    "llama3-8b": "llama-3",
    "qwen2.5-1.5b": "qwen-2.5",
    "qwen3-4b": "qwen3",
    "medgemma-1.5-4b": "gemma-3",
    "medgemma-4b-it": "gemma-3",
    "phi3": "phi-3",
    "mistral-7b": "mistral",
    "deepseek-r1-llama-8b": None,
    "llama3.1-8b": "llama-3.1",
    "gemma2-9b": None,  # GEMMA2_OWN below: Unsloth's copy folds the system text itself
    "phi3.5-mini": "phi-3.5",
    "gemma3-1b": "gemma-3",
    "smollm2-135m": "chatml",
    "gemma3-270m": None,  # its GGUF ships no template: the registry's fallback is what runs
}


def make_tokenizer(template: str) -> object:
    """A real fast tokenizer with the special tokens the templates print, and the given template."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(WordLevel({"<unk>": 0, "<s>": 1, "</s>": 2}, unk_token="<unk>"))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    tokenizer.chat_template = template
    return tokenizer


@functools.cache
def unsloth_templates() -> dict[str, str]:
    """Unsloth's bundled templates, read in a child process.

    Importing unsloth patches transformers and sets environment variables for the whole process;
    in a child it cannot leak into the tests that run after this one.
    """
    skip_without_unsloth()
    code = (
        "import json\nfrom finetune.gpu import import_unsloth\nimport_unsloth()\n"
        "from unsloth.chat_templates import CHAT_TEMPLATES as T\n"
        "print('\\nTEMPLATES ' + json.dumps({k: v[0] for k, v in T.items()}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("TEMPLATES ")]
    return json.loads(line.removeprefix("TEMPLATES "))


def template_for(spec: ModelSpec) -> str:
    if spec.key == "gemma2-9b":
        return GEMMA2_OWN
    name = UNSLOTH_TEMPLATE[spec.key]
    if name is None:
        return CHAT_TEMPLATES[spec.chat_template]
    return unsloth_templates()[name]


def test_every_registry_model_has_a_template_source() -> None:
    assert set(UNSLOTH_TEMPLATE) == {spec.key for spec in MODELS}


@pytest.mark.slow  # starts a Python child process
@pytest.mark.parametrize("spec", MODELS, ids=lambda spec: spec.key)
@pytest.mark.parametrize("options", [None, OPTIONS], ids=["free-text", "mcq"])
def test_prompt_carries_system_text_and_question_once(spec: ModelSpec, options: dict | None) -> None:
    prompt = render_prompt(make_tokenizer(template_for(spec)), QUESTION, options)
    assert prompt.count(SYSTEM_PROMPT) == 1, prompt
    assert prompt.count(QUESTION) == 1, prompt
    assert prompt.index(SYSTEM_PROMPT) < prompt.index(QUESTION)
    if options:
        assert all(prompt.count(f"{letter}. {text}") == 1 for letter, text in options.items())
    # Thinking is off for every model: no think block is left open for the answer to fill.
    assert prompt.count("<think>") == prompt.count("</think>"), prompt


@pytest.mark.parametrize("family", sorted(CHAT_TEMPLATES))
def test_registry_fallback_templates_keep_the_system_text(family: str) -> None:
    """Jinja loop scoping once made the Gemma and Mistral fallbacks drop the system prompt."""
    tokenizer = make_tokenizer(CHAT_TEMPLATES[family])
    chat = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": QUESTION}]
    raw = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert raw.count(SYSTEM_PROMPT) == 1 and raw.count(QUESTION) == 1, raw


def test_gemma2_own_template_raises_on_a_system_message_and_render_prompt_folds_it() -> None:
    from jinja2.exceptions import TemplateError

    tokenizer = make_tokenizer(GEMMA2_OWN)
    with pytest.raises(TemplateError, match="System role"):
        tokenizer.apply_chat_template(
            [{"role": "system", "content": "x"}, {"role": "user", "content": "y"}], tokenize=False
        )
    prompt = render_prompt(tokenizer, QUESTION)
    assert prompt.startswith(f"<s><start_of_turn>user\n{SYSTEM_PROMPT}\n\n{QUESTION}<end_of_turn>\n")
    assert prompt.endswith("<start_of_turn>model\n")


@pytest.mark.slow  # starts a Python child process
def test_qwen3_renders_with_thinking_off_unless_asked() -> None:
    tokenizer = make_tokenizer(template_for(next(s for s in MODELS if s.key == "qwen3-4b")))
    assert render_prompt(tokenizer, QUESTION).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert render_prompt(tokenizer, QUESTION, thinking=True).endswith("<|im_start|>assistant\n")


def test_deepseek_r1_prompt_closes_its_think_block_unless_thinking_is_on() -> None:
    tokenizer = make_tokenizer(CHAT_TEMPLATES["deepseek-r1"])
    assert render_prompt(tokenizer, QUESTION).endswith("<｜Assistant｜><think>\n\n</think>\n\n")
    assert render_prompt(tokenizer, QUESTION, thinking=True).endswith("<｜Assistant｜><think>\n")


def test_final_answer_strips_a_think_block() -> None:
    assert final_answer(with_thinking("K+ leaves lysed cells.", "Answer: B")) == "Answer: B"
    assert (
        final_answer("K+ leaves lysed cells.\n</think>\n\nAnswer: B") == "Answer: B"
    )  # opened by the prompt
    assert final_answer("  Answer: B ") == "Answer: B"


def test_each_family_names_its_end_of_turn_token() -> None:
    assert set(END_OF_TURN) == set(CHAT_TEMPLATES)
    assert END_OF_TURN["phi-3"] == "<|end|>" and END_OF_TURN["gemma"] == "<end_of_turn>"
