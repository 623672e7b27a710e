"""Follow-up turns: each side's view of the conversation, the stored turns and their refusals
(turn cap, length budget, PHI, after the vote, prepared battles), on a real SQLite file. The real
two-turn battle runs in tests/test_browser_judgement.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from arena.follow_ups import FollowUpSettings, transcript
from arena.service import ArenaService, BattleError, PiiDetected
from arena.store.battles import ArenaStore, VoteRejected
from arena.votes import VoteInput
from finetune.prompt import Conversation, folded_messages, messages, side_view
from tests.test_judgement import BANK, WiringBackend

SID = "session-follow-1"


def test_each_side_sees_its_own_earlier_answers() -> None:
    conversation = Conversation(
        "And in pregnancy?",
        [("What treats UTI?", "Nitrofurantoin.")],
        [("What treats UTI?", "Trimethoprim.")],
    )
    assert conversation == "And in pregnancy?"  # still the question string the contract names
    chat_a = messages(side_view(conversation, "a"))
    assert [m["role"] for m in chat_a] == ["system", "user", "assistant", "user"]
    assert chat_a[2]["content"] == "Nitrofurantoin." and chat_a[3]["content"] == "And in pregnancy?"
    assert messages(side_view(conversation, "b"))[2]["content"] == "Trimethoprim."
    folded = folded_messages(side_view(conversation, "b"))
    assert (
        folded[0]["content"].endswith("What treats UTI?") and folded[0]["role"] == "user" and len(folded) == 3
    )
    assert messages("Plain?") == messages(side_view("Plain?", "a"))  # a plain question renders as before
    with pytest.raises(ValueError):
        Conversation("q", [("a", "b")], [])


def finished_battle(store: ArenaStore, source: str = "typed") -> str:
    battle = store.create_battle(
        "What treats UTI?",
        "SmolLM2 · base",
        "SmolLM2 · LoRA run1",
        {},
        question_source=source,
        session_id=SID,
    )
    store.finish_battle(battle, "Nitrofurantoin.", "Trimethoprim.", {}, {}, identity_leak=False)
    return battle


def test_turns_are_stored_and_capped_and_the_vote_waits_for_them(tmp_path: Path) -> None:
    store = ArenaStore(tmp_path / "votes.db")
    service = ArenaService(
        WiringBackend(), store, BANK, follow_ups=FollowUpSettings(max_turns=1, max_conversation_chars=400)
    )
    battle = finished_battle(store)
    with pytest.raises(PiiDetected):
        service.ask_follow_up(battle, "Mr John Smith, DOB 03/04/1961: and him?", session_id=SID)
    with pytest.raises(BattleError, match="length budget"):
        service.ask_follow_up(battle, "Why? " * 80, session_id=SID)
    with pytest.raises(BattleError, match="does not belong"):
        service.ask_follow_up(battle, "And in pregnancy?", session_id="session-other-2")
    assert service.ask_follow_up(battle, "And in pregnancy?", session_id=SID) == 1
    with pytest.raises(BattleError, match="still being answered"):
        service.ask_follow_up(battle, "And in children?", session_id=SID)
    with pytest.raises(VoteRejected, match="follow-up is still being answered"):
        service.vote(VoteInput(battle, "model_a", session_id=SID))
    store.finish_turn(
        battle, 1, ("Avoid it near term.", "Avoid in the first trimester."), ({}, {}), identity_leak=False
    )
    with pytest.raises(BattleError, match="had its 1 follow-up"):
        service.ask_follow_up(battle, "And in children?", session_id=SID)
    [turn] = store.battle_turns(battle)
    assert (turn["question"], turn["answer_b"], turn["status"]) == (
        "And in pregnancy?",
        "Avoid in the first trimester.",
        "finished",
    )
    shown = transcript("Nitrofurantoin.", [turn], "a")
    assert "Follow-up 1:** And in pregnancy?" in shown and shown.endswith("Avoid it near term.")
    service.vote(VoteInput(battle, "model_a", session_id=SID))
    service.follow_up_settings = FollowUpSettings(max_turns=5)
    with pytest.raises(BattleError, match="already has a vote"):
        service.ask_follow_up(battle, "And in children?", session_id=SID)
    prepared = finished_battle(store, source="calibration:wrong_drug:x")
    with pytest.raises(BattleError, match="prepared in advance"):
        service.ask_follow_up(prepared, "And in children?", session_id=SID)


def test_a_backend_without_follow_ups_refuses_them_with_a_sentence(tmp_path: Path) -> None:
    class SingleTurn(WiringBackend):
        supports_follow_ups = False

    store = ArenaStore(tmp_path / "votes.db")
    service = ArenaService(SingleTurn(), store, BANK)
    with pytest.raises(BattleError, match="does not take follow-up questions"):
        service.ask_follow_up(finished_battle(store), "And in pregnancy?", session_id=SID)
