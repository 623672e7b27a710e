"""Simulated arena votes on a real SQLite file, for the DPO export and the DPO loop: a calibrated
rater's votes on bank questions (the reference answer against a rule-degraded copy), plus one vote
of each kind the export must leave out."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from arena.calibration import build_calibration_items
from arena.judgement import CALIBRATION_REFERENCE_LABEL, Judgement, Rater
from arena.rater_quality import QualitySettings
from arena.rubric import SideRubric
from arena.store.battles import ArenaStore
from arena.votes import VoteInput
from finetune.data import load_dataset_source

CALIBRATED = Rater("session:calibrated-rater", "session")
UNCALIBRATED = Rater("session:new-rater", "session")
BASE_ID, RUN_ID = "smollm2-135m/base", "smollm2-135m/run1"


def _battle(
    store: ArenaStore, judgement: Judgement, question: str, answer_a: str, answer_b: str, outcome: str,
    rater: Rater, *, source: str = "typed", label_a: str = "SmolLM2 · base", leak: bool = False,
    read_s: float = 600.0,
) -> str:  # fmt: skip
    sid = rater.id.removeprefix("session:")
    battle = store.create_battle(
        question, label_a, "SmolLM2 · LoRA run1", {}, question_source=source, session_id=sid,
        contestant_a_id=BASE_ID, contestant_b_id=RUN_ID,
    )  # fmt: skip
    store.finish_battle(battle, answer_a, answer_b, {}, {}, identity_leak=leak)
    store.record_vote(VoteInput(battle, outcome, session_id=sid))
    row = store.get_battle(battle)
    judgement.after_vote(row, outcome, rater, "client", store.now() + timedelta(seconds=read_s))
    return battle


def simulated_votes(path: Path, pairs: int = 6) -> ArenaStore:
    """`pairs` exportable votes (chosen: the reference), one calibration vote, and one vote for each
    exclusion: tie, leak, too fast, PHI, uncalibrated rater."""
    store = ArenaStore(path)
    judgement = Judgement(store, [], QualitySettings(reading_words_per_s=4.0))
    items = build_calibration_items(load_dataset_source("bundled").records)
    calibration = items[0]
    _battle(store, judgement, calibration.question, calibration.reference, calibration.degraded, "model_a",
            CALIBRATED, source=f"calibration:{calibration.degradation.value}:{calibration.question_id}",
            label_a=CALIBRATION_REFERENCE_LABEL)  # fmt: skip
    for index, item in enumerate(items[1 : pairs + 1]):
        reference_on_a = index % 2 == 0
        a, b = (item.reference, item.degraded) if reference_on_a else (item.degraded, item.reference)
        battle = _battle(
            store, judgement, item.question, a, b, "model_a" if reference_on_a else "model_b", CALIBRATED
        )
        if index == 0:
            chosen = "a" if reference_on_a else "b"
            store.record_rubric(
                battle, CALIBRATED.id.removeprefix("session:"),
                {chosen: SideRubric.parse({"correctness": "correct", "harm_severity": "none"}, ["complete"])},
            )  # fmt: skip
    extra = items[pairs + 1]
    _battle(store, judgement, extra.question, extra.reference, extra.degraded, "tie", CALIBRATED)
    _battle(
        store, judgement, extra.question, "I am SmolLM2.", extra.degraded, "model_a", CALIBRATED, leak=True
    )
    _battle(
        store, judgement, extra.question, extra.reference, extra.degraded, "model_a", CALIBRATED, read_s=0.5
    )
    _battle(store, judgement, "Mr John Smith, DOB 03/04/1961, has AF: anticoagulate?", extra.reference,
            extra.degraded, "model_a", CALIBRATED)  # fmt: skip
    _battle(store, judgement, extra.question, extra.reference, extra.degraded, "model_a", UNCALIBRATED)
    return store
