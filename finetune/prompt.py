"""The one prompt every model sees, in training, in the arena and in evaluation.

Each model renders the same system and user text through its own chat template, so
differences between contestants come from the models, not from the prompt. Templates that have no
system role (Gemma-2 raises on one; some drop it) get the system text folded into the first user
turn, as Gemma-3's own template does. Reasoning models answer with thinking off unless asked:
Qwen3 through `enable_thinking=False`, DeepSeek-R1-Distill (whose prompt opens `<think>`) by closing
that block, and `final_answer` strips any think block from what is shown and scored.

    python -c "from finetune.prompt import final_answer; print(final_answer('<think>x</think> B'))"

Follow-up turns: a `Conversation` is a `str` (the latest question) that also carries the earlier
turns each side saw. `side_view(question, "a")` gives side A's view, whose earlier turns `messages`
and `render_prompt` render as user/assistant turns in the model's own template; a plain string
renders exactly as before, so every backend keeps the `stream_pair(question: str, ...)` contract.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

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


class Conversation(str):
    """The latest question of a battle (its `str` value) with the earlier (question, answer) turns
    of each side: side A's own earlier answers are what A sees, B's what B sees."""

    history_a: tuple[tuple[str, str], ...]
    history_b: tuple[tuple[str, str], ...]

    def __new__(
        cls,
        question: str,
        history_a: Sequence[tuple[str, str]] = (),
        history_b: Sequence[tuple[str, str]] = (),
    ) -> Conversation:
        conversation = super().__new__(cls, question)
        conversation.history_a = tuple((str(q), str(a)) for q, a in history_a)
        conversation.history_b = tuple((str(q), str(a)) for q, a in history_b)
        if len(conversation.history_a) != len(conversation.history_b):
            raise ValueError("both sides of a conversation have the same number of earlier turns")
        return conversation


class SideView(str):
    """One side's view of a conversation: the latest question with that side's earlier turns."""

    history: tuple[tuple[str, str], ...]

    def __new__(cls, question: str, history: Sequence[tuple[str, str]]) -> SideView:
        view = super().__new__(cls, question)
        view.history = tuple(history)
        return view


def side_view(question: str, side: Literal["a", "b"]) -> str:
    """What side `side` is asked: a plain question as it is, a Conversation as that side's view."""
    if isinstance(question, Conversation):
        return SideView(str(question), question.history_a if side == "a" else question.history_b)
    return question


def _history(question: str) -> tuple[tuple[str, str], ...]:
    return question.history if isinstance(question, SideView) else ()


def _turns(question: str) -> list[dict[str, str]]:
    return [
        message
        for asked, answered in _history(question)
        for message in ({"role": "user", "content": asked}, {"role": "assistant", "content": answered})
    ]


def messages(question: str, options: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """The chat messages every model sees: system prompt, earlier turns of a follow-up, the user turn."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        *_turns(question),
        {"role": "user", "content": user_text(str(question), options)},
    ]


def folded_messages(question: str, options: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """The same text for templates without a system role: the system text, a blank line, then the
    first user turn."""
    chat = [*_turns(question), {"role": "user", "content": user_text(str(question), options)}]
    chat[0] = {"role": "user", "content": f"{SYSTEM_PROMPT}\n\n{chat[0]['content']}"}
    return chat


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
