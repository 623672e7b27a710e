"""The one prompt every model sees, in training, in the arena and in evaluation.

Each model renders the same system and user text through its own chat template, so
differences between contestants come from the models, not from the prompt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SYSTEM_PROMPT = (
    "You are a careful medical assistant. Answer the question accurately and concisely, "
    "in plain language suitable for a clinician."
)
MCQ_INSTRUCTION = "Choose the single best option and reply with its letter first, e.g. 'Answer: B'."


def user_text(question: str, options: Mapping[str, str] | None = None) -> str:
    if not options:
        return question
    listed = "\n".join(f"{letter}. {text}" for letter, text in options.items())
    return f"{question}\n\n{listed}\n\n{MCQ_INSTRUCTION}"


def mcq_target(answer_letter: str, options: Mapping[str, str]) -> str:
    """The training target for a multiple-choice item: the letter, then the option's text."""
    return f"Answer: {answer_letter}. {options[answer_letter]}"


def messages(question: str, options: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user_text(question, options)},
    ]


def render_prompt(tokenizer: Any, question: str, options: Mapping[str, str] | None = None) -> str:
    """The prompt text up to where the assistant's answer starts."""
    return tokenizer.apply_chat_template(
        messages(question, options), tokenize=False, add_generation_prompt=True
    )
