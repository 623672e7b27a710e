"""Style control: Bradley-Terry with style covariates, as LMArena's "style control" does.

Voters prefer longer and more formatted answers whatever the content (LMArena, 2024). Here a 9B model's
long answer can face a 135M model's short one, so the board shows a second ranking in which the
style's share of each vote is fitted separately and taken out of the ratings.

The model (FastChat `fastchat/serve/monitor/rating_systems.py`, `compute_style_control`):

    logit P(A beats B) = ln(base) * (r_A - r_B) + sum_k theta_k * z_k
    z_k = standardised( (s_kA - s_kB) / (s_kA + s_kB + 1) )

over four style counts s_k per answer: length, markdown headers, list items and bold spans. Ties and
both_bad count as half a win (outcome 0.5). Ratings and coefficients carry one L2 penalty
`regularization / 2 * |params|^2` (FastChat's reg=0.5). Ratings are reported as
`initial + scale * r`, the same scale as `arena.ratings.bradley_terry`.

Length is counted in words, not tokens: contestants use different tokenizers (SmolLM2, Qwen, Gemma),
so their token counts are not comparable between the two sides of a battle, while words are.

Pure functions, numpy only; the fit is Newton's method on the whole design matrix (converges in a
handful of steps for 100k votes). Cross-checked against FastChat's own code in
tests/test_style_control.py.

    from arena.style_control import style_counts, style_controlled_ratings
    fit = style_controlled_ratings(battles)   # battles: RatedBattle with style_a / style_b set
    fit.ratings, fit.coefficients

Run as: python -m pytest tests/test_style_control.py -q
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from arena.ratings import RatedBattle, RatingParameterError, StyleCounts

STYLE_FEATURES = ("length", "headers", "lists", "bold")

# FastChat's reg=0.5 (its note: half of sklearn LogisticRegression's default, for deduplicated rows).
DEFAULT_STYLE_REGULARIZATION = 0.5

# Markdown counted as FastChat's add_markdown_info.py counts it; code blocks are removed first.
_CODE_BLOCK = re.compile(r"```[^`]*```")
_HEADER = re.compile(r"^#{1,6}\s", re.MULTILINE)
_LIST_ITEM = re.compile(r"^\s*(?:\d+\.|[-*+])\s", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
_WORD = re.compile(r"\S+")


def style_counts(answer: str) -> StyleCounts:
    """Count an answer's style: words, and markdown headers, list items and bold spans outside code."""
    prose = _CODE_BLOCK.sub("", answer)
    return StyleCounts(
        length=len(_WORD.findall(answer)),
        headers=len(_HEADER.findall(prose)),
        lists=len(_LIST_ITEM.findall(prose)),
        bold=len(_BOLD.findall(prose)),
    )


@dataclass(frozen=True)
class StyleControlFit:
    """Style-controlled ratings and the style coefficients.

    `coefficients` are logits per standard deviation of each normalised difference (what FastChat
    prints); `per_unit` are logits per unit of the normalised difference (a - b) / (a + b + 1)
    itself, comparable across data sets (a planted effect is recovered here).
    """

    ratings: dict[str, float]
    coefficients: dict[str, float]
    per_unit: dict[str, float]
    battles: int


@dataclass(frozen=True)
class StyleStanding:
    """One contestant in the style-controlled ranking, with its rank in the plain ranking."""

    name: str
    rating: float
    rank: int
    plain_rank: int

    @property
    def shift(self) -> int:
        """Places gained once style is controlled (positive: moves up)."""
        return self.plain_rank - self.rank


def normalised_differences(styles: np.ndarray) -> np.ndarray:
    """(a - b) / (a + b + 1) per battle and feature; `styles` has shape (battles, 2, features)."""
    side_a, side_b = styles[:, 0, :].astype(float), styles[:, 1, :].astype(float)
    return (side_a - side_b) / (side_a + side_b + 1.0)


def _standardise(differences: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = differences.mean(axis=0)
    std = differences.std(axis=0)
    # A feature that never varies carries no information; leave its column at zero instead of NaN.
    safe_std = np.where(std > 0, std, 1.0)
    return (differences - mean) / safe_std, mean, std


def _fit_style_bt(
    first: np.ndarray,
    second: np.ndarray,
    features: np.ndarray,
    outcomes: np.ndarray,
    players: int,
    alpha: float,
    regularization: float,
) -> np.ndarray:
    """Penalised logistic Bradley-Terry with covariates; Newton with backtracking.

    logit_i = alpha * (r[first_i] - r[second_i]) + features_i . theta. The Hessian is assembled per
    block from per-player sums (bincount), never from a dense battles x players design matrix, so
    100k votes cost a few milliseconds per step.
    """
    count = features.shape[1]
    params = np.zeros(players + count)

    def logits(candidate: np.ndarray) -> np.ndarray:
        ratings, theta = candidate[:players], candidate[players:]
        return alpha * (ratings[first] - ratings[second]) + features @ theta

    def objective(candidate: np.ndarray) -> float:
        values = logits(candidate)
        # -[y log s(x) + (1-y) log(1 - s(x))] = log(1 + e^x) - y x, computed stably
        loss = np.sum(np.logaddexp(0.0, values) - outcomes * values)
        return float(loss) + 0.5 * regularization * float(candidate @ candidate)

    def per_player(values: np.ndarray) -> np.ndarray:
        return np.bincount(first, values, players) - np.bincount(second, values, players)

    current = objective(params)
    for _ in range(100):
        probability = 1.0 / (1.0 + np.exp(-logits(params)))
        residual = probability - outcomes
        gradient = np.concatenate([alpha * per_player(residual), features.T @ residual])
        gradient += regularization * params
        weights = probability * (1.0 - probability)
        hessian = np.zeros((players + count, players + count))
        pair_weight = np.bincount(first * players + second, weights, players * players).reshape(
            players, players
        )
        pair_weight = pair_weight + pair_weight.T
        hessian[:players, :players] = alpha * alpha * (np.diag(pair_weight.sum(axis=1)) - pair_weight)
        cross = alpha * np.stack([per_player(weights * features[:, k]) for k in range(count)], axis=1)
        hessian[:players, players:] = cross
        hessian[players:, :players] = cross.T
        hessian[players:, players:] = (features * weights[:, None]).T @ features
        hessian += regularization * np.eye(players + count)
        step = np.linalg.solve(hessian, gradient)
        size = 1.0
        for _ in range(50):
            candidate = params - size * step
            candidate_value = objective(candidate)
            if candidate_value <= current + 1e-12 * (1.0 + abs(current)):
                break
            size *= 0.5
        params, current = candidate, candidate_value
        if np.max(np.abs(size * step)) < 1e-12:
            break
    return params


def style_controlled_ratings(
    battles: Iterable[RatedBattle],
    *,
    regularization: float = DEFAULT_STYLE_REGULARIZATION,
    scale: float = 400.0,
    base: float = 10.0,
    initial: float = 1000.0,
) -> StyleControlFit:
    """Bradley-Terry ratings with the four style covariates fitted beside them.

    Only battles whose both answers have style counts take part; contestants are those in them.
    """
    if not regularization > 0:
        raise RatingParameterError(f"Style-control regularization must be positive, got {regularization}.")
    styled = [b for b in battles if b.style_a is not None and b.style_b is not None]
    names = sorted({name for b in styled for name in (b.model_a, b.model_b)})
    if not styled:
        empty = dict.fromkeys(STYLE_FEATURES, 0.0)
        return StyleControlFit({}, empty, dict(empty), 0)
    index = {name: position for position, name in enumerate(names)}
    styles = np.array([[b.style_a.as_tuple(), b.style_b.as_tuple()] for b in styled])  # type: ignore[union-attr]
    features, _, std = _standardise(normalised_differences(styles))
    outcomes = np.array([{"model_a": 1.0, "model_b": 0.0}.get(b.outcome, 0.5) for b in styled])
    first = np.array([index[b.model_a] for b in styled], dtype=np.int64)
    second = np.array([index[b.model_b] for b in styled], dtype=np.int64)
    params = _fit_style_bt(first, second, features, outcomes, len(names), math.log(base), regularization)
    ratings = initial + scale * params[: len(names)]
    theta = params[len(names) :]
    per_unit = np.where(std > 0, theta / np.where(std > 0, std, 1.0), 0.0)
    return StyleControlFit(
        ratings={name: float(r) for name, r in zip(names, ratings, strict=True)},
        coefficients={f: float(c) for f, c in zip(STYLE_FEATURES, theta, strict=True)},
        per_unit={f: float(c) for f, c in zip(STYLE_FEATURES, per_unit, strict=True)},
        battles=len(styled),
    )


def _ranks(ratings: Mapping[str, float]) -> dict[str, int]:
    """Competition ranks: 1 + number of contestants rated strictly higher."""
    return {name: 1 + sum(other > rating for other in ratings.values()) for name, rating in ratings.items()}


def style_standings(plain: Mapping[str, float], styled: Mapping[str, float]) -> list[StyleStanding]:
    """The style-controlled ranking, best first, with each contestant's plain rank beside it."""
    shared = {name: styled[name] for name in styled if name in plain}
    styled_ranks = _ranks(shared)
    plain_ranks = _ranks({name: plain[name] for name in shared})
    return sorted(
        (
            StyleStanding(name, rating, styled_ranks[name], plain_ranks[name])
            for name, rating in shared.items()
        ),
        key=lambda standing: (standing.rank, -standing.rating, standing.name),
    )


def describe_coefficients(fit: StyleControlFit) -> str:
    """One line for the board: each coefficient and the odds ratio of one standard deviation."""
    if not fit.battles:
        return "Style control: no battles with both answers stored yet."
    parts = [
        f"{name} {value:+.3f} (×{math.exp(value):.2f} odds per SD)"
        for name, value in fit.coefficients.items()
    ]
    return f"Style coefficients over {fit.battles} battles: " + ", ".join(parts) + "."
