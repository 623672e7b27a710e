"""Follow-up turns: after both answers, the clinician may ask up to `max_turns` follow-ups before
voting. Each contestant answers with the whole conversation in its own chat template (its own
earlier answers as the assistant turns: `finetune.prompt.Conversation`), every follow-up passes the
same question checks and PHI check as the first question, the conversation has a length budget,
and each turn's answers are stored (`battle_turns`). The vote is cast on the whole conversation.

    started = service.ask_follow_up(battle_id, "And in pregnancy?", session_id=sid)
    for progress in service.stream_follow_up(battle_id, sid): ...   # whole transcripts per side

The service runs the turns (`ArenaService.ask_follow_up`, `.stream_follow_up`); this module holds
their settings and the pure pieces: the conversation's length, each side's history, the transcript.

Run as: python -m pytest tests/test_follow_ups.py -q
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from arena.store.protocol import BattleRow
from finetune.prompt import Conversation


@dataclass(frozen=True)
class FollowUpSettings:
    """How many follow-ups a battle takes and how long its conversation may grow (characters of every
    question and answer so far, about 4 per token: what keeps the prompt inside small contexts)."""

    max_turns: int = 2
    max_conversation_chars: int = 6000

    def __post_init__(self) -> None:
        if not 0 <= self.max_turns <= 10:
            raise ValueError(f"max_turns must lie in [0, 10], got {self.max_turns}.")
        if self.max_conversation_chars < 200:
            raise ValueError("max_conversation_chars must be at least 200.")


def transcript(first_answer: str, turns: list[dict[str, Any]], side: str, current: str | None = None) -> str:
    """What one side's answer box shows: the first answer, then each follow-up and its answer."""
    parts = [first_answer]
    for turn in turns:
        answer = turn[f"answer_{side}"] if turn["status"] == "finished" else current
        parts.append(f"\n\n---\n**Follow-up {turn['turn']}:** {turn['question']}\n\n{answer or ''}")
    return "".join(parts)


def conversation_chars(battle: BattleRow, finished_turns: Sequence[dict[str, Any]]) -> int:
    """The characters of every question and answer so far: what the length budget counts."""
    return (
        len(battle.question)
        + len(battle.answer_a or "")
        + len(battle.answer_b or "")
        + sum(
            len(turn["question"]) + len(turn["answer_a"]) + len(turn["answer_b"]) for turn in finished_turns
        )
    )


def conversation(battle: BattleRow, earlier: Sequence[dict[str, Any]], question: str) -> Conversation:
    """The follow-up `question` with each side's own earlier answers as its assistant turns."""
    history = {
        side: [(battle.question, getattr(battle, f"answer_{side}") or "")]
        + [(turn["question"], turn[f"answer_{side}"]) for turn in earlier]
        for side in ("a", "b")
    }
    return Conversation(question, history["a"], history["b"])
