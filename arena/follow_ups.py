"""Follow-up turns: after both answers, the clinician may ask up to `max_turns` follow-ups before
voting. Each contestant answers with the whole conversation in its own chat template (its own
earlier answers as the assistant turns: `finetune.prompt.Conversation`), every follow-up passes the
same question checks and PHI check as the first question, the conversation has a length budget,
and each turn's answers are stored (`battle_turns`). The vote is cast on the whole conversation.

    started = service.follow_ups.ask(battle_id, "And in pregnancy?", session_id=sid)
    for progress in service.follow_ups.stream(battle_id, sid): ...   # whole transcripts per side

Run as: python -m pytest tests/test_follow_ups.py -q
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arena.integrity import leaks_identity, validate_question
from arena.pii import find_pii, redact
from arena.store_judgement import TurnRefused
from finetune.prompt import Conversation

if TYPE_CHECKING:
    from arena.service import ArenaService, BattleProgress


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


class FollowUps:
    """The service's follow-up turns (it holds one)."""

    def __init__(self, service: ArenaService, settings: FollowUpSettings | None = None) -> None:
        self.service = service
        self.settings = settings or FollowUpSettings()

    def ask(
        self, battle_id: str, question: str, *, session_id: str, confirmed_no_patient_data: bool = False
    ) -> int:
        """Check and store a follow-up; returns its turn number. Raises QuestionRejected, PiiDetected
        (nothing stored) or BattleError with a sentence."""
        from arena.service import BattleError, PiiDetected

        service = self.service
        if not getattr(service.engine, "supports_follow_ups", False):
            raise BattleError(f"The {service.engine.kind} backend here does not take follow-up questions.")
        text = validate_question(question)
        findings = find_pii(text)
        if findings and not confirmed_no_patient_data:
            raise PiiDetected(findings, redact(text, findings))
        with service._stored(consequence="Nothing was stored; please try again."):  # the storage sentence
            battle = service.store.get_battle(battle_id)
            if battle is None or battle.session_id != session_id:
                raise BattleError("This battle does not belong to this session; start a new battle.")
            turns = [turn for turn in service.store.battle_turns(battle_id) if turn["status"] == "finished"]
        used = (
            len(battle.question)
            + len(battle.answer_a or "")
            + len(battle.answer_b or "")
            + sum(len(turn["question"]) + len(turn["answer_a"]) + len(turn["answer_b"]) for turn in turns)
        )
        if used + len(text) > self.settings.max_conversation_chars:
            raise BattleError(
                f"This conversation has reached its length budget ({used:,} of "
                f"{self.settings.max_conversation_chars:,} characters); please vote, then start a new battle."
            )
        try:
            with service._stored(consequence="Nothing was stored; please try again."):
                turn = service.store.add_turn(battle_id, session_id, text, self.settings.max_turns)
        except TurnRefused as error:
            raise BattleError(str(error)) from None
        with service._running_lock:
            service._running[battle_id] = (time.perf_counter(), threading.Event())
        return turn

    def stream(self, battle_id: str, session_id: str) -> Iterator[BattleProgress]:
        """Answer the battle's generating follow-up with both contestants; yields both transcripts.
        Every way out leaves the turn finished or voided; the battle's earlier turns stay votable."""
        from arena.service import BattleError, BattleProgress

        service = self.service
        with service._stored(consequence="The follow-up was not answered."):
            battle = service.store.get_battle(battle_id)
            turns = service.store.battle_turns(battle_id)
        if battle is None or battle.session_id != session_id:
            raise BattleError("This battle does not belong to this session; start a new battle.")
        current = next((turn for turn in turns if turn["status"] == "generating"), None)
        if current is None:
            raise BattleError("No follow-up is waiting for answers.")
        earlier = [turn for turn in turns if turn["status"] == "finished" and turn["turn"] < current["turn"]]
        shown = [*earlier, current]
        history = {
            side: [(battle.question, getattr(battle, f"answer_{side}") or "")]
            + [(turn["question"], turn[f"answer_{side}"]) for turn in earlier]
            for side in ("a", "b")
        }
        conversation = Conversation(current["question"], history["a"], history["b"])
        with service._running_lock:
            requested_at, cancel = service._running.get(battle_id, (None, threading.Event()))
        pair = service.engine.stream_pair(
            conversation, battle.contestant_a, battle.contestant_b, service.settings, requested_at
        )
        last = None
        finished = False
        try:
            for update in pair:
                if cancel.is_set():
                    yield BattleProgress("", "", True, True, "This follow-up was cancelled.", cancelled=True)
                    return
                last = update
                yield BattleProgress(
                    transcript(battle.answer_a or "", shown, "a", update.a.text),
                    transcript(battle.answer_b or "", shown, "b", update.b.text),
                    finished=False,
                )
            failure = service._failure(last)
            if failure:
                service.store.void_turn(battle_id, current["turn"], failure)
                yield BattleProgress(
                    transcript(battle.answer_a or "", earlier, "a"),
                    transcript(battle.answer_b or "", earlier, "b"),
                    True,
                    True,
                    "A model failed to answer the follow-up; you can still vote on the answers above.",
                )
                return
            answers = (last.a.text, last.b.text)
            try:
                service.store.finish_turn(
                    battle_id,
                    current["turn"],
                    answers,
                    (last.a.telemetry.to_dict(), last.b.telemetry.to_dict()),
                    identity_leak=leaks_identity(answers[0]) or leaks_identity(answers[1]),
                )
            except TurnRefused:
                yield BattleProgress("", "", True, True, "This follow-up was cancelled.", cancelled=True)
                return
            finished = True
            done = {**current, "status": "finished", "answer_a": answers[0], "answer_b": answers[1]}
            yield BattleProgress(
                transcript(battle.answer_a or "", [*earlier, done], "a"),
                transcript(battle.answer_b or "", [*earlier, done], "b"),
                finished=True,
            )
        finally:
            pair.close()
            with service._running_lock:
                service._running.pop(battle_id, None)
            if not finished:
                service.store.void_turn(battle_id, current["turn"], "the follow-up did not finish")
