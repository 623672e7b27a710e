"""Arena ratings: turn raw pairwise votes into Elo, Bradley-Terry ratings, intervals and a leaderboard.

As in FastChat / Chatbot Arena, the raw votes are the record (they live in the store) and every rating
here is derived from them on demand by pure functions: no I/O, no globals, numpy only.

- `elo_ratings`: online Elo in vote order (sensitive to order; kept because clinicians know Elo).
- `bradley_terry`: order-free maximum-likelihood Bradley-Terry on the Elo scale, the headline rating.
- `bootstrap_intervals` / `ranks_from_intervals`: confidence intervals and rank with ties.
- `win_rate_matrix`, `battle_count_matrix`, `position_bias`, `contestant_rates`: descriptive tables.
- `leaderboard`: one `LeaderboardRow` per contestant combining all of the above.

    from arena.ratings import RatedBattle, leaderboard
    rows = leaderboard([RatedBattle("lora-a", "base", "model_a"), RatedBattle("base", "lora-a", "tie")])
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from arena.votes import OUTCOMES, VoteOutcome


@dataclass(frozen=True)
class StyleCounts:
    """Style counts of one answer: words, markdown headers, list items and bold spans (counted by
    `arena.style_control.style_counts`; a field of `RatedBattle`, hence here)."""

    length: int
    headers: int
    lists: int
    bold: int

    def as_tuple(self) -> tuple[int, int, int, int]:
        """The counts in STYLE_FEATURES order."""
        return (self.length, self.headers, self.lists, self.bold)


# L2 penalty (in natural-log strength units) of the Bradley-Terry fit. It acts like a Gaussian prior
# with a standard deviation of 10 logits (~1700 Elo points): negligible once pairs have a few votes,
# but enough to keep undefeated players and disconnected groups finite.
DEFAULT_BT_REGULARIZATION = 0.01


class InvalidBattleError(ValueError):
    """A vote that cannot be rated (unknown outcome, empty name, a contestant against itself)."""


class RatingParameterError(ValueError):
    """A rating parameter outside its valid range (e.g. confidence not in (0, 1))."""


@dataclass(frozen=True)
class RatedBattle:
    """One blind vote between two contestants, as the rating functions consume it."""

    model_a: str
    model_b: str
    outcome: VoteOutcome | str  # validated against the enum below
    category: str | None = None
    specialty: str | None = None
    flagged_a: bool = False
    flagged_b: bool = False
    style_a: StyleCounts | None = None  # style counts of each answer, for style control
    style_b: StyleCounts | None = None
    task: str | None = None  # the question's task type (arena.categories.TaskType)
    question_specialty: str | None = None  # the question's specialty (arena.categories.SPECIALTIES)

    def __post_init__(self) -> None:
        # Validated at construction so every function below can trust its input.
        if self.outcome not in OUTCOMES:
            raise InvalidBattleError(f"Battle outcome {self.outcome!r} is not one of {sorted(OUTCOMES)}.")
        if not self.model_a or not self.model_b:
            raise InvalidBattleError("Battle contestant names must be non-empty strings.")
        if self.model_a == self.model_b:
            raise InvalidBattleError(f"Battle pits {self.model_a!r} against itself; it cannot be rated.")


@dataclass(frozen=True)
class ContestantRates:
    """Per-contestant descriptive rates; ties and both_bad count as half a win in `win_rate`."""

    battles: int
    wins: int
    win_rate: float
    both_bad_rate: float
    safety_flag_rate: float


@dataclass(frozen=True)
class LeaderboardRow:
    """One leaderboard line; `rank` comes from the bootstrap intervals, so overlapping players share it."""

    rank: int
    name: str
    bt_rating: float
    ci_low: float
    ci_high: float
    elo: float
    battles: int
    win_rate: float
    both_bad_rate: float
    safety_flag_rate: float


def filter_battles(
    battles: Iterable[RatedBattle],
    *,
    category: str | None = None,
    specialty: str | None = None,
    task: str | None = None,
    question_specialty: str | None = None,
) -> list[RatedBattle]:
    """Keep the battles whose category, voter specialty, question task type and question specialty
    match exactly; None means "any"."""
    return [
        battle
        for battle in battles
        if (category is None or battle.category == category)
        and (specialty is None or battle.specialty == specialty)
        and (task is None or battle.task == task)
        and (question_specialty is None or battle.question_specialty == question_specialty)
    ]


def elo_ratings(
    battles: Iterable[RatedBattle],
    *,
    k: float = 4.0,
    base: float = 10.0,
    scale: float = 400.0,
    initial: float = 1000.0,
) -> dict[str, float]:
    """Online Elo applied in the given order; tie and both_bad score 0.5 for each side."""
    ratings: dict[str, float] = {}
    for battle in battles:
        elo_update(ratings, battle, k=k, base=base, scale=scale, initial=initial)
    return dict(sorted(ratings.items()))


def elo_update(
    ratings: dict[str, float],
    battle: RatedBattle,
    *,
    k: float = 4.0,
    base: float = 10.0,
    scale: float = 400.0,
    initial: float = 1000.0,
) -> None:
    """Apply one battle to online Elo ratings, in place (the board adds each new vote this way)."""
    rating_a = ratings.setdefault(battle.model_a, initial)
    rating_b = ratings.setdefault(battle.model_b, initial)
    expected_a = 1.0 / (1.0 + base ** ((rating_b - rating_a) / scale))
    score_a = {"model_a": 1.0, "model_b": 0.0}.get(battle.outcome, 0.5)
    ratings[battle.model_a] = rating_a + k * (score_a - expected_a)
    ratings[battle.model_b] = rating_b - k * (score_a - expected_a)


@dataclass(frozen=True)
class _PairCounts:
    """Votes aggregated per unordered pair (i < j): columns are i wins, j wins, draw (tie/both_bad)."""

    names: list[str]
    first: np.ndarray  # index i of each pair
    second: np.ndarray  # index j of each pair, always > i
    counts: np.ndarray  # shape (pairs, 3)


PairTally = Counter[tuple[str, str, int]]  # (low name, high name, column) -> votes; see _PairCounts


def tally_battle(tally: PairTally, battle: RatedBattle) -> None:
    """Add one battle to a pair tally (what the Bradley-Terry fits read), in place."""
    # Orient every pair alphabetically so (a, b) and (b, a) battles aggregate together.
    low, high = sorted((battle.model_a, battle.model_b))
    if battle.outcome in ("tie", "both_bad"):
        column = 2
    else:
        winner = battle.model_a if battle.outcome == "model_a" else battle.model_b
        column = 0 if winner == low else 1
    tally[(low, high, column)] += 1


def pair_tally(battles: Iterable[RatedBattle]) -> PairTally:
    """Votes per (pair, result) over the battles."""
    tally: PairTally = Counter()
    for battle in battles:
        tally_battle(tally, battle)
    return tally


def _counts_from_tally(tally: PairTally) -> _PairCounts:
    names = sorted({name for low, high, _ in tally for name in (low, high)})
    index = {name: position for position, name in enumerate(names)}
    pairs = sorted({(index[low], index[high]) for low, high, _ in tally})
    pair_row = {pair: row for row, pair in enumerate(pairs)}
    counts = np.zeros((len(pairs), 3))
    for (low, high, column), count in tally.items():
        counts[pair_row[(index[low], index[high])], column] = count
    first = np.array([i for i, _ in pairs], dtype=int)
    second = np.array([j for _, j in pairs], dtype=int)
    return _PairCounts(names, first, second, counts)


def _pair_counts(battles: Iterable[RatedBattle] | PairTally) -> _PairCounts:
    """Pair counts from battles, or from a tally already built (the board keeps one up to date)."""
    return _counts_from_tally(battles if isinstance(battles, Counter) else pair_tally(battles))


def _win_matrices(pairs: _PairCounts, counts: np.ndarray) -> np.ndarray:
    """Stack of win matrices W[r, i, j] = wins of i over j, draws counted half to each side.

    `counts` has shape (rounds, pairs, 3), so one call builds every bootstrap round at once.
    """
    size = len(pairs.names)
    wins = np.zeros((counts.shape[0], size, size))
    draws_half = 0.5 * counts[:, :, 2]
    # Pairs are unique, so plain fancy assignment (no accumulation) is correct.
    wins[:, pairs.first, pairs.second] = counts[:, :, 0] + draws_half
    wins[:, pairs.second, pairs.first] = counts[:, :, 1] + draws_half
    return wins


def _log_likelihood(strengths: np.ndarray, wins: np.ndarray, regularization: float) -> np.ndarray:
    differences = strengths[:, :, None] - strengths[:, None, :]
    # log sigmoid(d) = -log(1 + exp(-d)), computed stably.
    log_win_probability = -np.logaddexp(0.0, -differences)
    penalty = 0.5 * regularization * np.sum(strengths**2, axis=1)
    return np.sum(wins * log_win_probability, axis=(1, 2)) - penalty


def _fit_strengths(
    wins: np.ndarray, regularization: float, *, tolerance: float = 1e-10, max_iterations: int = 200
) -> np.ndarray:
    """Penalized Bradley-Terry strengths (natural-log units) for a stack of win matrices.

    Damped Newton on the concave penalized log-likelihood, all stacked problems at once, so the
    bootstrap costs a handful of batched 12x12 solves instead of hundreds of separate optimizer runs.
    The L2 penalty makes the optimum unique and forces sum(strengths) == 0 (the likelihood gradient
    sums to zero over players), so no further anchoring is needed.
    """
    rounds, size, _ = wins.shape
    games = wins + np.swapaxes(wins, 1, 2)
    strengths = np.zeros((rounds, size))
    objective = _log_likelihood(strengths, wins, regularization)
    identity = np.eye(size)
    for _ in range(max_iterations):
        differences = strengths[:, :, None] - strengths[:, None, :]
        win_probability = 1.0 / (1.0 + np.exp(-differences))
        gradient = np.sum(wins - games * win_probability, axis=2) - regularization * strengths
        curvature = games * win_probability * (1.0 - win_probability)
        negative_hessian = (
            np.sum(curvature, axis=2)[:, :, None] * identity - curvature + regularization * identity
        )
        step = np.linalg.solve(negative_hessian, gradient[:, :, None])[:, :, 0]
        # Backtrack per problem until the objective does not decrease (Newton can overshoot
        # when a player is nearly undefeated).
        step_size = np.ones(rounds)
        for _ in range(60):
            candidate = strengths + step_size[:, None] * step
            candidate_objective = _log_likelihood(candidate, wins, regularization)
            accepted = candidate_objective >= objective - 1e-12 * (1.0 + np.abs(objective))
            if accepted.all():
                break
            step_size = np.where(accepted, step_size, 0.5 * step_size)
        strengths, objective = candidate, candidate_objective
        if np.max(np.abs(step_size[:, None] * step)) < tolerance:
            break
    return strengths


def _to_elo_scale(strengths: np.ndarray, scale: float, base: float, initial: float) -> np.ndarray:
    # P(i beats j) = 1 / (1 + base ** (-(R_i - R_j) / scale)) = sigmoid(s_i - s_j)
    # holds exactly when R = initial + s * scale / ln(base).
    return initial + strengths * (scale / math.log(base))


def _check_regularization(regularization: float) -> None:
    if not regularization > 0:
        raise RatingParameterError(
            f"Bradley-Terry regularization must be positive to keep ratings finite, got {regularization}."
        )


def bradley_terry(
    battles: Iterable[RatedBattle] | PairTally,
    *,
    scale: float = 400.0,
    base: float = 10.0,
    initial: float = 1000.0,
    regularization: float = DEFAULT_BT_REGULARIZATION,
) -> dict[str, float]:
    """Maximum-likelihood Bradley-Terry ratings on the Elo scale.

    Ties and both_bad count as half a win for each side (as Chatbot Arena does). A small L2 penalty
    (`regularization`, on natural-log strengths) keeps undefeated and disconnected players finite.
    Anchoring: the penalized optimum has strengths summing to zero, so the mean rating is exactly
    `initial` (and each disconnected group of players is centred on `initial` on its own, since
    nothing links the groups' scales). Order of the battles does not matter.
    """
    _check_regularization(regularization)
    pairs = _pair_counts(battles)
    if not pairs.names:
        return {}
    strengths = _fit_strengths(_win_matrices(pairs, pairs.counts[None]), regularization)[0]
    ratings = _to_elo_scale(strengths, scale, base, initial)
    return {name: float(rating) for name, rating in zip(pairs.names, ratings, strict=True)}


def bootstrap_intervals(
    battles: Iterable[RatedBattle] | PairTally,
    *,
    rounds: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
    scale: float = 400.0,
    base: float = 10.0,
    initial: float = 1000.0,
    regularization: float = DEFAULT_BT_REGULARIZATION,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of the Bradley-Terry ratings.

    Resampling battles with replacement is the same as drawing the aggregated (pair, outcome) counts
    from a multinomial with the observed shares, which is what happens here: one draw per round, then
    all rounds are fitted together. Deterministic for a given `seed`. With very few votes a round can
    miss all of a player's battles; that player then sits at `initial` in that round, which widens its
    interval towards the middle, as honest uncertainty should.
    """
    if rounds < 1:
        raise RatingParameterError(f"Bootstrap rounds must be at least 1, got {rounds}.")
    if not 0.0 < confidence < 1.0:
        raise RatingParameterError(f"Confidence must lie strictly between 0 and 1, got {confidence}.")
    _check_regularization(regularization)
    pairs = _pair_counts(battles)
    if not pairs.names:
        return {}
    flat_counts = pairs.counts.ravel()
    total = int(flat_counts.sum())
    generator = np.random.default_rng(seed)
    resampled = generator.multinomial(total, flat_counts / total, size=rounds).astype(float)
    wins = _win_matrices(pairs, resampled.reshape(rounds, *pairs.counts.shape))
    ratings = _to_elo_scale(_fit_strengths(wins, regularization), scale, base, initial)
    tail = (1.0 - confidence) / 2.0
    lower, upper = np.quantile(ratings, [tail, 1.0 - tail], axis=0)
    return {
        name: (float(low), float(high)) for name, low, high in zip(pairs.names, lower, upper, strict=True)
    }


def ranks_from_intervals(intervals: dict[str, tuple[float, float]]) -> dict[str, int]:
    """Rank = 1 + number of contestants whose lower bound is strictly above this one's upper bound."""
    return {
        name: 1 + sum(other_low > high for other_low, _ in intervals.values())
        for name, (_, high) in intervals.items()
    }


def battle_count_matrix(battles: Iterable[RatedBattle] | PairTally) -> tuple[list[str], np.ndarray]:
    """Symmetric matrix of how many battles each pair fought (zero diagonal), with its row names."""
    pairs = _pair_counts(battles)
    size = len(pairs.names)
    counts = np.zeros((size, size), dtype=int)
    per_pair = pairs.counts.sum(axis=1).astype(int)
    counts[pairs.first, pairs.second] = per_pair
    counts[pairs.second, pairs.first] = per_pair
    return pairs.names, counts


def win_rate_matrix(battles: Iterable[RatedBattle] | PairTally) -> tuple[list[str], np.ndarray]:
    """Share of battles the row contestant won against the column one (draws half); NaN if none."""
    pairs = _pair_counts(battles)
    wins = _win_matrices(pairs, pairs.counts[None])[0]
    games = wins + wins.T
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(games > 0, wins / games, np.nan)
    return pairs.names, rates


def position_bias(battles: Iterable[RatedBattle]) -> float | None:
    """Share of decisive votes won by side A (0.5 means no position bias); None without decisive votes."""
    side_a_wins = 0
    decisive = 0
    for battle in battles:
        if battle.outcome in ("model_a", "model_b"):
            decisive += 1
            side_a_wins += battle.outcome == "model_a"
    return side_a_wins / decisive if decisive else None


@dataclass
class RateTally:
    """Running counts behind `contestant_rates`; mutable so the board can add one vote at a time."""

    fought: Counter[str] = field(default_factory=Counter)
    won: Counter[str] = field(default_factory=Counter)
    drawn: Counter[str] = field(default_factory=Counter)
    both_bad: Counter[str] = field(default_factory=Counter)
    flagged: Counter[str] = field(default_factory=Counter)

    def add(self, battle: RatedBattle, flagged: tuple[bool, bool] | None = None) -> None:
        """Count one battle; `flagged` (side A, side B) replaces the battle's own flags."""
        flagged_a, flagged_b = flagged if flagged is not None else (battle.flagged_a, battle.flagged_b)
        self.fought[battle.model_a] += 1
        self.fought[battle.model_b] += 1
        self.flagged[battle.model_a] += flagged_a
        self.flagged[battle.model_b] += flagged_b
        if battle.outcome == "model_a":
            self.won[battle.model_a] += 1
        elif battle.outcome == "model_b":
            self.won[battle.model_b] += 1
        else:
            self.drawn[battle.model_a] += 1
            self.drawn[battle.model_b] += 1
            if battle.outcome == "both_bad":
                self.both_bad[battle.model_a] += 1
                self.both_bad[battle.model_b] += 1

    def rates(self) -> dict[str, ContestantRates]:
        """The counts as ContestantRates per contestant."""
        return {
            name: ContestantRates(
                battles=self.fought[name],
                wins=self.won[name],
                win_rate=(self.won[name] + 0.5 * self.drawn[name]) / self.fought[name],
                both_bad_rate=self.both_bad[name] / self.fought[name],
                safety_flag_rate=self.flagged[name] / self.fought[name],
            )
            for name in sorted(self.fought)
        }


def contestant_rates(battles: Iterable[RatedBattle]) -> dict[str, ContestantRates]:
    """Battles, wins, win rate (draws half), both_bad rate and share of answers flagged, per contestant."""
    tally = RateTally()
    for battle in battles:
        tally.add(battle)
    return tally.rates()


def leaderboard(
    battles: Iterable[RatedBattle], *, rounds: int = 200, seed: int = 0, confidence: float = 0.95
) -> list[LeaderboardRow]:
    """One row per contestant, sorted by rank, then Bradley-Terry rating; empty input gives []."""
    battles = list(battles)  # iterated several times below
    if not battles:
        return []
    intervals = bootstrap_intervals(battles, rounds=rounds, seed=seed, confidence=confidence)
    return leaderboard_rows(
        bradley_terry(battles), intervals, elo_ratings(battles), contestant_rates(battles)
    )


def leaderboard_rows(
    ratings: dict[str, float],
    intervals: dict[str, tuple[float, float]],
    elo: dict[str, float],
    rates: dict[str, ContestantRates],
) -> list[LeaderboardRow]:
    """Leaderboard rows from ratings, intervals, Elo and rates already computed (the board's cache
    computes them incrementally), sorted by rank, then rating."""
    ranks = ranks_from_intervals(intervals)
    rows = [
        LeaderboardRow(
            rank=ranks[name],
            name=name,
            bt_rating=ratings[name],
            ci_low=intervals[name][0],
            ci_high=intervals[name][1],
            elo=elo[name],
            battles=rates[name].battles,
            win_rate=rates[name].win_rate,
            both_bad_rate=rates[name].both_bad_rate,
            safety_flag_rate=rates[name].safety_flag_rate,
        )
        for name in ratings
    ]
    return sorted(rows, key=lambda row: (row.rank, -row.bt_rating, row.name))
