"""The arena service end to end on a real tiny model and a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from arena.engine import ArenaEngine, GenerationSettings
from arena.integrity import QuestionRejected
from arena.metrics import bertscore, load_bert_scorer, resolve_scoring_model
from arena.service import ArenaService, BattleError
from arena.store import ArenaStore, VoteRejected
from finetune.data import load_dataset_source

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(tiny_adapters: Path) -> ArenaEngine:
    return ArenaEngine.start(adapters_dir=tiny_adapters, model_keys=["smollm2-135m"])


@pytest.fixture(scope="module")
def reference_scorer():
    scorer = load_bert_scorer(resolve_scoring_model("offline"))
    return lambda answers, references: bertscore(answers, references, scorer).f1


@pytest.fixture()
def service(engine: ArenaEngine, reference_scorer, tmp_path: Path) -> ArenaService:
    bank = load_dataset_source("bundled").records
    return ArenaService(
        engine,
        ArenaStore(tmp_path / "votes.db"),
        bank,
        settings=GenerationSettings(max_new_tokens=12),
        reference_scorer=lambda answers, refs: [
            float(len(a) > 0) * 0.5 + i * 0.1 for i, a in enumerate(answers)
        ],
        seed=7,
        bootstrap_rounds=50,
    )


def run_battle(service: ArenaService, question: str, bank_id: str | None = None) -> str:
    started = service.start_battle(question, bank_id)
    progress = list(service.stream_battle(started.battle_id))
    assert progress[-1].finished and not progress[-1].voided, progress[-1].message
    return started.battle_id


def test_engine_serves_base_and_adapter_on_one_resident_base(engine: ArenaEngine) -> None:
    names = engine.contestant_names()
    assert len(names) == 2
    assert any("LoRA" in n for n in names) and any("· base ·" in n for n in names)
    assert engine.base_for(names[0]) is engine.base_for(names[1])  # one resident base, two adapters by name


def test_full_battle_vote_reveal_and_leaderboard(service: ArenaService, tmp_path: Path) -> None:
    drawn = service.random_question()
    battle_id = run_battle(service, drawn.question, drawn.id)
    stored = service.store.get_battle(battle_id)
    assert stored is not None and stored.status == "finished"
    assert stored.answer_a and stored.answer_b
    assert stored.category == drawn.category and stored.reference_answer == drawn.reference
    assert 0 < stored.bertscore_a < 1 and 0 < stored.bertscore_b < 1  # scored against the bank's reference
    for telemetry in (stored.telemetry_a, stored.telemetry_b):
        assert (
            telemetry["output_tokens"] > 0 and telemetry["latency_s"] > 0 and telemetry["peak_memory_mb"] > 0
        )
        assert telemetry["batched_with_other_side"] is True  # same base: one mixed-adapter batch

    before = service.leaderboard()
    assert before.votes == 0 and all(row[0] == "" for row in before.rows)

    reveal = service.vote(
        battle_id,
        "model_a",
        flag_b_incorrect=True,
        rationale="<b>A</b> cites guidance",
        voter_specialty="cardiology",
    )
    assert {reveal.contestant_a, reveal.contestant_b} == set(service.engine.contestant_names())
    assert reveal.counted

    after = service.leaderboard()
    assert after.votes == 1
    ranked = {row[1]: row for row in after.rows}
    # The winner's Elo is higher.
    assert float(ranked[reveal.contestant_a][3]) > float(ranked[reveal.contestant_b][3])
    assert after.specialties == ["cardiology"]
    assert service.leaderboard(specialty="neurology").votes == 0
    with sqlite3.connect(service.store.path) as db:
        assert db.execute("SELECT rationale FROM votes").fetchall() == [("<b>A</b> cites guidance",)]

    csv_path, jsonl_path = service.export_votes(tmp_path / "export")
    assert "cites guidance" in csv_path.read_text() and jsonl_path.read_text().count("\n") == 1


@pytest.mark.parametrize("question", ["", "   \n ", "x" * 4001])
def test_bad_questions_are_refused_and_nothing_is_stored(service: ArenaService, question: str) -> None:
    with pytest.raises(QuestionRejected):
        service.start_battle(question)
    assert service.store.contestant_battle_counts() == {}


def test_vote_integrity(service: ArenaService) -> None:
    started = service.start_battle("What causes iron deficiency anaemia?")
    with pytest.raises(VoteRejected):  # answers not finished yet
        service.vote(started.battle_id, "tie")
    list(service.stream_battle(started.battle_id))
    with pytest.raises(VoteRejected):
        service.vote("0" * 32, "tie")  # forged id
    with pytest.raises(VoteRejected):
        service.vote(started.battle_id, "model_c")
    service.vote(started.battle_id, "both_bad")
    with pytest.raises(VoteRejected):
        service.vote(started.battle_id, "model_a")  # double vote
    with pytest.raises(BattleError):
        list(service.stream_battle(started.battle_id))  # a finished battle is not generated twice
    assert service.store.vote_count() == 1


def test_a_contestant_failing_mid_answer_voids_the_battle_and_others_keep_working(
    service: ArenaService,
) -> None:
    model = service.engine.base_for(service.engine.contestant_names()[0]).loaded.model
    calls = {"n": 0}

    def fail_after_a_few_tokens(module, args, output):  # fault injection into the real model
        calls["n"] += 1
        if calls["n"] > 3:
            raise MemoryError("simulated out of memory")

    hook = model.get_decoder().register_forward_hook(fail_after_a_few_tokens)
    try:
        started = service.start_battle("How is asthma diagnosed?")
        progress = list(service.stream_battle(started.battle_id))
    finally:
        hook.remove()
    assert progress[-1].voided and "voided" in progress[-1].message
    battle = service.store.get_battle(started.battle_id)
    assert battle is not None and battle.status == "voided" and "MemoryError" in (battle.void_reason or "")
    with pytest.raises(VoteRejected):
        service.vote(started.battle_id, "model_a")
    run_battle(service, "How is asthma diagnosed?")  # the arena keeps working


def test_under_voted_contestants_are_favoured_and_sides_randomised(service: ArenaService) -> None:
    names = service.engine.contestant_names()
    sides = {service.start_battle("What is sepsis?").battle_id for _ in range(12)}
    first_sides = {service.store.get_battle(b).contestant_a for b in sides}
    assert first_sides == set(names)  # both contestants appear on side A
