"""The one prompt every model sees, in training, in the arena and in evaluation.

Each model renders the same system and user text through its own chat template, so
differences between contestants come from the models, not from the prompt. Templates that have no
system role (Gemma-2 raises on one; some drop it) get the system text folded into the first user
turn, as Gemma-3's own template does. Reasoning models answer with thinking off unless asked:
Qwen3 through `enable_thinking=False`, DeepSeek-R1-Distill (whose prompt opens `<think>`) by closing
that block, and `final_answer` strips any think block from what is shown and scored.

    python -c "from finetune.prompt import final_answer; print(final_answer('<think>x</think> B'))"
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SYSTEM_PROMPT = (
    "You are a careful medical assistant. Answer the question accurately and concisely, "
    "in plain language suitable for a clinician."
)
MCQ_INSTRUCTION = "Choose the single best option and reply with its letter first, e.g. 'Answer: B'."


def user_text(question: str, options: Mapping[str, str] | None = None) -> str:
    """The user turn: the question, with its lettered options for multiple choice."""
    if not options:
        return question
    listed = "\n".join(f"{letter}. {text}" for letter, text in options.items())
    return f"{question}\n\n{listed}\n\n{MCQ_INSTRUCTION}"


def mcq_target(answer_letter: str, options: Mapping[str, str]) -> str:
    """The training target for a multiple-choice item: the letter, then the option's text."""
    return f"Answer: {answer_letter}. {options[answer_letter]}"


def messages(question: str, options: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """The chat messages every model sees: system prompt, then the user turn."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user_text(question, options)},
    ]


def folded_messages(question: str, options: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """The same text for templates without a system role: system text, blank line, user text."""
    return [{"role": "user", "content": f"{SYSTEM_PROMPT}\n\n{user_text(question, options)}"}]


# Changes whenever render_prompt renders the same template differently (cached answers keyed on it).
PROMPT_RENDERING = "v2: system folded where dropped or refused; thinking off"

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


def render_prompt(
    tokenizer: Any, question: str, options: Mapping[str, str] | None = None, *, thinking: bool = False
) -> str:
    """The prompt text up to where the assistant's answer starts.

    `thinking=False` (the default, for every model alike) renders Qwen3 with `enable_thinking=False`
    and closes a think block the template opens, so the answer starts at once.
    """
    from jinja2.exceptions import TemplateError

    def render(chat: list[dict[str, str]]) -> str:
        return tokenizer.apply_chat_template(
            chat, tokenize=False, add_generation_prompt=True, enable_thinking=thinking
        )

    try:
        prompt = render(messages(question, options))
    except TemplateError:  # "System role not supported" (Gemma-2) and the like
        prompt = None
    if prompt is None or SYSTEM_PROMPT not in prompt:
        prompt = render(folded_messages(question, options))
    if not thinking and prompt.rstrip().endswith(THINK_OPEN):
        prompt = prompt.rstrip() + f"\n\n{THINK_CLOSE}\n\n"
    return prompt


_THINK_BLOCK = re.compile(rf"^\s*(?:{THINK_OPEN})?.*?{THINK_CLOSE}\s*", re.DOTALL)


def final_answer(text: str) -> str:
    """The answer without a leading think block (closed, or opened by the prompt): what is shown and scored."""
    if THINK_CLOSE not in text:
        return text.strip()
    return _THINK_BLOCK.sub("", text, count=1).strip()


def with_thinking(reasoning: str, response: str) -> str:
    """A chain-of-thought training target: the reasoning in think tags, then the final response."""
    return f"{THINK_OPEN}\n{reasoning.strip()}\n{THINK_CLOSE}\n\n{response.strip()}"
