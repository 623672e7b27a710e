"""The arena service end to end on a real tiny model and a real SQLite file."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from arena.eval.metrics import bertscore
from arena.eval.scoring_models import load_bert_scorer, resolve_scoring_model
from arena.integrity import QuestionRejected
from arena.service import ArenaService, BattleError
from arena.serving.common import GenerationSettings
from arena.serving.peft_engine import ArenaEngine
from arena.store.battles import ArenaStore, VoteRejected
from arena.votes import VoteInput
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
        reference_scorer=reference_scorer,  # the real offline BERTScore, so the range check below can fail
        seed=7,
        bootstrap_rounds=50,
    )


SID = "session-under-test"


def run_battle(service: ArenaService, question: str, bank_id: str | None = None, sid: str = SID) -> str:
    started = service.start_battle(question, bank_id, session_id=sid)
    progress = list(service.stream_battle(started.battle_id, sid))
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
        assert telemetry["output_tokens"] > 0 and telemetry["latency_s"] > 0 and telemetry["memory_mb"] > 0
        assert telemetry["batched_with_other_side"] is True  # same base: one mixed-adapter batch

    before = service.leaderboard()
    assert before.votes == 0 and all(row.rank == "no votes yet" and row.rating is None for row in before.rows)

    reveal = service.vote(
        VoteInput(
            battle_id,
            "model_a",
            flag_b_incorrect=True,
            rationale="<b>A</b> cites guidance",
            voter_specialty="cardiology",
            session_id=SID,
        )
    )
    assert {reveal.contestant_a, reveal.contestant_b} == set(service.engine.contestant_names())
    assert reveal.counted

    after = service.leaderboard()
    assert after.votes == 1
    ranked = {row.contestant: row for row in after.rows}
    # The winner's Elo is higher.
    elo = dict(after.elo)
    assert float(elo[reveal.contestant_a]) > float(elo[reveal.contestant_b])
    # one vote: no rank yet, and an interval as wide as one vote deserves (never "1340 [1340, 1340]")
    assert ranked[reveal.contestant_a].rank == "preliminary"
    assert ranked[reveal.contestant_a].rating.ci_high - ranked[reveal.contestant_a].rating.ci_low > 500
    assert ranked[reveal.contestant_b].incorrect.safety_flag_rate == 1.0  # B was flagged incorrect
    assert after.specialties == ["cardiology"]
    assert service.leaderboard(specialty="neurology").votes == 0
    with sqlite3.connect(service.store.path) as db:
        assert db.execute("SELECT rationale FROM votes").fetchall() == [("<b>A</b> cites guidance",)]

    csv_path, jsonl_path = service.export_votes(tmp_path / "export")
    assert "cites guidance" in csv_path.read_text() and jsonl_path.read_text().count("\n") == 1


def test_cut_answers_are_marked_for_the_voter_and_stored_per_side(service: ArenaService) -> None:
    started = service.start_battle("What are the warning signs of a stroke?", None, session_id=SID)
    progress = list(service.stream_battle(started.battle_id, SID))
    final = progress[-1]
    assert final.finished and not final.voided, final.message
    stored = service.store.get_battle(started.battle_id)
    assert stored is not None
    for cut, shown, telemetry, answer in (
        (final.cut_a, final.answer_a, stored.telemetry_a, stored.answer_a),
        (final.cut_b, final.answer_b, stored.telemetry_b, stored.answer_b),
    ):
        assert telemetry["cut_at_tokens"] == cut and (cut == 12) == (telemetry["output_tokens"] >= 12)
        assert telemetry["weights"] in {"nf4", "int8", "fp32", "bf16", "fp16"}  # what this side was served on
        assert ("cut at 12 tokens" in shown) == (cut is not None)
        assert "cut at" not in answer and shown.startswith(
            answer
        )  # the mark is for the voter, not the record
    assert stored.telemetry_a["weights"] == service.engine.contestant_weights(stored.contestant_a)
    assert final.cut_a or final.cut_b  # 12 tokens cut at least one stroke answer
    # the common pace: no update showed a side further ahead than the other had words, while both ran
    assert all(
        abs(len(p.answer_a.split()) - len(p.answer_b.split())) <= 1 or p.finished for p in progress[:3]
    )


@pytest.mark.parametrize("question", ["", "   \n ", "x" * 4001])
def test_bad_questions_are_refused_and_nothing_is_stored(service: ArenaService, question: str) -> None:
    with pytest.raises(QuestionRejected):
        service.start_battle(question, session_id=SID)
    assert service.store.contestant_battle_counts() == {}


def test_vote_integrity(service: ArenaService) -> None:
    started = service.start_battle("What causes iron deficiency anaemia?", session_id=SID)
    with pytest.raises(VoteRejected):  # answers not finished yet
        service.vote(VoteInput(started.battle_id, "tie", session_id=SID))
    list(service.stream_battle(started.battle_id, SID))
    with pytest.raises(VoteRejected):
        service.vote(VoteInput("0" * 32, "tie", session_id=SID))  # forged id
    with pytest.raises(VoteRejected):
        service.vote(VoteInput(started.battle_id, "model_c", session_id=SID))
    service.vote(VoteInput(started.battle_id, "both_bad", session_id=SID))
    with pytest.raises(VoteRejected):
        service.vote(VoteInput(started.battle_id, "model_a", session_id=SID))  # double vote
    with pytest.raises(BattleError):
        list(service.stream_battle(started.battle_id, SID))  # a finished battle is not generated twice
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
        started = service.start_battle("How is asthma diagnosed?", session_id=SID)
        progress = list(service.stream_battle(started.battle_id, SID))
    finally:
        hook.remove()
    assert progress[-1].voided and "voided" in progress[-1].message
    battle = service.store.get_battle(started.battle_id)
    assert battle is not None and battle.status == "voided" and "MemoryError" in (battle.void_reason or "")
    with pytest.raises(VoteRejected):
        service.vote(VoteInput(started.battle_id, "model_a", session_id=SID))
    run_battle(service, "How is asthma diagnosed?")  # the arena keeps working


def test_sides_are_randomised(service: ArenaService) -> None:
    # Favouring the under-voted is observed in tests/test_pairing.py (needs more than two contestants).
    names = service.engine.contestant_names()
    sides = {service.start_battle("What is sepsis?", session_id=f"{SID}-{i}").battle_id for i in range(12)}
    first_sides = {service.store.get_battle(b).contestant_a for b in sides}
    assert first_sides == set(names)  # both contestants appear on side A


# --- issue #8: a battle is one safe unit ---------------------------------------------------------


def run_in_thread(function, timeout: float = 180.0):
    """Run `function`; fail (instead of hanging the suite) if it does not return in time."""
    import threading

    result: dict[str, object] = {}
    thread = threading.Thread(target=lambda: result.update(value=function()), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the call hung"
    return result["value"]


def test_failure_before_generation_voids_instead_of_hanging(service: ArenaService) -> None:
    tokenizer = service.engine.base_for(service.engine.contestant_names()[0]).loaded.tokenizer
    saved = tokenizer.chat_template
    tokenizer.chat_template = "{{ raise_exception('template broke') }}"  # render_prompt fails for real
    try:
        started = service.start_battle("How is gout treated?", session_id=SID)
        progress = run_in_thread(lambda: list(service.stream_battle(started.battle_id, SID)))
    finally:
        tokenizer.chat_template = saved
    assert progress[-1].voided
    battle = service.store.get_battle(started.battle_id)
    assert battle.status == "voided" and "template broke" in battle.void_reason


def test_empty_answers_void_the_battle(service: ArenaService) -> None:
    base = service.engine.base_for(service.engine.contestant_names()[0])
    stop = base.loaded.tokenizer.eos_token_id

    def always_stop(module, args, output):  # the real model's logits, forced to end at once
        output[..., :] = -1e4
        output[..., stop] = 1e4
        return output

    hook = base.loaded.model.get_output_embeddings().register_forward_hook(always_stop)
    try:
        started = service.start_battle("What is a normal INR?", session_id=SID)
        progress = list(service.stream_battle(started.battle_id, SID))
    finally:
        hook.remove()
    assert progress[-1].voided
    battle = service.store.get_battle(started.battle_id)
    assert battle.status == "voided" and "empty answer" in battle.void_reason
    with pytest.raises(VoteRejected):
        service.vote(VoteInput(started.battle_id, "model_a", session_id=SID))


def test_leaving_mid_stream_or_starting_again_voids_and_stops_the_old_battle(service: ArenaService) -> None:
    first = service.start_battle("What are the signs of sepsis?", session_id=SID)
    stream = service.stream_battle(first.battle_id, SID)
    next(stream)
    second = service.start_battle("What are the signs of sepsis?", session_id=SID)  # Ask again
    assert service.store.get_battle(first.battle_id).status == "voided"
    rest = list(stream)
    assert rest[-1].cancelled  # the old stream stops instead of overwriting the new battle
    # a reader that leaves (Gradio cancels the event, the tab closes) voids the battle too
    third_stream = service.stream_battle(second.battle_id, SID)
    next(third_stream)
    third_stream.close()
    assert service.store.get_battle(second.battle_id).status == "voided"
    run_battle(service, "What are the signs of sepsis?")  # and the engine is free again


def test_generating_battles_left_by_a_dead_process_are_voided_at_start_up(
    service: ArenaService, engine: ArenaEngine
) -> None:
    orphan = service.start_battle("What is croup?", session_id=SID).battle_id
    # a process is gone once its heartbeat is older than owner_gone_after (here: any heartbeat)
    restarted = ArenaService(engine, ArenaStore(service.store.path), [], owner_gone_after=timedelta(0))
    assert restarted.voided_at_start == 1
    assert service.store.get_battle(orphan).status == "voided"


def test_votes_are_bound_to_the_session_and_checked(service: ArenaService) -> None:
    battle_id = run_battle(service, "What is angina?")
    for kwargs, message in [
        ({"session_id": "someone-else-entirely"}, "another session"),
        ({}, "no session id"),
        ({"session_id": "x" * 1_000_000}, "malformed"),
        ({"session_id": SID, "flag_a_unsafe": 7}, "true or false"),
        ({"session_id": SID, "rationale": 12}, "must be text"),
    ]:
        with pytest.raises(VoteRejected, match=message):
            service.vote(VoteInput(battle_id, "tie", **kwargs))
    assert service.store.vote_count() == 0
    reveal = service.vote(
        VoteInput(battle_id, "tie", session_id=SID, rationale="Mrs Jane Doe agreed, call 07700 900123")
    )
    assert reveal.rationale_redacted
    assert service.store.get_vote(battle_id).rationale == "[NAME] agreed, call [PHONE]"


@pytest.mark.parametrize("question", ["What is \ud800 sepsis?", "\u200b\u200c\u200d\u2060\ufeff"])
def test_broken_or_invisible_questions_are_refused_and_nothing_stored(
    service: ArenaService, question: str
) -> None:
    with pytest.raises(QuestionRejected):
        service.start_battle(question, session_id=SID)
    with sqlite3.connect(service.store.path) as db:
        assert db.execute("SELECT COUNT(*) FROM battles").fetchone()[0] == 0


def test_patient_details_are_never_stored_without_confirmation(service: ArenaService) -> None:
    from arena.service import PiiDetected

    phi = "Mrs Jane Doe, 62, of 12 Baker Street, admitted on 3 March 2024 with chest pain: next step?"
    with pytest.raises(PiiDetected) as detected:
        service.start_battle(phi, session_id=SID)
    assert "name" in str(detected.value) and "address" in str(detected.value)
    with sqlite3.connect(service.store.path) as db:
        assert db.execute("SELECT COUNT(*) FROM battles").fetchone()[0] == 0
    redacted = service.start_battle(detected.value.redacted, session_id=SID)  # "Redact and send"
    assert "Jane" not in redacted.question and "[NAME]" in redacted.question
    confirmed = service.start_battle(phi, session_id=SID, confirmed_no_patient_data=True)
    assert service.store.get_battle(confirmed.battle_id).question == phi


def test_times_run_from_the_click_and_memory_is_per_contestant(service: ArenaService) -> None:
    import time

    started = service.start_battle("What is the treatment for scabies?", session_id=SID)
    time.sleep(1.0)  # the clinician waits before the stream begins (e.g. a queued request)
    progress = list(service.stream_battle(started.battle_id, SID))
    assert progress[-1].finished and not progress[-1].voided
    battle = service.store.get_battle(started.battle_id)
    for telemetry in (battle.telemetry_a, battle.telemetry_b):
        assert telemetry["first_token_s"] >= 1.0  # measured from the click, not from generation start
        assert telemetry["latency_s"] >= telemetry["first_token_s"]
    memory = {
        battle.contestant_a: battle.telemetry_a["memory_mb"],
        battle.contestant_b: battle.telemetry_b["memory_mb"],
    }
    lora = next(name for name in memory if "LoRA" in name)
    base = next(name for name in memory if "LoRA" not in name)
    # SmolLM2-135M in NF4 is ~100 MB of weights; the LoRA adds a little; neither is the process peak
    assert 30 < memory[base] < memory[lora] < memory[base] + 50 < 400


def test_corrupt_newest_adapter_falls_back_to_the_newest_sound_run(
    tiny_adapters: Path, tmp_path: Path
) -> None:
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    [good] = [p for p in (tiny_adapters / "smollm2-135m").iterdir() if p.is_dir()]
    root = tmp_path / "adapters" / "smollm2-135m"
    shutil.copytree(good, root / good.name)
    broken = root / "99999999-999999-broken"  # newest by run id
    shutil.copytree(good, broken)
    tensors = load_file(broken / "adapter_model.safetensors")
    save_file(
        {k: torch.full_like(v, float("nan")) for k, v in tensors.items()},
        broken / "adapter_model.safetensors",
    )

    engine = ArenaEngine.start(adapters_dir=tmp_path / "adapters", model_keys=["smollm2-135m"])
    names = engine.contestant_names()
    assert any(good.name in n for n in names) and not any("broken" in n for n in names)
    [warning] = [w for w in engine.warnings if "broken" in w]
    assert "NaN" in warning and "\n" not in warning and len(warning) <= 300
