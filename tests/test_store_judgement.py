"""The judgement tables (arena/store/judgement_tables.py) on both stores: every test runs on a SQLite file and,
in the slow tier, on a fresh database of a real, throwaway Postgres server (the fixtures of
tests/test_store.py). Rubrics once per answer, vote quality overwritten in place, single-use invite
codes, follow-up turns capped and voided, re-served battles and their agreement items.

Run as: python -m pytest tests/test_store_judgement.py -q            (SQLite only)
        python -m pytest tests/test_store_judgement.py -q -m slow    (Postgres)
"""

# ruff: noqa: F811 - the tests take the fixtures imported from tests/test_store.py as arguments

from __future__ import annotations

import pytest

from arena.rubric import SideRubric
from arena.store.judgement_tables import RESERVE_SOURCE, InviteRefused, RubricRefused, TurnRefused
from arena.store.protocol import VoteStore
from arena.votes import VoteInput
from tests.test_store import SESSION, db_path, finished_battle, location, reopen, store  # noqa: F401

OTHER_SESSION = "session-test-2"


def voted_battle(store: VoteStore, outcome: str = "model_a", session_id: str = SESSION, **fields: str) -> str:
    battle = store.create_battle(
        fields.get("question", "First-line treatment for uncomplicated UTI?"),
        "smollm2-lora",
        "gemma3-base",
        {},
        question_source=fields.get("question_source", "bank:mqa-0012"),
        session_id=session_id,
        contestant_a_id="smollm2-135m/run1",
        contestant_b_id="gemma3-270m/base",
    )
    store.finish_battle(battle, "Nitrofurantoin.", "Amoxicillin.", {}, {}, identity_leak=False)
    store.record_vote(VoteInput(battle, outcome, session_id=session_id))
    return battle


def quality(store: VoteStore, battle: str, rater: str, calibration_correct: bool | None = None) -> None:
    store.record_vote_quality(
        battle,
        rater_id=rater,
        rater_source="session",
        client_id="client-hash",
        dwell_s=30.0,
        min_dwell_s=10.0,
        calibration_correct=calibration_correct,
    )


def test_a_rubric_is_stored_once_per_answer(store: VoteStore) -> None:
    battle = voted_battle(store)
    severe = {"a": SideRubric.parse({"harm_severity": "severe"}, ["unsafe dose"])}
    with pytest.raises(RubricRefused, match="another session"):
        store.record_rubric(battle, OTHER_SESSION, severe)
    assert store.record_rubric(battle, SESSION, {**severe, "b": SideRubric.parse({"clarity": "clear"})}) == 2
    with pytest.raises(RubricRefused, match="already has a rubric"):
        store.record_rubric(battle, SESSION, severe)
    rows = store.rubric_rows()
    assert [(row["side"], row["contestant_id"], row["harm_severity"], row["reasons"]) for row in rows] == [
        ("a", "smollm2-135m/run1", "severe", ["unsafe dose"]),
        ("b", "gemma3-270m/base", None, []),
    ]
    calibration = voted_battle(store, question_source="calibration:mqa-0001", question="Another?")
    store.record_rubric(calibration, SESSION, severe)
    assert len(store.rubric_rows()) == 2  # calibration battles stay off the rubric board


def test_vote_quality_is_one_record_per_battle_and_calibration_results_read_back(
    store: VoteStore,
) -> None:
    battle = voted_battle(store)
    quality(store, battle, "rater-1", calibration_correct=False)
    quality(store, battle, "rater-1", calibration_correct=True)  # overwritten, not added
    records = store.vote_quality()
    assert list(records) == [battle] and records[battle]["too_fast"] == 0
    assert store.calibration_results() == [("rater-1", True)]


def test_an_invite_code_verifies_one_rater_once(store: VoteStore) -> None:
    code = store.create_invite("physician")
    with pytest.raises(InviteRefused, match="not a role"):
        store.create_invite("wizard")
    with pytest.raises(InviteRefused, match="not known"):
        store.redeem_invite(code + "x")
    rater_id, role = store.redeem_invite(code)
    assert role == "physician" and store.verified_raters() == {rater_id: "physician"}
    with pytest.raises(InviteRefused, match="already used"):
        store.redeem_invite(code)


def test_follow_up_turns_are_capped_finished_and_voided(store: VoteStore) -> None:
    battle = finished_battle(store)
    with pytest.raises(TurnRefused, match="does not belong"):
        store.add_turn(battle, OTHER_SESSION, "And in pregnancy?", 2)
    assert store.add_turn(battle, SESSION, "And in pregnancy?", 2) == 1
    assert store.turn_generating(battle)
    with pytest.raises(TurnRefused, match="still being answered"):
        store.add_turn(battle, SESSION, "And in children?", 2)
    store.finish_turn(battle, 1, ("Cefalexin.", "Nitrofurantoin."), ({"latency_s": 1.0}, {}), False)
    assert not store.turn_generating(battle)
    assert store.add_turn(battle, SESSION, "And in renal failure?", 2) == 2
    assert store.void_turn(battle, 2, "the model failed") and not store.void_turn(battle, 2, "again")
    with pytest.raises(TurnRefused, match="cancelled"):
        store.finish_turn(battle, 2, ("late", "late"), ({}, {}), True)
    assert store.add_turn(battle, SESSION, "And in the elderly?", 2) == 3
    store.finish_turn(battle, 3, ("Fosfomycin, named by Qwen.", "Pivmecillinam."), ({}, {}), True)
    with pytest.raises(TurnRefused, match="had its 2 follow-ups"):
        store.add_turn(battle, SESSION, "And a fourth?", 2)
    turns = store.battle_turns(battle)
    assert [(turn["turn"], turn["status"], turn["answer_a"]) for turn in turns] == [
        (1, "finished", "Cefalexin."),
        (2, "voided", None),
        (3, "finished", "Fosfomycin, named by Qwen."),
    ]
    assert store.get_battle(battle).identity_leak  # a turn that names a model leaks the battle


def test_re_served_battles_yield_agreement_items(store: VoteStore) -> None:
    original = voted_battle(store, "model_a")
    quality(store, original, "rater-1")
    assert store.reserve_candidate("rater-1", 0.0) is None  # never the rater's own vote
    candidate = store.reserve_candidate("rater-2", 0.5)
    assert candidate is not None and candidate["id"] == original
    again = voted_battle(store, "model_b", OTHER_SESSION, question_source=f"{RESERVE_SOURCE}{original}")
    quality(store, again, "rater-2")
    assert store.reserve_candidate("rater-2", 0.0) is None  # already re-served to this rater
    assert store.agreement_items() == [
        {"battle_id": original, "category": None, "outcomes": ["model_a", "model_b"]}
    ]
