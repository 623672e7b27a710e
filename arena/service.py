"""The arena service: the one object the UI talks to. No Gradio here, no SQL here.

It draws questions and contestants, runs battles through the engine, keeps each battle's
contestants on the server (the browser only ever holds a battle id), stores results and votes
through the store, and derives the leaderboard from the raw votes with pure rating functions.

    from arena.service import ArenaService   # built by app.py: ArenaService.create(...)
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arena.backend import ArenaBackend
from arena.engine import GenerationSettings, PairUpdate, Telemetry
from arena.integrity import leaks_identity, pii_warnings, validate_question
from arena.ratings import (
    LeaderboardRow,
    RatedBattle,
    contestant_rates,
    filter_battles,
    leaderboard,
    position_bias,
    win_rate_matrix,
)
from arena.store import ArenaStore
from finetune.data import QARecord

ReferenceScorer = Callable[[list[str], list[str]], list[float]]


class BattleError(RuntimeError):
    """A battle that cannot be started or continued; the message is meant for the clinician."""


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


@dataclass(frozen=True)
class Reveal:
    contestant_a: str
    contestant_b: str
    telemetry_a: dict[str, Any]
    telemetry_b: dict[str, Any]
    outcome: str
    counted: bool  # False when an answer leaked its identity: stored, but not rated


@dataclass(frozen=True)
class LeaderboardTable:
    columns: list[str]
    rows: list[list[Any]]
    rating_rows: list[LeaderboardRow]
    heatmap: tuple[list[str], Any]
    votes: int
    position_bias: float | None
    agreement: tuple[float | None, float | None, float | None, int]
    categories: list[str]
    specialties: list[str]


@dataclass
class _Pairing:
    """Draws contestants, favouring those with fewer battles; sides are random."""

    rng: random.Random
    lock: threading.Lock = field(default_factory=threading.Lock)

    def draw(self, names: Sequence[str], battle_counts: dict[str, int]) -> tuple[str, str]:
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


def to_rated(rows: list[dict[str, Any]]) -> list[RatedBattle]:
    return [
        RatedBattle(
            model_a=row["contestant_a"],
            model_b=row["contestant_b"],
            outcome=row["outcome"],
            category=row.get("category"),
            specialty=row.get("voter_specialty") or None,
            flagged_a=bool(row.get("flag_a_unsafe") or row.get("flag_a_incorrect")),
            flagged_b=bool(row.get("flag_b_unsafe") or row.get("flag_b_incorrect")),
        )
        for row in rows
    ]


def _fmt(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _fmt_ci(metric: tuple[float, float | None, float | None] | None) -> str:
    if metric is None:
        return ""
    value, low, high = metric
    return f"{value:.3f}" + (f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else "")


LEADERBOARD_COLUMNS = [
    "Rank",
    "Contestant",
    "BT rating [95% CI]",
    "Elo",
    "Battles",
    "Win rate",
    "Both bad",
    "Safety flags",
    "BERTScore F1",
    "Embedding F1",
    "MCQ accuracy",
    "MCQ macro F1",
    "Median latency (s)",
    "Tokens/s",
    "Peak memory (MB)",
]


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
    ):
        self.engine = engine
        self.store = store
        self._notices = list(notices)  # start-up messages beside the engine's, e.g. "votes are not kept"
        self.settings = settings or GenerationSettings()
        self.bootstrap_rounds = bootstrap_rounds
        self._bank = {q.id: q for q in question_bank}
        self._reference_scorer = reference_scorer
        self._pairing = _Pairing(random.Random(seed))
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()

    # --- questions ---

    @property
    def warnings(self) -> list[str]:
        return [*self._notices, *self.engine.warnings]

    def random_question(self) -> BankQuestion:
        if not self._bank:
            raise BattleError("The question bank is empty.")
        with self._rng_lock:
            record = self._rng.choice(list(self._bank.values()))
        return BankQuestion(record.id, record.question, record.category, record.answer)

    def bank_question(self, question_id: str) -> BankQuestion | None:
        record = self._bank.get(question_id)
        return BankQuestion(record.id, record.question, record.category, record.answer) if record else None

    @staticmethod
    def check_question(question: str) -> list[str]:
        """Validate a question (raises QuestionRejected) and list what looks patient-identifiable."""
        return pii_warnings(validate_question(question))

    # --- battles ---

    def start_battle(self, question: str, bank_id: str | None = None) -> StartedBattle:
        text = validate_question(question)
        bank = self.bank_question(bank_id) if bank_id else None
        if bank is not None and bank.question != text:
            bank = None  # the clinician edited the drawn question: no reference answer applies
        name_a, name_b = self._pairing.draw(
            self.engine.contestant_names(), self.store.contestant_battle_counts()
        )
        battle_id = self.store.create_battle(
            question=text,
            contestant_a=name_a,
            contestant_b=name_b,
            generation_settings=self.settings.to_dict(),
            category=bank.category if bank else None,
            reference_answer=bank.reference if bank else None,
            question_source=f"bank:{bank.id}" if bank else "typed",
        )
        return StartedBattle(battle_id, text, bank.category if bank else None)

    def stream_battle(self, battle_id: str) -> Iterator[BattleProgress]:
        """Generate both answers, yielding progress; the battle is stored finished or voided."""
        battle = self.store.get_battle(battle_id)
        if battle is None or battle.status != "generating":
            raise BattleError("This battle is not waiting for answers; start a new battle.")
        last: PairUpdate | None = None
        try:
            for update in self.engine.stream_pair(
                battle.question, battle.contestant_a, battle.contestant_b, self.settings
            ):
                last = update
                yield BattleProgress(update.a.text, update.b.text, finished=False)
        except Exception as error:  # the engine reports model errors per side; this is the last resort
            self.store.void_battle(battle_id, f"{type(error).__name__}: {error}")
            yield BattleProgress("", "", finished=True, voided=True, message=self._void_message())
            return
        if (
            last is None
            or last.a.error
            or last.b.error
            or last.a.telemetry is None
            or last.b.telemetry is None
        ):
            reason = (last.a.error or last.b.error) if last else "no answer"
            self.store.void_battle(battle_id, reason or "no telemetry")
            yield BattleProgress(
                last.a.text if last else "", last.b.text if last else "", True, True, self._void_message()
            )
            return
        answer_a, answer_b = last.a.text, last.b.text
        score_a = score_b = None
        if battle.reference_answer and self._reference_scorer is not None:
            score_a, score_b = self._reference_scorer([answer_a, answer_b], [battle.reference_answer] * 2)
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
        yield BattleProgress(answer_a, answer_b, finished=True)

    @staticmethod
    def _void_message() -> str:
        return (
            "One of the models failed while answering, so this battle was voided. Please start a new battle."
        )

    def vote(
        self,
        battle_id: str,
        outcome: str,
        *,
        flag_a_unsafe: bool = False,
        flag_a_incorrect: bool = False,
        flag_b_unsafe: bool = False,
        flag_b_incorrect: bool = False,
        rationale: str = "",
        voter_role: str = "",
        voter_specialty: str = "",
        session_id: str = "",
    ) -> Reveal:
        """Record one vote, then reveal. The store refuses bad outcomes, over-long rationales and
        forged, unfinished, voided or already-voted battles, storing nothing."""
        self.store.record_vote(
            battle_id,
            outcome,
            flag_a_unsafe=flag_a_unsafe,
            flag_a_incorrect=flag_a_incorrect,
            flag_b_unsafe=flag_b_unsafe,
            flag_b_incorrect=flag_b_incorrect,
            rationale=(rationale or "").strip(),
            voter_role=(voter_role or "").strip()[:80],
            voter_specialty=(voter_specialty or "").strip()[:80],
            session_id=session_id,
        )
        battle = self.store.get_battle(battle_id)
        assert battle is not None  # record_vote succeeded, so the battle exists
        return Reveal(
            contestant_a=battle.contestant_a,
            contestant_b=battle.contestant_b,
            telemetry_a=battle.telemetry_a or {},
            telemetry_b=battle.telemetry_b or {},
            outcome=outcome,
            counted=not battle.identity_leak,
        )

    # --- leaderboard ---

    def leaderboard(self, category: str | None = None, specialty: str | None = None) -> LeaderboardTable:
        from arena.evaluate import leaderboard_metrics, metric_human_agreement

        raw = self.store.rated_battles()
        all_battles = to_rated(raw)
        battles = filter_battles(all_battles, category=category or None, specialty=specialty or None)
        rating_rows = leaderboard(battles, rounds=self.bootstrap_rounds, seed=0)
        rates = contestant_rates(battles)
        telemetry = self.store.contestant_telemetry()
        metrics = leaderboard_metrics(self.store.eval_results())
        rated_names = {row.name for row in rating_rows}
        rows: list[list[Any]] = []
        for row in rating_rows:
            rows.append(self._row(row.rank, row.name, row, rates.get(row.name), metrics, telemetry))
        # Contestants without votes still show their automatic metrics and telemetry.
        for name in self.engine.contestant_names():
            if name not in rated_names:
                rows.append(self._row(None, name, None, None, metrics, telemetry))
        return LeaderboardTable(
            columns=LEADERBOARD_COLUMNS,
            rows=rows,
            rating_rows=rating_rows,
            heatmap=win_rate_matrix(battles),
            votes=len(battles),
            position_bias=position_bias(battles),
            agreement=metric_human_agreement(raw),
            categories=sorted({b.category for b in all_battles if b.category}),
            specialties=sorted({b.specialty for b in all_battles if b.specialty}),
        )

    @staticmethod
    def _row(
        rank: int | None,
        name: str,
        rating: LeaderboardRow | None,
        rates: Any,
        metrics: dict[str, dict[str, Any]],
        telemetry: dict[str, dict[str, Any]],
    ) -> list[Any]:
        auto = metrics.get(name, {})
        speed = telemetry.get(name, {})
        return [
            rank if rank is not None else "",
            name,
            f"{rating.bt_rating:.0f} [{rating.ci_low:.0f}, {rating.ci_high:.0f}]" if rating else "",
            _fmt(rating.elo, 0) if rating else "",
            rating.battles if rating else 0,
            _fmt(rating.win_rate * 100, 0) + "%" if rating else "",
            _fmt(rates.both_bad_rate * 100, 0) + "%" if rates else "",
            _fmt(rates.safety_flag_rate * 100, 0) + "%" if rates else "",
            _fmt_ci(auto.get("bertscore_f1")),
            _fmt_ci(auto.get("embedding_f1")),
            _fmt_ci(auto.get("mcq_accuracy")),
            _fmt_ci(auto.get("mcq_f1_macro")),
            _fmt(speed.get("median_latency_s"), 2),
            _fmt(speed.get("median_tokens_per_s"), 1),
            _fmt(speed.get("max_peak_memory_mb"), 0),
        ]

    # --- export ---

    def export_votes(self, directory: Path) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        csv_path, jsonl_path = directory / "votes.csv", directory / "votes.jsonl"
        self.store.export_votes_csv(csv_path)
        self.store.export_votes_jsonl(jsonl_path)
        return csv_path, jsonl_path


def telemetry_summary(telemetry: dict[str, Any] | Telemetry) -> str:
    data = telemetry.to_dict() if isinstance(telemetry, Telemetry) else telemetry
    if not data:
        return ""
    memory = (
        f"{data.get('peak_memory_mb', 0):.0f} MB {'VRAM' if data.get('memory_kind') == 'vram' else 'RSS'}"
    )
    return (
        f"first token {data.get('ttft_s', 0):.2f} s · total {data.get('latency_s', 0):.2f} s · "
        f"{data.get('output_tokens', 0)} tokens · {data.get('tokens_per_s', 0):.1f} tok/s · {memory} · "
        f"adapter switch {data.get('adapter_switch_ms', 0):.3f} ms"
        + (" · batched with the other side" if data.get("batched_with_other_side") else "")
    )
