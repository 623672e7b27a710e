"""The board's running aggregates: everything a leaderboard needs from the votes, updated one vote at
a time, so a new vote costs microseconds instead of a pass over every stored vote.

- `derive_vote(row)`: one stored vote (a `rated_battles()` row) as a `DerivedVote`: its RatedBattle
  with style counts and question category (the costly regexes run once per vote, here), its flags
  and BERTScores. Answer texts are not kept.
- `BoardSummary`: pair tally, online Elo, win/flag rates, position counts, metric-human agreement
  values, votes per category, adapter-vs-base counts and the style-control inputs, over the votes
  a filter keeps. `add(vote)` folds in one more vote. It is mutable on purpose: it is an accumulator,
  owned by one `arena.board_cache.BoardCache` (or built and dropped by one `build_leaderboard` call).

    from arena.board_summary import BoardSummary, derive_vote
    summary = BoardSummary()
    for row in store.rated_battles(include_identity_leaks=True):
        summary.add(derive_vote(row))

Run as: python -m pytest tests/test_board_cache.py -q
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from arena.base_comparison import base_tally
from arena.board import to_rated
from arena.categories import QuestionCategory
from arena.ratings import PairTally, RatedBattle, RateTally, elo_update, tally_battle


@dataclass(frozen=True)
class DerivedVote:
    """One stored vote, derived once: the battle (both flag kinds, style, category) and the rest."""

    battle: RatedBattle
    unsafe: tuple[bool, bool]
    incorrect: tuple[bool, bool]
    bertscores: tuple[float | None, float | None]
    leaked: bool
    vote_id: int | None = None
    voted_at: str = ""  # ISO 8601, for the daily snapshots


def derive_vote(row: Mapping[str, Any], categories: dict[str, QuestionCategory] | None = None) -> DerivedVote:
    """A `rated_battles()` row as a DerivedVote (style counts and category computed here, once);
    `categories` caches question categories by text across calls."""
    (battle,) = to_rated([dict(row)], with_style=True, categories=categories)
    return DerivedVote(
        battle=battle,
        unsafe=(bool(row.get("flag_a_unsafe")), bool(row.get("flag_b_unsafe"))),
        incorrect=(bool(row.get("flag_a_incorrect")), bool(row.get("flag_b_incorrect"))),
        bertscores=(row.get("bertscore_a"), row.get("bertscore_b")),
        leaked=bool(row.get("identity_leak")),
        vote_id=row.get("vote_id"),
        voted_at=str(row.get("voted_at") or ""),
    )


@dataclass
class BoardSummary:
    """Running aggregates of the votes a filter keeps (see the module docstring).

    Counts over *all* votes (leaked, categories, specialties, tasks, question specialties) ignore
    the filter, so the board's filter menus always list every choice.
    """

    keep: Callable[[RatedBattle], bool] = field(default=lambda battle: True)
    battles: list[RatedBattle] = field(default_factory=list)  # kept votes, oldest first
    voted_at: list[str] = field(default_factory=list)  # each kept vote's time, beside `battles`
    leaked: int = 0
    tally: PairTally = field(default_factory=Counter)
    elo: dict[str, float] = field(default_factory=dict)
    rates: RateTally = field(default_factory=RateTally)  # flags of either kind
    unsafe: RateTally = field(default_factory=RateTally)
    incorrect: RateTally = field(default_factory=RateTally)
    side_a_wins: int = 0
    decisive: int = 0
    agreements: list[float] = field(default_factory=list)  # 1.0 when the vote sided with BERTScore
    tasks: Counter[str] = field(default_factory=Counter)
    question_specialties: Counter[str] = field(default_factory=Counter)
    categories: set[str] = field(default_factory=set)
    specialties: set[str] = field(default_factory=set)
    base_wins: dict[str, float] = field(default_factory=dict)  # adapter id -> wins over its own base
    base_votes: dict[str, int] = field(default_factory=dict)  # adapter id -> votes against its own base
    last_vote_id: int = 0

    def add(self, vote: DerivedVote) -> None:
        """Fold one more vote (newer than every vote already in) into the aggregates."""
        if vote.vote_id is not None:
            self.last_vote_id = max(self.last_vote_id, int(vote.vote_id))
        if vote.leaked:
            self.leaked += 1
            return
        battle = vote.battle
        if battle.category:
            self.categories.add(battle.category)
        if battle.specialty:
            self.specialties.add(battle.specialty)
        if battle.task:
            self.tasks[battle.task] += 1
        if battle.question_specialty:
            self.question_specialties[battle.question_specialty] += 1
        if not self.keep(battle):
            return
        self.battles.append(battle)
        self.voted_at.append(vote.voted_at)
        tally_battle(self.tally, battle)
        elo_update(self.elo, battle)
        self.rates.add(battle)
        self.unsafe.add(battle, vote.unsafe)
        self.incorrect.add(battle, vote.incorrect)
        if battle.outcome in ("model_a", "model_b"):
            self.decisive += 1
            self.side_a_wins += battle.outcome == "model_a"
            score_a, score_b = vote.bertscores
            if score_a is not None and score_b is not None and score_a != score_b:
                self.agreements.append(
                    float(("model_a" if score_a > score_b else "model_b") == battle.outcome)
                )
        wins, votes = base_tally([battle])
        for adapter, count in votes.items():
            self.base_votes[adapter] = self.base_votes.get(adapter, 0) + count
            self.base_wins[adapter] = self.base_wins.get(adapter, 0.0) + wins[adapter]

    @property
    def votes(self) -> int:
        """Rated votes the filter kept."""
        return len(self.battles)

    @property
    def position_bias(self) -> float | None:
        """Share of decisive votes won by side A; None without decisive votes."""
        return self.side_a_wins / self.decisive if self.decisive else None

    @classmethod
    def of(
        cls, votes: Iterable[DerivedVote], keep: Callable[[RatedBattle], bool] | None = None
    ) -> BoardSummary:
        """A summary of these votes (oldest first) under a filter."""
        summary = cls(keep=keep) if keep is not None else cls()
        for vote in votes:
            summary.add(vote)
        return summary
