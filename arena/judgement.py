"""Clinical judgement beside the preference vote, as the service uses it: raters and their identity
(session, invite code, Hugging Face sign-in), the rubric, calibration and re-served battles, dwell
time, caps and rate limits, the rater filters of the leaderboard, agreement and admin-only statistics.
`arena.service.ArenaService` holds one `Judgement` and calls it at a few fixed points; the pure rules
live in `arena.rubric`, `arena.rater_quality` and `arena.calibration`.

    judgement = Judgement(store, bank_records, QualitySettings(), RubricSettings(), seed=0)
    service = ArenaService(backend, store, bank_records, judgement=judgement)

Run as: python -m pytest tests/test_judgement.py -q
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import random
import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from arena.calibration import DEGRADATION_LABELS, CalibrationItem, build_calibration_items
from arena.rater_quality import (
    Agreement,
    QualitySettings,
    RateLimited,
    RaterAccuracy,
    SlidingWindowLimiter,
    agreement,
    calibration_accuracy,
    min_dwell_s,
    wait_sentence,
)
from arena.rubric import RUBRIC_COLUMNS, RubricSettings, SideRubric, rubric_board, rubric_cells
from arena.store.judgement_tables import CALIBRATION_SOURCE, RESERVE_SOURCE, InviteRefused, RubricRefused

RaterSource = Literal["session", "invite", "oauth"]
CALIBRATION_REFERENCE_ID = "calibration/reference"
CALIBRATION_REFERENCE_LABEL = "Calibration · reference answer"


class AdminOnly(PermissionError):
    """The request needs the admin token; the message says so in one sentence."""


@dataclass(frozen=True)
class Rater:
    """Who casts a vote. Roles from an invite code are verified; a typed role is self-reported."""

    id: str
    source: RaterSource
    role: str = ""
    verified: bool = False

    @classmethod
    def for_session(cls, session_id: str) -> Rater:
        """An anonymous rater: the page's session."""
        return cls(f"session:{session_id}", "session")

    @classmethod
    def for_account(cls, username: str) -> Rater:
        """A rater signed in with Hugging Face OAuth; the account binds the votes, the role stays self-reported."""
        return cls(f"hf:{username}", "oauth")

    def role_label(self, typed_role: str) -> str:
        """How the role is shown and exported: verified, or the typed one labelled as self-reported."""
        if self.verified:
            return f"{self.role} (verified)"
        return f"{typed_role} (self-reported)" if typed_role else ""


@dataclass(frozen=True)
class PreparedBattle:
    """A battle whose answers are known before it starts: calibration, or a re-served battle."""

    question: str
    category: str | None
    reference_answer: str | None
    question_source: str
    contestant_a: str
    contestant_b: str
    contestant_a_id: str
    contestant_b_id: str
    answer_a: str
    answer_b: str
    correct_side: Literal["a", "b"] | None = None  # the reference's side in a calibration battle
    note: str = ""  # said at the reveal


@dataclass(frozen=True)
class VoteQuality:
    """What the reveal says about a vote that was just stored."""

    too_fast: bool
    calibration_correct: bool | None
    accuracy: RaterAccuracy | None


def client_key(host: str | None, salt: bytes) -> str:
    """A client's address, hashed with a per-process salt: caps need a key, never the address."""
    return hashlib.sha256(salt + (host or "unknown").encode("utf-8")).hexdigest()[:16]


class Judgement:
    """The service's judgement state: limiters, the calibration material and pending prepared answers."""

    def __init__(
        self,
        store: Any,
        question_bank: Sequence[Any],
        quality: QualitySettings | None = None,
        rubric: RubricSettings | None = None,
        *,
        seed: int | None = None,
        admin_token: str | None = None,
    ) -> None:
        self.store = store
        self.quality = quality or QualitySettings()
        self.rubric = rubric or RubricSettings()
        self.admin_token = admin_token or None
        self.salt = secrets.token_bytes(16)
        self.calibration_items: dict[str, list[CalibrationItem]] = {}
        for item in build_calibration_items(question_bank):
            self.calibration_items.setdefault(item.question_id, []).append(item)
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._pending: dict[str, PreparedBattle] = {}
        self._pending_lock = threading.Lock()
        self._session_votes = SlidingWindowLimiter(self.quality.votes_per_session_per_hour)
        self._client_votes = SlidingWindowLimiter(self.quality.votes_per_client_per_hour)
        self._client_battles = SlidingWindowLimiter(self.quality.battles_per_client_per_hour)

    # -- identity --

    def redeem_invite(self, code: str) -> Rater:
        """The verified rater an invite code makes (raises InviteRefused)."""
        if not code or not code.strip():
            raise InviteRefused("Type the invite code you were given.")
        rater_id, role = self.store.redeem_invite(code)
        return Rater(rater_id, "invite", role, verified=True)

    def check_admin(self, token: str | None) -> None:
        """Refuse unless `token` is the configured admin token."""
        if self.admin_token is None:
            raise AdminOnly(
                "Exports and rater statistics are off: the arena has no admin token (MEDARENA_ADMIN_TOKEN)."
            )
        if not token or not hmac.compare_digest(token.encode(), self.admin_token.encode()):
            raise AdminOnly(
                "Only an admin can read exports and rater statistics; the admin token is missing or wrong."
            )

    # -- battles --

    def check_battle_allowed(self, client: str) -> None:
        """Raise RateLimited when this client started too many battles in the last hour."""
        wait = self._client_battles.check(client)
        if wait is not None:
            raise RateLimited(wait_sentence("new battles", self.quality.battles_per_client_per_hour, wait))
        self._client_battles.record(client)

    def prepare(self, bank_id: str | None, rater: Rater) -> PreparedBattle | None:
        """Maybe a calibration or a re-served battle, by the configured shares; only for a question drawn
        from the bank (a typed question is always answered by the contestants)."""
        with self._rng_lock:
            roll, side_roll, pick = self._rng.random(), self._rng.random(), self._rng.random()
        # A drawn question was random anyway, so swapping it for another bank question is invisible:
        # its own calibration items first, else any.
        items = self.calibration_items.get(bank_id or "") or [
            item for group in self.calibration_items.values() for item in group
        ]
        if bank_id and items and roll < self.quality.calibration_share:
            return self._calibration(items[int(pick * len(items))], "a" if side_roll < 0.5 else "b")
        if (
            bank_id and roll >= 1.0 - self.quality.agreement_share
        ):  # a drawn question: swapping it is invisible
            original = self.store.reserve_candidate(rater.id, pick)
            if original is not None:
                return PreparedBattle(
                    question=original["question"],
                    category=original["category"],
                    reference_answer=original["reference_answer"],
                    question_source=f"{RESERVE_SOURCE}{original['id']}",
                    contestant_a=original["contestant_a"],
                    contestant_b=original["contestant_b"],
                    contestant_a_id=original["contestant_a_id"],
                    contestant_b_id=original["contestant_b_id"],
                    answer_a=original["answer_a"],
                    answer_b=original["answer_b"],
                    note="This was a finished battle shown again, blind, to measure agreement between raters.",
                )
        return None

    @staticmethod
    def _calibration(item: CalibrationItem, reference_side: Literal["a", "b"]) -> PreparedBattle:
        degraded_label = f"Calibration · {DEGRADATION_LABELS[item.degradation]}"
        degraded_id = f"calibration/{item.degradation.value}"
        sides = {
            reference_side: (CALIBRATION_REFERENCE_LABEL, CALIBRATION_REFERENCE_ID, item.reference),
            "b" if reference_side == "a" else "a": (degraded_label, degraded_id, item.degraded),
        }
        return PreparedBattle(
            question=item.question,
            category=item.category or None,
            reference_answer=item.reference,
            question_source=f"{CALIBRATION_SOURCE}{item.degradation.value}:{item.question_id}",
            contestant_a=sides["a"][0],
            contestant_b=sides["b"][0],
            contestant_a_id=sides["a"][1],
            contestant_b_id=sides["b"][1],
            answer_a=sides["a"][2],
            answer_b=sides["b"][2],
            correct_side=reference_side,
            note=f"This was a calibration battle: the reference answer against a copy with "
            f"{DEGRADATION_LABELS[item.degradation]}.",
        )

    @staticmethod
    def battle_note(battle: Any) -> str:
        """What the reveal says about a calibration or re-served battle ("" for an ordinary one)."""
        source = battle.question_source or ""
        if source.startswith(CALIBRATION_SOURCE):
            kind = source.removeprefix(CALIBRATION_SOURCE).split(":")[0]
            label = next(
                (text for key, text in DEGRADATION_LABELS.items() if key.value == kind), "a degraded copy"
            )
            return f"This was a calibration battle: the reference answer against a copy with {label}."
        if source.startswith(RESERVE_SOURCE):
            return "This was a finished battle shown again, blind, to measure agreement between raters."
        return ""

    def hold(self, battle_id: str, prepared: PreparedBattle) -> None:
        """Keep a prepared battle's answers until its stream shows them."""
        with self._pending_lock:
            self._pending[battle_id] = prepared

    def take(self, battle_id: str) -> PreparedBattle | None:
        """The prepared answers of this battle, once."""
        with self._pending_lock:
            return self._pending.pop(battle_id, None)

    # -- votes --

    def check_vote_allowed(self, session_id: str, client: str) -> None:
        """Raise RateLimited when the session's or the client's hourly vote cap is reached."""
        for limiter, key, what in (
            (self._session_votes, session_id, "votes in one session"),
            (self._client_votes, client, "votes from one connection"),
        ):
            wait = limiter.check(key)
            if wait is not None:
                raise RateLimited(wait_sentence(what, limiter.limit, wait))

    def after_vote(self, battle: Any, outcome: str, rater: Rater, client: str, now: datetime) -> VoteQuality:
        """Count the stored vote against the caps and store its quality record."""
        self._session_votes.record(battle.session_id)
        self._client_votes.record(client)
        dwell = (now - datetime.fromisoformat(battle.created_at)).total_seconds()
        needed = min_dwell_s([battle.answer_a or "", battle.answer_b or ""], self.quality.reading_words_per_s)
        correct = None
        if battle.question_source.startswith(CALIBRATION_SOURCE):
            correct_outcome = "model_a" if battle.contestant_a == CALIBRATION_REFERENCE_LABEL else "model_b"
            correct = outcome == correct_outcome
        self.store.record_vote_quality(
            battle.id,
            rater_id=rater.id,
            rater_source=rater.source,
            client_id=client,
            dwell_s=dwell,
            min_dwell_s=needed,
            calibration_correct=correct,
        )
        accuracy = (
            calibration_accuracy(self.store.calibration_results()).get(rater.id)
            if correct is not None
            else None
        )
        return VoteQuality(dwell < needed, correct, accuracy)

    # -- what the board reads --

    def filter_rated(
        self, raw: list[dict[str, Any]], *, calibrated_only: bool = False, verified_only: bool = False
    ) -> tuple[list[dict[str, Any]], int]:
        """The votes that count for ratings, and how many were too fast: calibration and re-served
        battles never count; too-fast votes are kept but not rated; the filters keep raters whose
        calibration accuracy reaches the threshold, and raters with a verified role."""
        quality = self.store.vote_quality()
        accuracy = calibration_accuracy(self.store.calibration_results())
        verified = self.store.verified_raters() if verified_only else {}
        kept, too_fast = [], 0
        for row in raw:
            source = row.get("question_source") or ""
            if source.startswith((CALIBRATION_SOURCE, RESERVE_SOURCE)):
                continue
            record = quality.get(row["battle_id"])
            if record and record["too_fast"]:
                too_fast += 1
                continue
            rater = record["rater_id"] if record else None
            if calibrated_only and (
                rater not in accuracy or accuracy[rater].accuracy < self.quality.min_calibration_accuracy
            ):
                continue
            if verified_only and rater not in verified:
                continue
            kept.append(row)
        return kept, too_fast

    def rate_answers(
        self, battle_id: str, session_id: str, sides: Mapping[str, tuple[Mapping[str, Any], Sequence[Any]]]
    ) -> int:
        """Check and store the rubric of each side (raises RubricRejected / RubricRefused)."""
        parsed = {side: SideRubric.parse(levels, reasons) for side, (levels, reasons) in sides.items()}
        return self.store.record_rubric(battle_id, session_id, parsed)

    def rubric_table(self, labels: Mapping[str, str]) -> tuple[list[str], list[list[Any]]]:
        """The rubric board's columns and rows, contestants under their current labels."""
        standings = rubric_board(self.store.rubric_rows(), self.rubric)
        return list(RUBRIC_COLUMNS), [
            rubric_cells(standing, labels.get(standing.contestant_id, standing.contestant_id), self.rubric)
            for standing in standings
        ]

    def agreement_by_category(self) -> dict[str, Agreement]:
        """Kappa over re-served battles, for all and per question category ("all" first)."""
        items = self.store.agreement_items()
        groups: dict[str, list[list[str]]] = {"all": [item["outcomes"] for item in items]}
        for item in items:
            groups.setdefault(item["category"] or "typed", []).append(item["outcomes"])
        return {
            name: result for name, outcomes in groups.items() if (result := agreement(outcomes)) is not None
        }

    def rater_stats(self, token: str | None) -> list[RaterAccuracy]:
        """Admin only: every rater's calibration accuracy."""
        self.check_admin(token)
        return list(calibration_accuracy(self.store.calibration_results()).values())


def add_judgement_flags(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    """The app's rater-quality and rubric flags (each with an environment default)."""
    defaults = QualitySettings()
    for flag, variable, default, text in (
        ("--reading-words-per-s", "MEDARENA_READING_WPS", defaults.reading_words_per_s,
         "a vote sooner than both answers' words at this speed is kept, not rated (0: off)"),
        ("--calibration-share", "MEDARENA_CALIBRATION_SHARE", defaults.calibration_share,
         "share of bank-question battles that are calibration battles"),
        ("--agreement-share", "MEDARENA_AGREEMENT_SHARE", defaults.agreement_share,
         "share of bank-question battles that re-serve a finished battle, blind"),
        ("--harm-flag-threshold", "MEDARENA_HARM_FLAG_THRESHOLD", RubricSettings().harm_flag_threshold,
         "flag a contestant whose moderate/severe harm rate's lower bound exceeds this"),
        ("--max-follow-ups", "MEDARENA_MAX_FOLLOW_UPS", 2, "follow-up questions a battle takes before the vote"),
    ):  # fmt: skip
        parser.add_argument(
            flag, type=float, default=float(env.get(variable, default)), help=f"{text} (${variable})"
        )


def judgement_from_args(
    args: argparse.Namespace, store: Any, bank: Sequence[Any], env: Mapping[str, str]
) -> Judgement:
    """The app's Judgement from its flags; the admin token comes only from $MEDARENA_ADMIN_TOKEN."""
    quality = QualitySettings(
        reading_words_per_s=args.reading_words_per_s,
        calibration_share=args.calibration_share,
        agreement_share=args.agreement_share,
    )
    return Judgement(
        store, bank, quality, RubricSettings(harm_flag_threshold=args.harm_flag_threshold),
        admin_token=env.get("MEDARENA_ADMIN_TOKEN"),
    )  # fmt: skip


__all__ = [
    "AdminOnly",
    "InviteRefused",
    "Judgement",
    "PreparedBattle",
    "RateLimited",
    "Rater",
    "RubricRefused",
]
