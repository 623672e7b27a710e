"""Rater quality through the service on a real SQLite file: calibration battles update a rater's
accuracy, caps and rate limits refuse with a sentence and lose no accepted vote, too-fast votes are
kept but not rated, finished battles are re-served blind for agreement, invite codes verify a role,
and a Hugging Face sign-in (a Space with OAuth) binds the votes to the account.

Calibration and re-served battles never generate, so the backend here is a wiring fake whose
`stream_pair` fails the test if it is ever called."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import gradio as gr
import gradio.oauth
import pytest
from gradio.helpers import special_args

from arena.judgement import CALIBRATION_REFERENCE_LABEL, AdminOnly, InviteRefused, Judgement, Rater
from arena.rater_quality import QualitySettings, calibration_accuracy
from arena.rubric import RubricSettings
from arena.service import ArenaService, BattleError
from arena.store.battles import ArenaStore, VoteRejected
from arena.ui import build_ui
from arena.votes import VoteInput
from finetune.data import load_dataset_source


class WiringBackend:
    """Two named contestants; generating anything is a test failure."""

    warnings: ClassVar[list[str]] = []
    kind: ClassVar[str] = "peft"
    concurrent_battles = 1
    supports_follow_ups = True

    def contestant_names(self) -> list[str]:
        return ["SmolLM2 · base", "SmolLM2 · LoRA run1"]

    def contestant_id(self, name: str) -> str:
        return "smollm2-135m/base" if "base" in name else "smollm2-135m/run1"

    def contestant_weights(self, name: str) -> str:
        return "nf4"

    def stream_pair(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        raise AssertionError("a prepared battle must not generate")


BANK = load_dataset_source("bundled").records


def make_service(tmp_path: Path, **quality: Any) -> ArenaService:
    store = ArenaStore(tmp_path / "votes.db")
    settings = QualitySettings(**{"reading_words_per_s": 0.0, "agreement_share": 0.0, **quality})
    judgement = Judgement(
        store, BANK, settings, RubricSettings(bootstrap_rounds=50), seed=3, admin_token="s3cret"
    )
    return ArenaService(WiringBackend(), store, BANK, seed=3, bootstrap_rounds=20, judgement=judgement)


def calibration_battle(service: ArenaService, sid: str) -> tuple[str, str]:
    """Start and show a calibration battle; returns its id and the outcome that picks the reference."""
    bank_id = next(iter(service.judgement.calibration_items))
    started = service.start_battle(service.bank_question(bank_id).question, bank_id, session_id=sid)
    [progress] = list(service.stream_battle(started.battle_id, sid))
    battle = service.store.get_battle(started.battle_id)
    assert (
        progress.finished
        and battle.status == "finished"
        and battle.question_source.startswith("calibration:")
    )
    reference_is_a = battle.contestant_a == CALIBRATION_REFERENCE_LABEL
    assert (battle.answer_a if reference_is_a else battle.answer_b) == battle.reference_answer
    return started.battle_id, "model_a" if reference_is_a else "model_b"


def test_calibration_battles_update_the_raters_accuracy_and_are_not_rated(tmp_path: Path) -> None:
    service = make_service(tmp_path, calibration_share=1.0)
    sid = "session-calib-01"
    battle, right = calibration_battle(service, sid)
    reveal = service.vote(VoteInput(battle, right, session_id=sid))
    assert reveal.quality.calibration_correct and reveal.quality.accuracy.accuracy == 1.0
    assert "calibration battle" in reveal.note
    battle, right = calibration_battle(service, sid)
    wrong = "model_b" if right == "model_a" else "model_a"
    reveal = service.vote(VoteInput(battle, wrong, session_id=sid))
    assert reveal.quality.calibration_correct is False
    assert (reveal.quality.accuracy.correct, reveal.quality.accuracy.battles) == (1, 2)
    assert service.leaderboard().votes == 0  # calibration votes never rate contestants
    with pytest.raises(AdminOnly, match="admin token"):
        service.judgement.rater_stats("guess")
    [stats] = service.judgement.rater_stats("s3cret")
    assert stats.rater_id == f"session:{sid}" and stats.accuracy == 0.5


def test_caps_refuse_with_a_sentence_and_keep_the_accepted_vote(tmp_path: Path) -> None:
    service = make_service(
        tmp_path, calibration_share=1.0, votes_per_session_per_hour=1, battles_per_client_per_hour=3
    )
    sid = "session-caps-001"
    first, outcome = calibration_battle(service, sid)
    service.vote(VoteInput(first, outcome, session_id=sid), client="client-1")
    second, outcome = calibration_battle(service, sid)
    with pytest.raises(
        VoteRejected, match=r"limit of 1 votes in one session per hour.*earlier votes are kept"
    ):
        service.vote(VoteInput(second, outcome, session_id=sid), client="client-1")
    assert service.store.vote_count() == 1 and service.store.get_vote(first) is not None
    assert service.store.get_vote(second) is None  # refused: nothing stored
    calibration_battle(service, sid)
    with pytest.raises(BattleError, match="limit of 3 new battles"):
        calibration_battle(service, sid)
    assert service.store.vote_count() == 1


def ordinary_voted_battle(
    service: ArenaService, sid: str, bank_index: int, outcome: str, rater: Rater
) -> str:
    """A finished ordinary battle on a bank question, voted on, with its quality record."""
    record = BANK[bank_index]
    store = service.store
    battle = store.create_battle(
        record.question, "SmolLM2 · base", "SmolLM2 · LoRA run1", {}, category=record.category,
        question_source=f"bank:{record.id}", session_id=sid,
        contestant_a_id="smollm2-135m/base", contestant_b_id="smollm2-135m/run1",
    )  # fmt: skip
    store.finish_battle(
        battle, "Rest, fluids and paracetamol. " * 10, "See a doctor.", {}, {}, identity_leak=False
    )
    service.vote(VoteInput(battle, outcome, session_id=sid), rater=rater)
    return battle


def test_too_fast_votes_are_kept_counted_and_not_rated(tmp_path: Path) -> None:
    service = make_service(tmp_path, calibration_share=0.0, reading_words_per_s=1.0)
    sid = "session-fast-001"
    battle = ordinary_voted_battle(service, sid, 0, "model_a", Rater.for_session(sid))
    assert service.store.get_vote(battle) is not None  # kept
    quality = service.store.vote_quality()[battle]
    assert quality["too_fast"] == 1 and quality["min_dwell_s"] == 43.0  # 43 words at 1 word/s
    board = service.leaderboard()
    assert board.votes == 0 and any("1 votes came faster" in note for note in board.notes)
    # the same vote with the check off would count (a fresh arena: the board reads each vote once)
    service.store.record_vote_quality(
        battle,
        rater_id="x",
        rater_source="session",
        client_id="c",
        dwell_s=60,
        min_dwell_s=43,
        calibration_correct=None,
    )
    judgement = Judgement(service.store, BANK, QualitySettings.off())
    fresh = ArenaService(
        WiringBackend(), service.store, BANK, seed=3, bootstrap_rounds=20, judgement=judgement
    )
    assert fresh.leaderboard().votes == 1


def test_finished_battles_are_re_served_blind_and_agreement_is_measured(tmp_path: Path) -> None:
    service = make_service(tmp_path, calibration_share=0.0)
    first, second = Rater.for_session("session-rater-1"), Rater.for_session("session-rater-2")
    originals = [
        ordinary_voted_battle(service, "session-rater-1", index, outcome, first)
        for index, outcome in ((0, "model_a"), (1, "model_b"), (2, "tie"))
    ]
    service.judgement = Judgement(
        service.store,
        BANK,
        QualitySettings(reading_words_per_s=0, calibration_share=0, agreement_share=1.0),
        seed=1,
    )
    shown = set()
    for outcome in ("model_a", "model_b", "model_a"):
        drawn = service.random_question()
        started = service.start_battle(drawn.question, drawn.id, session_id="session-rater-2", rater=second)
        [progress] = list(service.stream_battle(started.battle_id, "session-rater-2"))
        battle = service.store.get_battle(started.battle_id)
        original = battle.question_source.removeprefix("reserve:")
        assert original in originals and original not in shown  # never the same battle twice to one rater
        shown.add(original)
        stored = service.store.get_battle(original)
        assert (started.question, progress.answer_a, progress.answer_b) == (
            stored.question,
            stored.answer_a,
            stored.answer_b,
        )
        reveal = service.vote(
            VoteInput(started.battle_id, outcome, session_id="session-rater-2"), rater=second
        )
        assert "shown again, blind" in reveal.note
    items = service.store.agreement_items()
    assert sorted(len(item["outcomes"]) for item in items) == [2, 2, 2]
    overall = service.judgement.agreement_by_category()["all"]
    assert overall.method == "Cohen" and overall.items == 3 and overall.low <= overall.kappa <= overall.high
    assert service.leaderboard().votes == 3  # re-served votes do not count twice


def test_invite_codes_verify_a_role_once_and_feed_the_verified_filter(tmp_path: Path) -> None:
    service = make_service(tmp_path, calibration_share=0.0)
    code = service.store.create_invite("physician")
    rater = service.judgement.redeem_invite(code)
    assert (
        rater.verified and rater.role == "physician" and rater.role_label("Nurse") == "physician (verified)"
    )
    assert Rater.for_session("s").role_label("Nurse") == "Nurse (self-reported)"
    with pytest.raises(InviteRefused, match="already used"):
        service.judgement.redeem_invite(code)
    with pytest.raises(InviteRefused, match="not known"):
        service.judgement.redeem_invite("nope")
    ordinary_voted_battle(service, "session-verified", 0, "model_a", rater)
    ordinary_voted_battle(service, "session-anon-01", 1, "model_b", Rater.for_session("session-anon-01"))
    assert service.leaderboard().votes == 2
    assert service.leaderboard(verified_only=True).votes == 1
    assert service.leaderboard(calibrated_only=True).votes == 0  # nobody has calibration votes yet


def test_a_hugging_face_sign_in_binds_the_vote_to_the_account_and_no_profile_leaves_the_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's OAuth path on a real store: the page is built as on a Space with OAuth (Gradio's real
    login routes, authlib included), Gradio's own argument injection hands the page-load handler the
    profile of the request's session (or None), and the vote button's handler stores the vote under
    `hf:<username>`, or under the page's session without one."""
    pytest.importorskip("authlib")  # gradio[oauth]: setup.sh --test installs it (the test extra)
    # what a Space with `hf_oauth: true` sets; gradio.oauth reads its variables once, at import
    monkeypatch.setenv("SYSTEM", "spaces")
    monkeypatch.setenv("SPACE_ID", "medarena/arena")
    monkeypatch.setenv("OAUTH_CLIENT_ID", "client-for-the-test")
    for name, value in {
        "OAUTH_CLIENT_ID": "client-for-the-test",
        "OAUTH_CLIENT_SECRET": "secret-for-the-test",
        "OAUTH_SCOPES": "openid profile",
        "OPENID_PROVIDER_URL": "https://huggingface.co",
    }.items():
        monkeypatch.setattr(gradio.oauth, name, value)
    service = make_service(tmp_path, calibration_share=1.0)
    demo = build_ui(service)
    assert any(isinstance(block, gr.LoginButton) for block in demo.blocks.values())
    signed_in = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "signed_in")
    vote_a = next(
        f.fn
        for f in demo.fns.values()
        for block in demo.blocks.values()
        if getattr(block, "elem_id", None) == "vote-model-a" and (block._id, "click") in f.targets
    )

    def load_rater(session: dict[str, Any]) -> Any:
        args, *_ = special_args(signed_in, [None], SimpleNamespace(session=session))
        return signed_in(*args)

    userinfo = {"name": "A Okafor", "preferred_username": "dr-okafor", "profile": "", "picture": ""}
    signed = load_rater({"oauth_info": {"userinfo": userinfo, "expires_at": time.time() + 3600}})
    anonymous = load_rater({})
    assert signed == Rater("hf:dr-okafor", "oauth") and anonymous is None

    stored = {}
    for sid, rater in (("session-oauth-01", signed), ("session-anon-02", anonymous)):
        battle, _ = calibration_battle(service, sid)
        updates = vote_a(battle, None, None, None, None, None, "Physician", None, sid, rater, None)
        assert any("your vote is stored" in str(value) for value in updates.values()), updates
        stored[sid] = (service.store.get_vote(battle), service.store.vote_quality()[battle])
    vote, quality = stored["session-oauth-01"]
    assert (quality["rater_id"], quality["rater_source"]) == ("hf:dr-okafor", "oauth")
    # an account binds the votes, not a role
    assert vote is not None and vote.voter_role == "Physician (self-reported)"
    vote, quality = stored["session-anon-02"]
    assert (quality["rater_id"], quality["rater_source"]) == ("session:session-anon-02", "session")
    # each rater's calibration accuracy is kept apart: the account's and the anonymous session's
    assert set(calibration_accuracy(service.store.calibration_results())) == {
        "hf:dr-okafor",
        "session:session-anon-02",
    }
