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
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from arena.board import NO_METRICS_NOTE
from arena.board_cache import BoardCache
from arena.export import write_votes_csv, write_votes_jsonl
from arena.follow_ups import FollowUpSettings, conversation, conversation_chars, transcript
from arena.integrity import (
    QuestionRejected as QuestionRejected,  # re-exported: the UI imports only this module
)
from arena.integrity import leaks_identity, validate_question
from arena.judgement import Judgement, PreparedBattle, RateLimited, Rater, VoteQuality
from arena.leaderboard import LeaderboardTable as LeaderboardTable  # re-exported for the UI
from arena.leaderboard import build_leaderboard
from arena.pacing import BattlePace, cut_at, cut_mark, paced_words, word_count, word_prefix
from arena.pairing import PairingError, PairingPolicy, draw_pair
from arena.pii import PiiFinding, describe, find_pii, redact
from arena.rater_quality import QualitySettings
from arena.serving.common import GenerationSettings, PairUpdate
from arena.serving.protocol import ArenaBackend
from arena.store.battles import MAX_RATIONALE_CHARS as MAX_RATIONALE_CHARS  # re-exported for the UI
from arena.store.battles import MAX_VOTER_FIELD_CHARS as MAX_VOTER_FIELD_CHARS  # re-exported for the UI
from arena.store.battles import BattleStateError, StoreError, StoreUnavailable, VoteRejected
from arena.store.judgement_tables import TurnRefused
from arena.store.protocol import BattleStatus, VoteStore
from arena.text_input import InputRefused, bounded_id, checked_vote_text, normalise
from arena.votes import VoteInput, VoteOutcome
from finetune.data import QARecord

log = logging.getLogger(__name__)
ReferenceScorer = Callable[[list[str], list[str]], list[float]]
log = logging.getLogger(__name__)


class BattleError(RuntimeError):
    """A battle that cannot be started or continued; the message is meant for the clinician."""


class StorageUnavailable(BattleError):
    """The vote database failed while running (disk full, read-only, locked): the storage sentence."""


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
    cut_a: int | None = None  # the token budget side A was cut at (its text then ends with a cut mark)
    cut_b: int | None = None


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
    """Draws contestant pairs with arena.pairing's policy (adapter vs own base, overlapping and
    under-voted pairs favoured); sides are random. Safe to share between handler threads."""

    rng: random.Random
    policy: PairingPolicy = field(default_factory=PairingPolicy)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def draw(
        self,
        ids: Sequence[str],
        pair_counts: Mapping[tuple[str, str], int],
        intervals: Mapping[str, tuple[float, float]] | None = None,
    ) -> tuple[str, str]:
        """Two different contestants (stable ids), in random side order."""
        with self.lock:  # random.Random is not safe to share between handler threads
            try:
                return draw_pair(self.rng, list(ids), pair_counts, intervals, self.policy)
            except PairingError as error:
                raise BattleError(str(error)) from None


STALE_AFTER = timedelta(minutes=15)  # a battle still generating after this was abandoned
HEARTBEAT_EVERY = timedelta(seconds=10)  # how often a running arena writes its owner heartbeat
OWNER_GONE_AFTER = timedelta(seconds=60)  # an owner silent this long is a process that is gone
SESSION_REPLACED = "replaced by a newer battle of the same session"
STATUS_CHECK_EVERY_S = 2.0  # while streaming, how often to look whether the battle was voided elsewhere


class JudgedVotes:
    """The board cache's vote source: the store's rated battles less the votes judgement does not rate
    (calibration and re-served battles, too-fast votes), each read once; `too_fast` counts those left
    out for being too fast. `lock` is held while a vote and its quality record are written, so a read
    never sees a vote without the record that decides whether it is rated."""

    def __init__(self, store: VoteStore, judgement: Judgement):
        self.store = store
        self.judgement = judgement
        self.lock = threading.Lock()
        self.too_fast = 0
        self._read_through = 0  # the newest vote id read, rated or not

    def rated_battles(
        self, *, include_identity_leaks: bool = False, after_vote_id: int = 0
    ) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.store.rated_battles(
                include_identity_leaks=include_identity_leaks,
                after_vote_id=max(after_vote_id, self._read_through),
            )
            kept, too_fast = self.judgement.filter_rated(rows)
        self.too_fast += too_fast
        self._read_through = max([self._read_through, *(int(row["vote_id"]) for row in rows)])
        return kept

    def telemetry_samples(self) -> dict[str, list[dict[str, Any]]]:
        return self.store.telemetry_samples()


class ArenaService:
    def __init__(
        self,
        engine: ArenaBackend,
        store: VoteStore,
        question_bank: Sequence[QARecord],
        *,
        settings: GenerationSettings | None = None,
        reference_scorer: ReferenceScorer | None = None,
        seed: int | None = None,
        bootstrap_rounds: int = 200,
        notices: Sequence[str] = (),
        stale_after: timedelta = STALE_AFTER,
        heartbeat_every: timedelta | None = HEARTBEAT_EVERY,
        owner_gone_after: timedelta = OWNER_GONE_AFTER,
        pairing_policy: PairingPolicy | None = None,
        board_in_background: bool = True,
        pace: BattlePace | None = None,
        judgement: Judgement | None = None,
        follow_ups: FollowUpSettings | None = None,
    ):
        """`heartbeat_every=None` writes one heartbeat at start and none after (tests that drive it)."""
        self.engine = engine
        self.store = store
        self._notices = list(notices)  # start-up messages beside the engine's, e.g. "votes are not kept"
        self.settings = settings or GenerationSettings()
        self.bootstrap_rounds = bootstrap_rounds
        # The board is computed once and kept current vote by vote; bootstraps refresh in the
        # background (inline when board_in_background is False: every board fully fresh).
        # rubric, rater quality, caps, calibration and re-served battles (arena.judgement)
        self.judgement = judgement or Judgement(store, question_bank, QualitySettings.off(), seed=seed)
        self._judged_votes = JudgedVotes(store, self.judgement)
        self._board = BoardCache(self._judged_votes, rounds=bootstrap_rounds, background=board_in_background)
        if store.problem is None and board_in_background:
            self._board.warm_up()
        self.stale_after = stale_after
        self.pace = pace or BattlePace()  # both sides reach the browser at one pace (arena/pacing.py)
        self._bank = {q.id: q for q in question_bank}
        self._reference_scorer = reference_scorer
        self._pairing = Pairing(random.Random(seed), pairing_policy or PairingPolicy())
        # Rating intervals (by stable id) from the latest full board, for the pairing policy.
        self._intervals: dict[str, tuple[float, float]] = {}
        self._intervals_lock = threading.Lock()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        # battle id -> (click time, cancel event): what the running stream of a battle needs
        self._running: dict[str, tuple[float, threading.Event]] = {}
        self._running_lock = threading.Lock()
        self.voided_at_start = 0
        # This process's owner id: its battles carry it, and its heartbeat says it is alive, so an
        # arena starting on the same database voids only battles whose process is gone.
        self.owner_id = uuid.uuid4().hex
        self.owner_gone_after = owner_gone_after
        self._fault: str | None = None  # a storage failure seen while running, for the banner
        self._stop = threading.Event()
        self.follow_up_settings = follow_ups or FollowUpSettings()  # up to N turns before the vote
        self.auto_metrics: Any = None  # arena.eval.auto_metrics.AutoMetrics, once start_auto_metrics runs
        if store.problem is None:
            self.beat()
            with self._stored():
                self.voided_at_start = self._void_orphans()
            if heartbeat_every is not None:
                threading.Thread(
                    target=self._beat_until_closed,
                    args=(heartbeat_every.total_seconds(),),
                    name=f"arena-heartbeat-{self.owner_id[:8]}",
                    daemon=True,
                ).start()

    # --- process ownership and storage health ---

    def beat(self) -> None:
        """Write this process's heartbeat; its success or failure is what the storage banner shows."""
        try:
            self.store.beat(self.owner_id)
        except (StoreUnavailable, OSError) as fault:
            self._fault = self._storage_sentence(fault)
        else:
            self._fault = None

    def _beat_until_closed(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            self.beat()

    def _void_orphans(self) -> int:
        """Void generating battles whose arena process stopped beating (never this process's)."""
        return self.store.void_orphaned_battles(
            self.owner_id,
            self.store.now() - self.owner_gone_after,
            "the arena process answering it stopped (restarted or crashed) before the answers finished",
        )

    def close(self) -> None:
        """Stop the heartbeat and retire this owner (its unfinished battles are then orphans)."""
        self._stop.set()
        try:
            self.store.retire(self.owner_id)
        except (StoreUnavailable, OSError) as fault:
            log.warning("could not retire arena owner %s: %s", self.owner_id, fault)

    def _storage_sentence(self, fault: BaseException) -> str:
        """The sentence a person sees for a storage failure: the store's own (it names the database and
        says read-only / disk full), or an OS error worded the same way."""
        if isinstance(fault, StoreUnavailable):
            return str(fault)
        return f"The vote database {self.store.location} cannot be written ({fault}); votes cannot be saved."

    @contextmanager
    def _stored(self, error: type[Exception] = StorageUnavailable, consequence: str = "") -> Iterator[None]:
        """Turn a storage failure inside the block into `error` carrying the storage sentence (and
        show it on the banner): never a driver's error, never the generic message."""
        try:
            yield
        except (StoreUnavailable, OSError) as fault:
            sentence = self._storage_sentence(fault)
            self._fault = sentence
            log.warning("storage failure: %s", fault)
            raise error(f"{sentence} {consequence}".strip()) from None

    # --- questions ---

    @property
    def warnings(self) -> list[str]:
        """Start-up notices for the person running the arena (storage, skipped models)."""
        return [*self._notices, *self.engine.warnings]

    @property
    def storage_problem(self) -> str | None:
        """A sentence for a banner when the vote database cannot take votes, else None: the start-up
        check's, or the last failure seen while running (cleared by the next heartbeat that writes)."""
        return self.store.problem or self._fault

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
        try:  # sizes first: nothing below ever sees an unbounded string
            bounded_id(session_id, "session id")
            bounded_id(bank_id, "bank question id")
        except InputRefused as refused:
            raise BattleError(str(refused)) from None
        text = validate_question(question)
        if self.store.problem:
            raise BattleError(self.store.problem)
        findings = find_pii(text)
        if findings and not confirmed_no_patient_data:
            raise PiiDetected(findings, redact(text, findings))
        bank = self.bank_question(bank_id) if bank_id else None
        if bank is not None and normalise(bank.question, single_line=False) != text:
            bank = None  # the clinician edited the drawn question: no reference answer applies
        try:
            self.judgement.check_battle_allowed(client or session_id)
        except RateLimited as error:
            raise BattleError(str(error)) from None
        nothing_stored = "Nothing was stored; please try again."
        with self._stored(consequence=nothing_stored):
            prepared = self.judgement.prepare(
                bank.id if bank else None, rater or Rater.for_session(session_id)
            )
        if prepared:  # a calibration or re-served battle brings its own contestants and answers
            fields = _prepared_fields(prepared)
        else:
            by_id = {self.engine.contestant_id(name): name for name in self.engine.contestant_names()}
            with self._intervals_lock:
                intervals = dict(self._intervals)
            with self._stored(consequence=nothing_stored):
                pair_counts = self.store.pair_battle_counts()
            id_a, id_b = self._pairing.draw(list(by_id), pair_counts, intervals or None)
            name_a, name_b = by_id[id_a], by_id[id_b]
            fields = dict(
                question=text,
                contestant_a=name_a,
                contestant_b=name_b,
                contestant_a_id=id_a,
                contestant_b_id=id_b,
                category=bank.category if bank else None,
                reference_answer=bank.reference if bank else None,
                question_source=f"bank:{bank.id}" if bank else "typed",
            )
        try:
            with self._stored(consequence=nothing_stored):
                for previous in self.store.generating_battles(session_id):
                    self.cancel_battle(previous, session_id, SESSION_REPLACED)
                self.store.void_stale_battles(
                    self.store.now() - self.stale_after, "abandoned: still generating after the time limit"
                )
                self._void_orphans()
                battle_id = self.store.create_battle(
                    **fields,
                    generation_settings=self.settings.to_dict(),
                    session_id=session_id,
                    owner_id=self.owner_id,
                )
        except StoreError as error:
            raise BattleError(str(error)) from None
        self._fault = None  # a write went through: the store works
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
        with self._stored():
            battle = self.store.get_battle(battle_id) if isinstance(battle_id, str) and battle_id else None
        if battle is None or battle.session_id != session_id:
            return False
        with self._running_lock:
            running = self._running.get(battle_id)
        if running is not None:
            running[1].set()  # its stream stops at the next token
        with self._stored():
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
        with self._stored(consequence="Please start a new battle."):
            battle = self.store.get_battle(battle_id)
        if battle is None or battle.session_id != session_id:
            raise BattleError("This battle does not belong to this session; start a new battle.")
        if battle.status != "generating":
            with self._running_lock:  # cancelled before its stream began: nothing runs for it
                self._running.pop(battle_id, None)
            if battle.status == BattleStatus.VOIDED:
                raise BattleError(
                    f"This battle was voided ({battle.void_reason}). Please start a new battle."
                )
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
        next_status_check = time.monotonic() + STATUS_CHECK_EVERY_S
        both_started: float | None = None  # when both sides had words: the common pace runs from here
        shown = (0, 0)
        try:
            for update in pair:
                if cancel.is_set():
                    yield BattleProgress("", "", True, True, "This battle was cancelled.", cancelled=True)
                    return
                if time.monotonic() >= next_status_check:  # voided by another process meanwhile?
                    next_status_check = time.monotonic() + STATUS_CHECK_EVERY_S
                    gone = self._voided_elsewhere(battle_id)
                    if gone is not None:
                        yield gone
                        return
                last = update
                if both_started is None and update.a.text.strip() and update.b.text.strip():
                    both_started = time.monotonic()
                paced = self._paced(update.a.text, update.b.text, update.a.done, update.b.done, both_started)
                if paced != shown:
                    shown = paced
                    yield BattleProgress(
                        word_prefix(update.a.text, paced[0]),
                        word_prefix(update.b.text, paced[1]),
                        finished=False,
                    )
            failure = self._failure(last)
            if failure:
                self.store.void_if_generating(battle_id, failure)
                yield BattleProgress(
                    last.a.text if last else "", last.b.text if last else "", True, True, self._void_message()
                )
                return
            assert last is not None and last.a.telemetry and last.b.telemetry  # checked by _failure
            answer_a, answer_b = last.a.text, last.b.text
            cut_a = cut_at(last.a.telemetry.output_tokens, self.settings.max_new_tokens)
            cut_b = cut_at(last.b.telemetry.output_tokens, self.settings.max_new_tokens)
            weights_a, weights_b = (
                self.engine.contestant_weights(n) for n in (battle.contestant_a, battle.contestant_b)
            )
            score_a = score_b = None
            if battle.reference_answer and self._reference_scorer is not None:
                score_a, score_b = self._reference_scorer([answer_a, answer_b], [battle.reference_answer] * 2)
            try:
                self.store.finish_battle(
                    battle_id,
                    answer_a=answer_a,
                    answer_b=answer_b,
                    # each side's served weights beside its answer: the vote's provenance
                    telemetry_a={**last.a.telemetry.to_dict(), "cut_at_tokens": cut_a, "weights": weights_a},
                    telemetry_b={**last.b.telemetry.to_dict(), "cut_at_tokens": cut_b, "weights": weights_b},
                    identity_leak=leaks_identity(answer_a) or leaks_identity(answer_b),
                    bertscore_a=score_a,
                    bertscore_b=score_b,
                )
            except BattleStateError:  # voided meanwhile (a newer battle of this session, the sweep)
                yield self._voided_elsewhere(battle_id) or BattleProgress(
                    answer_a, answer_b, True, True, "This battle was cancelled.", cancelled=True
                )
                return
            # The rest of both answers at the common pace, then the whole answers with their cut marks.
            started = both_started if both_started is not None else time.monotonic()
            while shown != (word_count(answer_a), word_count(answer_b)):
                if cancel.is_set():
                    yield BattleProgress("", "", True, True, "This battle was cancelled.", cancelled=True)
                    return
                time.sleep(0.05)
                paced = self._paced(answer_a, answer_b, True, True, started)
                if paced != shown:
                    shown = paced
                    yield BattleProgress(
                        word_prefix(answer_a, paced[0]), word_prefix(answer_b, paced[1]), False
                    )
            self._fault = None  # a write went through: the store works
            yield BattleProgress(
                answer_a + (cut_mark(cut_a) if cut_a else ""),
                answer_b + (cut_mark(cut_b) if cut_b else ""),
                finished=True,
                cut_a=cut_a,
                cut_b=cut_b,
            )
        except (StoreUnavailable, OSError) as fault:  # the store failed: the storage sentence, not a void
            self._fault = self._storage_sentence(fault)
            log.warning("storage failure in battle %s: %s", battle_id, fault)
            message = f"{self._fault} This battle could not be saved; please start a new battle."
            yield BattleProgress("", "", finished=True, voided=True, message=message)
        except Exception as error:  # the engine reports model errors per side; this is the last resort
            self._void_quietly(battle_id, f"{type(error).__name__}: {error}"[:500])
            yield BattleProgress("", "", finished=True, voided=True, message=self._void_message())
        finally:
            pair.close()  # stops the generation if the reader left mid-stream
            with self._running_lock:
                self._running.pop(battle_id, None)
            # GeneratorExit (tab closed, Gradio cancelled the event) lands here with the battle unfinished
            self._void_quietly(battle_id, "the clinician left before the answers finished")

    def _void_quietly(self, battle_id: str, reason: str) -> None:
        """Void a battle still generating, on a way out that must not raise (a failing store leaves
        it generating: the stale sweep voids it later, and nothing acknowledged depends on it)."""
        try:
            self.store.void_if_generating(battle_id, reason)
        except (StoreUnavailable, OSError) as fault:
            self._fault = self._storage_sentence(fault)
            log.warning("could not void battle %s: %s", battle_id, fault)

    def _voided_elsewhere(self, battle_id: str) -> BattleProgress | None:
        """The progress to show when the battle was voided by something other than this stream: a
        newer battle of the same session (cancelled: the page already shows that one), or anything
        else (another arena process, the stale sweep), whose reason the clinician is shown."""
        battle = self.store.get_battle(battle_id)
        if battle is None or battle.status != BattleStatus.VOIDED:
            return None
        if battle.void_reason in (SESSION_REPLACED, "the clinician started a new battle"):
            return BattleProgress("", "", True, True, "This battle was cancelled.", cancelled=True)
        return BattleProgress(
            "", "", True, True, f"This battle was voided ({battle.void_reason}). Please start a new battle."
        )

    def _paced(
        self, text_a: str, text_b: str, done_a: bool, done_b: bool, started: float | None
    ) -> tuple[int, int]:
        """Words of each side the browser may show now (arena/pacing.py)."""
        elapsed = None if started is None else time.monotonic() - started
        return paced_words(word_count(text_a), word_count(text_b), done_a, done_b, elapsed, self.pace)

    def _show_prepared(self, battle_id: str, prepared: PreparedBattle) -> Iterator[BattleProgress]:
        try:
            with self._stored(consequence="This battle was not stored; please start a new battle."):
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

    # --- follow-up turns (arena/follow_ups.py: settings, budgets, transcripts) ---

    def ask_follow_up(
        self, battle_id: str, question: str, *, session_id: str, confirmed_no_patient_data: bool = False
    ) -> int:
        """Check and store a follow-up; returns its turn number. Raises QuestionRejected, PiiDetected
        (nothing stored) or BattleError with a sentence."""
        if not getattr(self.engine, "supports_follow_ups", False):
            raise BattleError(f"The {self.engine.kind} backend here does not take follow-up questions.")
        text = validate_question(question)
        findings = find_pii(text)
        if findings and not confirmed_no_patient_data:
            raise PiiDetected(findings, redact(text, findings))
        budget = self.follow_up_settings.max_conversation_chars
        with self._stored(consequence="Nothing was stored; please try again."):  # the storage sentence
            battle = self.store.get_battle(battle_id)
            if battle is None or battle.session_id != session_id:
                raise BattleError("This battle does not belong to this session; start a new battle.")
            turns = [turn for turn in self.store.battle_turns(battle_id) if turn["status"] == "finished"]
        used = conversation_chars(battle, turns)
        if used + len(text) > budget:
            raise BattleError(
                f"This conversation has reached its length budget ({used:,} of "
                f"{budget:,} characters); please vote, then start a new battle."
            )
        try:
            with self._stored(consequence="Nothing was stored; please try again."):
                turn = self.store.add_turn(battle_id, session_id, text, self.follow_up_settings.max_turns)
        except TurnRefused as error:
            raise BattleError(str(error)) from None
        with self._running_lock:
            self._running[battle_id] = (time.perf_counter(), threading.Event())
        return turn

    def stream_follow_up(self, battle_id: str, session_id: str) -> Iterator[BattleProgress]:
        """Answer the battle's generating follow-up with both contestants; yields both transcripts.
        Every way out leaves the turn finished or voided; the battle's earlier turns stay votable."""
        with self._stored(consequence="The follow-up was not answered."):
            battle = self.store.get_battle(battle_id)
            turns = self.store.battle_turns(battle_id)
        if battle is None or battle.session_id != session_id:
            raise BattleError("This battle does not belong to this session; start a new battle.")
        current = next((turn for turn in turns if turn["status"] == "generating"), None)
        if current is None:
            raise BattleError("No follow-up is waiting for answers.")
        earlier = [turn for turn in turns if turn["status"] == "finished" and turn["turn"] < current["turn"]]
        shown = [*earlier, current]
        with self._running_lock:
            requested_at, cancel = self._running.get(battle_id, (None, threading.Event()))
        pair = self.engine.stream_pair(
            conversation(battle, earlier, current["question"]),
            battle.contestant_a,
            battle.contestant_b,
            self.settings,
            requested_at,
        )
        first_a, first_b = battle.answer_a or "", battle.answer_b or ""
        last = None
        finished = False
        try:
            for update in pair:
                if cancel.is_set():
                    yield BattleProgress("", "", True, True, "This follow-up was cancelled.", cancelled=True)
                    return
                last = update
                yield BattleProgress(
                    transcript(first_a, shown, "a", update.a.text),
                    transcript(first_b, shown, "b", update.b.text),
                    finished=False,
                )
            failure = self._failure(last)
            if failure:
                self.store.void_turn(battle_id, current["turn"], failure)
                yield BattleProgress(
                    transcript(first_a, earlier, "a"),
                    transcript(first_b, earlier, "b"),
                    True,
                    True,
                    "A model failed to answer the follow-up; you can still vote on the answers above.",
                )
                return
            answers = (last.a.text, last.b.text)
            try:
                self.store.finish_turn(
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
                transcript(first_a, [*earlier, done], "a"),
                transcript(first_b, [*earlier, done], "b"),
                finished=True,
            )
        finally:
            pair.close()
            with self._running_lock:
                self._running.pop(battle_id, None)
            if not finished:
                self.store.void_turn(battle_id, current["turn"], "the follow-up did not finish")

    def vote(self, vote: VoteInput, *, rater: Rater | None = None, client: str = "") -> Reveal:
        """Record one vote, then reveal. The store refuses bad fields, votes from another session and
        forged, unfinished, voided or already-voted battles, storing nothing. Identifiers in the
        rationale are replaced by placeholders before it is stored. Every text field is length-checked
        before anything else looks at it, then normalised (arena.text_input), so what is stored is what
        the filters and exports see. A voided battle's refusal says why it was voided."""
        try:
            vote = checked_vote_text(vote)
        except InputRefused as refused:
            raise VoteRejected(str(refused)) from None
        if self.store.problem:
            raise VoteRejected(self.store.problem)
        redacted = bool(find_pii(vote.rationale))
        if redacted:
            vote = replace(vote, rationale=redact(vote.rationale))
        client = client or str(vote.session_id)
        try:
            self.judgement.check_vote_allowed(str(vote.session_id), client)
        except RateLimited as error:
            raise VoteRejected(str(error)) from None
        not_recorded = "Your vote was not recorded; please try again."
        with self._stored(VoteRejected, not_recorded):
            if isinstance(vote.battle_id, str) and self.store.turn_generating(vote.battle_id):
                raise VoteRejected("A follow-up is still being answered; vote once its answers are shown.")
            # read first: once the vote is stored, nothing may fail and make it look unrecorded
            battle = self.store.get_battle(vote.battle_id)
            with self._judged_votes.lock:  # the board reads a vote together with its quality record
                try:
                    self.store.record_vote(vote)  # refuses a missing, foreign, unfinished or voted battle
                except VoteRejected:
                    if (
                        battle
                        and battle.status == BattleStatus.VOIDED
                        and battle.session_id == vote.session_id
                    ):
                        raise VoteRejected(
                            f"This battle was voided ({battle.void_reason}), so it no longer takes votes. "
                            "Please start a new battle."
                        ) from None
                    raise
                self._fault = None  # a write went through: the store works
                assert battle is not None  # record_vote succeeded, so the battle exists
                battle_id = battle.id
                quality = None
                try:  # the vote is stored; its quality record must not undo it
                    rater = rater or Rater.for_session(str(vote.session_id))
                    quality = self.judgement.after_vote(
                        battle, str(vote.outcome), rater, client, self.store.now()
                    )
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
        task: str | None = None,
        question_specialty: str | None = None,
        calibrated_only: bool = False,
        verified_only: bool = False,
    ) -> LeaderboardTable:
        """Typed standings for the votes kept by the filters (the UI formats them): data-set category,
        voter specialty, the question's task type and specialty (arena/categories.py), and the rater
        filters. Too-fast, calibration and re-served votes are not rated (`Judgement.filter_rated`)."""
        served = {self.engine.contestant_id(name): name for name in self.engine.contestant_names()}
        filters = dict(
            category=category, specialty=specialty, task=task, question_specialty=question_specialty,
            served_weights=self.served_weights(),
        )  # fmt: skip
        with self._stored(consequence="The leaderboard cannot be shown just now."):
            if calibrated_only or verified_only:  # rater standing changes with every vote: read afresh
                rated, too_fast = self.judgement.filter_rated(
                    self.store.rated_battles(), calibrated_only=calibrated_only, verified_only=verified_only
                )
                table = build_leaderboard(
                    rated,
                    self.store.eval_results(),
                    self.store.telemetry_samples(),
                    served,
                    rounds=self.bootstrap_rounds,
                    **filters,
                )
            else:
                table = self._board.table(self.store.eval_results(), served, **filters)
                too_fast = self._judged_votes.too_fast
        if not any((category, specialty, task, question_specialty, calibrated_only, verified_only)):
            with self._intervals_lock:  # all rated votes: what pairing should see
                self._intervals = {
                    standing.contestant_id: (standing.rating.ci_low, standing.rating.ci_high)
                    for standing in table.rows
                    if standing.rating is not None
                }
        if too_fast:
            note = f"{too_fast} votes came faster than their answers can be read: kept, not rated."
            table = replace(table, notes=[*table.notes, note])
        measuring = self.auto_metrics.note() if self.auto_metrics is not None else None
        if measuring:  # replaces the "metrics are empty" note
            table = replace(table, notes=[*(n for n in table.notes if n != NO_METRICS_NOTE), measuring])
        return table

    def start_auto_metrics(self, settings: Any = None) -> Any:
        """Measure, in the background, the board metrics missing for the weights served now
        (`arena.eval.auto_metrics`); the board carries a note while it runs. Returns the job."""
        from arena.eval.auto_metrics import AutoMetrics

        if self.store.problem is None:
            self.auto_metrics = AutoMetrics.start(self.engine, self.store, self.served_weights(), settings)  # type: ignore[arg-type]
        return self.auto_metrics

    def served_labels(self) -> dict[str, str]:
        """Stable id -> current label of every served contestant."""
        return {self.engine.contestant_id(name): name for name in self.engine.contestant_names()}

    def served_weights(self) -> dict[str, str]:
        """Stable id -> the weights each contestant is served on now (the board's metric provenance)."""
        return {
            self.engine.contestant_id(name): self.engine.contestant_weights(name)
            for name in self.engine.contestant_names()
        }

    # --- export ---

    def export_votes(self, directory: Path) -> tuple[Path, Path]:
        """Write every vote as votes.csv and votes.jsonl in `directory`."""
        csv_path, jsonl_path = directory / "votes.csv", directory / "votes.jsonl"
        with self._stored(consequence="The export was not written."):
            directory.mkdir(parents=True, exist_ok=True)
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
