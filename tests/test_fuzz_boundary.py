"""Property-based fuzzing of the service boundary (Hypothesis): random Unicode (surrogates, controls,
zero-width, fillers, formula triggers), random lengths around every limit and far past them, and random
field types and combinations for `start_battle`, `vote` and the export.

Every call either succeeds or raises the service's own error carrying one sentence; never another
exception (a traceback in the UI), never a half-written row (a refused call changes no table), and
nothing accepted twice (a battle holds at most one vote; a second vote on it is refused). Real SQLite
file; the backend is tests/fake_backend.py (fixed answers: wiring only, so this stays in the fast tier).
A bounded number of examples, derandomised, so every run checks the same cases.

Run as: python -m pytest tests/test_fuzz_boundary.py -q
"""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from arena.export import FORMULA_TRIGGERS
from arena.integrity import QuestionRejected
from arena.service import ArenaService, BattleError
from arena.store.battles import ArenaStore, VoteRejected
from arena.text_input import MAX_QUESTION_CHARS, MAX_RATIONALE_CHARS, MAX_VOTER_FIELD_CHARS
from arena.votes import VOTER_ROLES, VoteInput, VoteOutcome
from finetune.data import QARecord
from tests.fake_backend import ScriptedBackend

BANK = [QARecord("q1", "What is sepsis?", "A dysregulated host response to infection.", "test", "", "sepsis")]
SID = "fuzz-session-0001"
FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

NASTY = ["\ud800", "\udfff", "\x00", "\x1b", "\u200b", "\u202e", "\ufeff", "\u3164", "\u2800", "\u0301"]
NASTY += ["=", "+", "-", "@", "\t", "\r", "\n", "'", '"', ",", "é", "字", "😀", "Mrs ", "07700 900123"]
fragments = st.one_of(st.characters(), st.sampled_from(NASTY))
LIMITS = sorted({MAX_QUESTION_CHARS, MAX_RATIONALE_CHARS, MAX_VOTER_FIELD_CHARS, 64})
lengths = st.sampled_from([n + d for n in LIMITS for d in (-1, 0, 1)] + [100_000, 1_000_000])
long_text = st.builds(lambda piece, n: (piece * n)[:n], fragments, lengths)  # exactly n characters
small_text = st.lists(fragments, max_size=30).map("".join)
text = st.one_of(small_text, long_text)
anything = st.one_of(
    text, st.none(), st.integers(), st.binary(max_size=8), st.booleans(), st.lists(st.integers())
)
session_ids = st.one_of(st.just(SID), st.sampled_from(["x" * 8, "y" * 64, "z" * 65, "short"]), anything)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> ArenaService:
    path = tmp_path_factory.mktemp("fuzz") / "votes.db"
    return ArenaService(ScriptedBackend(), ArenaStore(path), BANK, seed=3, heartbeat_every=None)


def counts(service: ArenaService) -> tuple[int, int]:
    with sqlite3.connect(service.store.path) as connection:
        battles = connection.execute("SELECT COUNT(*) FROM battles").fetchone()[0]
        votes = connection.execute("SELECT COUNT(*) FROM votes").fetchone()[0]
    return battles, votes


def assert_sentence(error: BaseException) -> None:
    message = str(error).strip()
    assert message and message[-1] in ".?!", message[:300]
    assert "Traceback" not in message and len(message) < 600, message[:300]


def finished_battle(service: ArenaService) -> str:
    started = service.start_battle("What is sepsis?", session_id=SID)
    assert list(service.stream_battle(started.battle_id, SID))[-1].finished
    return started.battle_id


def draw_fields(
    data: st.DataObject, valid: dict[str, st.SearchStrategy], hostile: dict[str, st.SearchStrategy]
):
    """Each field valid, except a random few (none to three) drawn from its hostile strategy, so that
    both acceptances and every kind of refusal are reached."""
    chosen = data.draw(st.sets(st.sampled_from(sorted(valid)), max_size=3), label="hostile fields")
    return {name: data.draw((hostile if name in chosen else valid)[name], label=name) for name in valid}


START_VALID = {
    "question": st.builds(lambda pre, post: f"{pre} What is sepsis? {post}", small_text, small_text),
    "bank_id": st.one_of(st.just("q1"), st.none()),
    "session_id": st.just(SID),
}
START_HOSTILE = {"question": anything, "bank_id": anything, "session_id": session_ids}


@FUZZ
@given(data=st.data(), confirmed=st.booleans())
def test_start_battle_succeeds_or_refuses_with_a_sentence(
    service: ArenaService, data: st.DataObject, confirmed: bool
) -> None:
    fields = draw_fields(data, START_VALID, START_HOSTILE)
    before = counts(service)
    try:
        started = service.start_battle(
            fields["question"],
            fields["bank_id"],
            session_id=fields["session_id"],
            confirmed_no_patient_data=confirmed,
        )
    except (QuestionRejected, BattleError) as refused:
        event(f"refused: {type(refused).__name__}")
        assert_sentence(refused)
        assert counts(service) == before  # no battle row, no vote row
        return
    event("accepted")
    assert counts(service)[0] == before[0] + 1
    stored = service.store.get_battle(started.battle_id)
    assert stored is not None and stored.question == started.question and stored.status == "generating"
    assert len(stored.question) <= MAX_QUESTION_CHARS
    progress = list(service.stream_battle(started.battle_id, fields["session_id"]))
    assert progress[-1].finished and not progress[-1].voided


FLAGS = ("flag_a_unsafe", "flag_a_incorrect", "flag_b_unsafe", "flag_b_incorrect")
VOTE_VALID = {
    "battle_id": st.just("fresh"),
    "outcome": st.one_of(st.sampled_from(list(VoteOutcome)), st.sampled_from([o.value for o in VoteOutcome])),
    "session_id": st.just(SID),
    **{flag: st.booleans() for flag in FLAGS},
    "rationale": small_text,
    "voter_role": st.sampled_from(VOTER_ROLES),
    "voter_specialty": small_text,
}
VOTE_HOSTILE = {
    "battle_id": st.one_of(st.just("0" * 32), anything),
    "outcome": anything,
    "session_id": session_ids,
    **{flag: anything for flag in FLAGS},
    "rationale": anything,
    "voter_role": anything,
    "voter_specialty": anything,
}


@FUZZ
@given(data=st.data())
def test_vote_succeeds_once_or_refuses_with_a_sentence(service: ArenaService, data: st.DataObject) -> None:
    fields = draw_fields(data, VOTE_VALID, VOTE_HOSTILE)
    if fields["battle_id"] == "fresh":
        fields["battle_id"] = finished_battle(service)
    vote = VoteInput(**fields)
    before = counts(service)
    try:
        reveal = service.vote(vote)
    except VoteRejected as refused:
        event("refused")
        assert_sentence(refused)
        assert counts(service) == before
        return
    event("accepted")
    assert counts(service) == (before[0], before[1] + 1)
    stored = service.store.get_vote(vote.battle_id)
    assert stored is not None and stored.outcome == reveal.outcome
    assert len(stored.rationale) <= MAX_RATIONALE_CHARS and stored.voter_role in VOTER_ROLES
    with pytest.raises(VoteRejected, match="already has a vote"):  # nothing accepted twice
        service.vote(vote)
    assert counts(service) == (before[0], before[1] + 1)


def test_the_export_after_fuzzing_has_every_vote_once_and_no_live_formula(
    service: ArenaService, tmp_path: Path
) -> None:
    finished = finished_battle(service)
    service.vote(VoteInput(finished, "tie", session_id=SID, rationale="=1+1 @x", voter_specialty="-cardio"))
    csv_path, jsonl_path = service.export_votes(tmp_path / "export")
    votes = counts(service)[1]
    with csv_path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    records = [json.loads(line) for line in jsonl_path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(records) == votes
    assert len({row["battle_id"] for row in rows}) == votes  # one vote per battle
    text_cells = [cell for row in rows for key, cell in row.items() if not key.startswith("bertscore")]
    assert not [cell for cell in text_cells if cell.startswith(FORMULA_TRIGGERS)]
    assert any(record["rationale"] == "=1+1 @x" for record in records)  # JSONL exactly as stored
