"""The arena service: the one object the UI talks to. No Gradio here, no SQL here.

It draws questions and contestants, runs battles through the engine, keeps each battle's
contestants on the server (the browser only ever holds a battle id), stores results and votes
through the store, and derives the leaderboard from the raw votes with pure rating functions.

    service = ArenaService(backend, ArenaStore(path), bank)   # as app.py builds it

Run as: python app.py   (the arena; tests: python -m pytest tests/test_service.py -q)
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from arena.backend import ArenaBackend
from arena.engine import GenerationSettings, PairUpdate
from arena.export import write_votes_csv, write_votes_jsonl
from arena.follow_ups import FollowUps, FollowUpSettings
from arena.integrity import (
    QuestionRejected as QuestionRejected,  # re-exported: the UI imports only this module
)
from arena.integrity import leaks_identity, validate_question
from arena.judgement import Judgement, PreparedBattle, RateLimited, Rater, VoteQuality
from arena.leaderboard import LeaderboardTable as LeaderboardTable  # re-exported for the UI
from arena.leaderboard import build_leaderboard
from arena.pii import PiiFinding, describe, find_pii, redact
from arena.rater_quality import QualitySettings
from arena.store import MAX_RATIONALE_CHARS as MAX_RATIONALE_CHARS  # re-exported for the UI
from arena.store import MAX_VOTER_FIELD_CHARS as MAX_VOTER_FIELD_CHARS  # re-exported for the UI
from arena.store import ArenaStore, BattleStateError, StoreError, VoteRejected
from arena.votes import VoteInput, VoteOutcome
from finetune.data import QARecord

log = logging.getLogger(__name__)
ReferenceScorer = Callable[[list[str], list[str]], list[float]]


class BattleError(RuntimeError):
    """A battle that cannot be started or continued; the message is meant for the clinician."""


class PiiDetected(BattleError):
    """The question looks patient-identifiable; nothing was stored. Offer `redacted`, or a confirmation."""

    def __init__(self, findings: list[PiiFinding], redacted: str):
        self.findings = findings
        self.redacted = redacted
        super().__init__(
            f"Your question seems to contain {describe(findings)}. Nothing was sent or stored. "
            "Press “Redact and send” to replace these details with placeholders, edit the question, or "
            "press “Send as typed” only if it cannot identify a patient."
        )


@dataclass(frozen=True)
class BankQuestion:
    id: str
    question: str
    category: str
    reference: str


@dataclass(frozen=True)
class StartedBattle:
    battle_id: str
    question: str
    category: str | None


@dataclass(frozen=True)
class BattleProgress:
    answer_a: str
    answer_b: str
    finished: bool
    voided: bool = False
    message: str = ""
    cancelled: bool = False  # replaced by a newer battle: the page already shows that one


@dataclass(frozen=True)
class Reveal:
    contestant_a: str
    contestant_b: str
    telemetry_a: dict[str, Any]
    telemetry_b: dict[str, Any]
    outcome: VoteOutcome
    counted: bool  # False when an answer leaked its identity: stored, but not rated
    rationale_redacted: bool = False  # identifiers in the rationale were replaced before storing
    quality: VoteQuality | None = None  # too fast, calibration result (arena.judgement)
    note: str = ""  # what kind of battle it was, when not an ordinary one


@dataclass
class Pairing:
    """Draws contestants, favouring those with fewer battles; sides are random."""

    rng: random.Random
    lock: threading.Lock = field(default_factory=threading.Lock)

    def draw(self, names: Sequence[str], battle_counts: dict[str, int]) -> tuple[str, str]:
        """Two different contestants, each drawn with weight 1 / (1 + its battles), in random side order."""
        if len(names) < 2:
            raise BattleError(
                "The arena needs at least two contestants; train an adapter or install another base."
            )
        weights = [1.0 / (1 + battle_counts.get(name, 0)) for name in names]
        with self.lock:  # random.Random is not safe to share between handler threads
            first = self.rng.choices(range(len(names)), weights=weights)[0]
            rest = [i for i in range(len(names)) if i != first]
            second = self.rng.choices(rest, weights=[weights[i] for i in rest])[0]
            pair = [names[first], names[second]]
            self.rng.shuffle(pair)
        return pair[0], pair[1]


STALE_AFTER = timedelta(minutes=15)  # a battle still generating after this was abandoned


class ArenaService:
    def __init__(
        self,
        engine: ArenaBackend,
        store: ArenaStore,
        question_bank: Sequence[QARecord],
        *,
        settings: GenerationSettings | None = None,
        reference_scorer: ReferenceScorer | None = None,
        seed: int | None = None,
        bootstrap_rounds: int = 200,
        notices: Sequence[str] = (),
        stale_after: timedelta = STALE_AFTER,
        judgement: Judgement | None = None,
        follow_ups: FollowUpSettings | None = None,
    ):
        self.engine = engine
        self.store = store
        self._notices = list(notices)  # start-up messages beside the engine's, e.g. "votes are not kept"
        self.settings = settings or GenerationSettings()
        self.bootstrap_rounds = bootstrap_rounds
        self.stale_after = stale_after
        self._bank = {q.id: q for q in question_bank}
        self._reference_scorer = reference_scorer
        self._pairing = Pairing(random.Random(seed))
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        # battle id -> (click time, cancel event): what the running stream of a battle needs
        self._running: dict[str, tuple[float, threading.Event]] = {}
        self._running_lock = threading.Lock()
        self.voided_at_start = 0
        # rubric, rater quality, caps, calibration and re-served battles (arena.judgement)
        self.judgement = judgement or Judgement(store, question_bank, QualitySettings.off(), seed=seed)
        self.follow_ups = FollowUps(self, follow_ups)  # up to N follow-up turns before the vote
        if store.problem is None:
            # Battles left generating by a process that died can never finish: void them now.
            self.voided_at_start = store.void_stale_battles(
                store.now(), "the arena restarted before the answers finished"
            )

    # --- questions ---

    @property
    def warnings(self) -> list[str]:
        """Start-up notices for the person running the arena (storage, skipped models)."""
        return [*self._notices, *self.engine.warnings]

    @property
    def storage_problem(self) -> str | None:
        """A sentence for a banner when the vote database cannot take votes, else None."""
        return self.store.problem

    def random_question(self) -> BankQuestion:
        """A question drawn from the bank, with its id for the battle."""
        if not self._bank:
            raise BattleError("The question bank is empty.")
        with self._rng_lock:
            record = self._rng.choice(list(self._bank.values()))
        return BankQuestion(record.id, record.question, record.category, record.answer)

    def bank_question(self, question_id: str) -> BankQuestion | None:
        """The bank question with this id, or None."""
        record = self._bank.get(question_id)
        return BankQuestion(record.id, record.question, record.category, record.answer) if record else None

    def example_questions(self, count: int = 4) -> list[str]:
        """A few bank questions, one per category where possible, for the page's examples."""
        by_category: dict[str, str] = {}
        for record in self._bank.values():
            by_category.setdefault(record.category, record.question)
        return list(by_category.values())[:count]

    @staticmethod
    def check_question(question: str) -> list[PiiFinding]:
        """Validate a question (raises QuestionRejected) and list what looks patient-identifiable."""
        return find_pii(validate_question(question))

    @staticmethod
    def redact_question(question: str) -> str:
        """The question with identifiers replaced by placeholders."""
        return redact(validate_question(question))

    # --- battles ---

    def start_battle(
        self,
        question: str,
        bank_id: str | None = None,
        *,
        session_id: str,
        confirmed_no_patient_data: bool = False,
        rater: Rater | None = None,
        client: str = "",
    ) -> StartedBattle:
        """Store a new battle owned by `session_id`. A question that looks patient-identifiable is
        refused with PiiDetected (nothing stored) unless the clinician confirmed it is not; the
        session's earlier battle, if still generating, is voided (one running battle per session)."""
        requested_at = time.perf_counter()  # the click: first-token times run from here
        if self.store.problem:
            raise BattleError(self.store.problem)
        text = validate_question(question)
        findings = find_pii(text)
        if findings and not confirmed_no_patient_data:
            raise PiiDetected(findings, redact(text, findings))
        bank = self.bank_question(bank_id) if bank_id else None
        if bank is not None and bank.question != text:
            bank = None  # the clinician edited the drawn question: no reference answer applies
        try:
            self.judgement.check_battle_allowed(client or session_id)
        except RateLimited as error:
            raise BattleError(str(error)) from None
        prepared = self.judgement.prepare(bank.id if bank else None, rater or Rater.for_session(session_id))
        names = self.engine.contestant_names()
        counts = self.store.contestant_battle_counts()  # per stable id
        name_a, name_b = self._pairing.draw(
            names, {n: counts.get(self.engine.contestant_id(n), 0) for n in names}
        )
        try:
            for previous in self.store.generating_battles(session_id):
                self.cancel_battle(previous, session_id, "replaced by a newer battle of the same session")
            self.store.void_stale_battles(
                self.store.now() - self.stale_after, "abandoned: still generating after the time limit"
            )
            battle_id = self.store.create_battle(
                **(
                    _prepared_fields(prepared)
                    if prepared
                    else dict(
                        question=text,
                        contestant_a=name_a,
                        contestant_b=name_b,
                        contestant_a_id=self.engine.contestant_id(name_a),
                        contestant_b_id=self.engine.contestant_id(name_b),
                        category=bank.category if bank else None,
                        reference_answer=bank.reference if bank else None,
                        question_source=f"bank:{bank.id}" if bank else "typed",
                    )
                ),
                generation_settings=self.settings.to_dict(),
                session_id=session_id,
            )
        except StoreError as error:
            raise BattleError(str(error)) from None
        except sqlite3.Error as error:
            raise BattleError(f"The battle could not be saved ({error}); nothing was stored.") from None
        with self._running_lock:
            self._running[battle_id] = (requested_at, threading.Event())
        if prepared:
            self.judgement.hold(battle_id, prepared)
            return StartedBattle(battle_id, prepared.question, prepared.category)
        return StartedBattle(battle_id, text, bank.category if bank else None)

    def cancel_battle(
        self,
        battle_id: str,
        session_id: str,
        reason: str = "cancelled by a new battle",
        *,
        wait_s: float = 0.0,
    ) -> bool:
        """Stop and void a battle of this session that is still generating; True if it was.

        With `wait_s`, also wait (that long at most) until its stream has ended, so the page's
        battle event is over when the caller returns ("New battle" then a quick "Ask" is not ignored).
        """
        battle = self.store.get_battle(battle_id) if battle_id else None
        if battle is None or battle.session_id != session_id:
            return False
        with self._running_lock:
            running = self._running.get(battle_id)
        if running is not None:
            running[1].set()  # its stream stops at the next token
        voided = self.store.void_if_generating(battle_id, reason)
        deadline = time.monotonic() + wait_s
        while running is not None and time.monotonic() < deadline:
            with self._running_lock:
                if battle_id not in self._running:
                    break
            time.sleep(0.05)
        return voided

    def stream_battle(self, battle_id: str, session_id: str) -> Iterator[BattleProgress]:
        """Generate both answers, yielding progress. Every way out leaves the battle finished or
        voided: an error, an empty answer, a cancel, a timeout, or the reader leaving (GeneratorExit)."""
        battle = self.store.get_battle(battle_id)
        if battle is None or battle.session_id != session_id:
            raise BattleError("This battle does not belong to this session; start a new battle.")
        if battle.status != "generating":
            with self._running_lock:  # cancelled before its stream began: nothing runs for it
                self._running.pop(battle_id, None)
            raise BattleError("This battle is not waiting for answers; start a new battle.")
        with self._running_lock:
            requested_at, cancel = self._running.get(battle_id, (None, threading.Event()))
        prepared = self.judgement.take(battle_id)
        if prepared is not None:  # calibration or re-served: the answers are known
            yield from self._show_prepared(battle_id, prepared)
            return
        last: PairUpdate | None = None
        pair = self.engine.stream_pair(
            battle.question, battle.contestant_a, battle.contestant_b, self.settings, requested_at
        )
        try:
            for update in pair:
                if cancel.is_set():
                    yield BattleProgress("", "", True, True, "This battle was cancelled.", cancelled=True)
                    return
                last = update
                yield BattleProgress(update.a.text, update.b.text, finished=False)
            failure = self._failure(last)
            if failure:
                self.store.void_if_generating(battle_id, failure)
                yield BattleProgress(
                    last.a.text if last else "", last.b.text if last else "", True, True, self._void_message()
                )
                return
            assert last is not None and last.a.telemetry and last.b.telemetry  # checked by _failure
            answer_a, answer_b = last.a.text, last.b.text
            score_a = score_b = None
            if battle.reference_answer and self._reference_scorer is not None:
                score_a, score_b = self._reference_scorer([answer_a, answer_b], [battle.reference_answer] * 2)
            try:
                self.store.finish_battle(
                    battle_id,
                    answer_a=answer_a,
                    answer_b=answer_b,
                    telemetry_a=last.a.telemetry.to_dict(),
                    telemetry_b=last.b.telemetry.to_dict(),
                    identity_leak=leaks_identity(answer_a) or leaks_identity(answer_b),
                    bertscore_a=score_a,
                    bertscore_b=score_b,
                )
            except BattleStateError:  # voided meanwhile (a newer battle of this session, the sweep)
                yield BattleProgress(
                    answer_a, answer_b, True, True, "This battle was cancelled.", cancelled=True
                )
                return
            yield BattleProgress(answer_a, answer_b, finished=True)
        except Exception as error:  # the engine reports model errors per side; this is the last resort
            self.store.void_if_generating(battle_id, f"{type(error).__name__}: {error}"[:500])
            yield BattleProgress("", "", finished=True, voided=True, message=self._void_message())
        finally:
            pair.close()  # stops the generation if the reader left mid-stream
            with self._running_lock:
                self._running.pop(battle_id, None)
            # GeneratorExit (tab closed, Gradio cancelled the event) lands here with the battle unfinished
            self.store.void_if_generating(battle_id, "the clinician left before the answers finished")

    def _show_prepared(self, battle_id: str, prepared: PreparedBattle) -> Iterator[BattleProgress]:
        try:
            self.store.finish_battle(
                battle_id, prepared.answer_a, prepared.answer_b, {}, {}, identity_leak=False
            )
            yield BattleProgress(prepared.answer_a, prepared.answer_b, finished=True)
        except BattleStateError:
            yield BattleProgress("", "", True, True, "This battle was cancelled.", cancelled=True)
        finally:
            with self._running_lock:
                self._running.pop(battle_id, None)

    @staticmethod
    def _failure(last: PairUpdate | None) -> str | None:
        """Why a finished stream cannot be a battle: an error, no telemetry, or an empty answer
        (a NaN adapter answers nothing; such a battle must not be voted on)."""
        if last is None:
            return "no answer"
        for side, state in (("A", last.a), ("B", last.b)):
            if state.error:
                return f"side {side}: {state.error}"
            if state.telemetry is None:
                return f"side {side}: no telemetry"
            if not state.text.strip():
                return f"side {side}: empty answer"
        return None

    @staticmethod
    def _void_message() -> str:
        return (
            "One of the models failed or gave an empty answer, so this battle was voided. "
            "Please start a new battle."
        )

    def vote(self, vote: VoteInput, *, rater: Rater | None = None, client: str = "") -> Reveal:
        """Record one vote, then reveal. The store refuses bad fields, votes from another session and
        forged, unfinished, voided or already-voted battles, storing nothing. Identifiers in the
        rationale are replaced by placeholders before it is stored."""
        if self.store.problem:
            raise VoteRejected(self.store.problem)
        vote = replace(
            vote,
            **{
                name: value.strip()
                for name in ("rationale", "voter_role", "voter_specialty")
                if isinstance(value := getattr(vote, name), str)
            },
        )
        redacted = isinstance(vote.rationale, str) and bool(find_pii(vote.rationale))
        if redacted:
            vote = replace(vote, rationale=redact(vote.rationale))
        client = client or str(vote.session_id)
        if isinstance(vote.battle_id, str) and self.store.turn_generating(vote.battle_id):
            raise VoteRejected("A follow-up is still being answered; vote once its answers are shown.")
        try:
            self.judgement.check_vote_allowed(str(vote.session_id), client)
        except RateLimited as error:
            raise VoteRejected(str(error)) from None
        try:
            self.store.record_vote(vote)
        except sqlite3.Error as error:
            raise VoteRejected(f"The vote could not be saved ({error}); please try again.") from None
        battle_id = vote.battle_id
        battle = self.store.get_battle(battle_id)
        assert battle is not None  # record_vote succeeded, so the battle exists
        quality = None
        try:  # the vote is stored; its quality record must not undo it
            rater = rater or Rater.for_session(str(vote.session_id))
            quality = self.judgement.after_vote(battle, str(vote.outcome), rater, client, self.store.now())
        except Exception:  # whatever fails here, the stored vote stands
            log.exception("storing the quality record of %s failed", battle_id)
        return Reveal(
            contestant_a=battle.contestant_a,
            contestant_b=battle.contestant_b,
            telemetry_a=battle.telemetry_a or {},
            telemetry_b=battle.telemetry_b or {},
            outcome=VoteOutcome(vote.outcome),
            counted=not battle.identity_leak,
            rationale_redacted=redacted,
            quality=quality,
            note=self.judgement.battle_note(battle),
        )

    # --- leaderboard ---

    def leaderboard(
        self,
        category: str | None = None,
        specialty: str | None = None,
        *,
        calibrated_only: bool = False,
        verified_only: bool = False,
    ) -> LeaderboardTable:
        """Typed standings for the votes kept by the filters (the UI formats them); too-fast,
        calibration and re-served votes are not rated (`Judgement.filter_rated`)."""
        served = {self.engine.contestant_id(name): name for name in self.engine.contestant_names()}
        rated, too_fast = self.judgement.filter_rated(
            self.store.rated_battles(), calibrated_only=calibrated_only, verified_only=verified_only
        )
        table = build_leaderboard(
            rated,
            self.store.eval_results(),
            self.store.telemetry_samples(),
            served,
            rounds=self.bootstrap_rounds,
            category=category,
            specialty=specialty,
        )
        if too_fast:
            note = f"{too_fast} votes came faster than their answers can be read: kept, not rated."
            table = replace(table, notes=[*table.notes, note])
        return table

    def served_labels(self) -> dict[str, str]:
        """Stable id -> current label of every served contestant."""
        return {self.engine.contestant_id(name): name for name in self.engine.contestant_names()}

    # --- export ---

    def export_votes(self, directory: Path) -> tuple[Path, Path]:
        """Write every vote as votes.csv and votes.jsonl in `directory`."""
        directory.mkdir(parents=True, exist_ok=True)
        csv_path, jsonl_path = directory / "votes.csv", directory / "votes.jsonl"
        write_votes_csv(self.store, csv_path)
        write_votes_jsonl(self.store, jsonl_path)
        return csv_path, jsonl_path


def _prepared_fields(prepared: PreparedBattle) -> dict[str, Any]:
    """`create_battle`'s fields for a calibration or re-served battle."""
    return {
        name: getattr(prepared, name)
        for name in (
            "question", "contestant_a", "contestant_b", "contestant_a_id", "contestant_b_id",
            "category", "reference_answer", "question_source",
        )
    }  # fmt: skip
