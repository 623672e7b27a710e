"""The Gradio wiring of arena/ui.py against a fake service: which service call each event makes and how
its result lands on the page. The one place a fake is right (Gradio wiring, not model behaviour); the
real battles run in tests/test_browser.py.

Run as: python -m pytest tests/test_ui_wiring.py -q
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from arena.service import BattleProgress, Reveal, StartedBattle, VoteInput, VoteOutcome, VoteRejected
from arena.ui import build_ui

SID = "session-wiring-1"


@dataclass
class FakeService:
    """Records every call; answers with the service's own result types."""

    calls: list[tuple[str, Any]] = field(default_factory=list)
    refuse_votes: bool = False
    storage_problem: str | None = None
    warnings: list[str] = field(default_factory=list)

    def example_questions(self, count: int = 4) -> list[str]:
        return ["What is sepsis?"][:count]

    def start_battle(self, text: str, bank_id: str | None, **kwargs: Any) -> StartedBattle:
        self.calls.append(("start_battle", (text, bank_id, kwargs)))
        return StartedBattle("battle-1", text, None)

    def stream_battle(self, battle_id: str, sid: str) -> Iterator[BattleProgress]:
        self.calls.append(("stream_battle", (battle_id, sid)))
        yield BattleProgress("partial A", "partial B", finished=False)
        yield BattleProgress("answer A", "answer B", finished=True)

    def cancel_battle(self, battle_id: str, sid: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("cancel_battle", (battle_id, sid)))

    def export_votes(self, directory: Any) -> tuple[Any, Any]:
        self.calls.append(("export_votes", directory))
        return directory / "votes.csv", directory / "votes.jsonl"

    def vote(self, vote: VoteInput) -> Reveal:
        self.calls.append(("vote", vote))
        if self.refuse_votes:
            raise VoteRejected("This battle already has a vote; each battle takes exactly one.")
        return Reveal(
            "smollm2-135m · base", "smollm2-135m · LoRA run-1", {}, {}, VoteOutcome(vote.outcome), True
        )


def event(demo: gr.Blocks, elem_id: str, name: str = "click") -> Any:
    """The first handler registered for `name` on the component with `elem_id`."""
    component = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id)
    return next(f for f in demo.fns.values() if (component._id, name) in f.targets)


def by_elem_id(updates: dict[Any, Any]) -> dict[str, Any]:
    return {
        getattr(component, "elem_id", None) or repr(component): value for component, value in updates.items()
    }


@pytest.fixture()
def fake() -> FakeService:
    return FakeService()


def test_ask_starts_and_streams_one_battle_and_enables_the_vote_buttons(fake: FakeService) -> None:
    demo = build_ui(fake)  # type: ignore[arg-type]
    ask = event(demo, "ask")
    updates = list(ask.fn("What is sepsis?", "", SID))
    assert fake.calls[0] == (
        "start_battle",
        ("What is sepsis?", None, {"session_id": SID, "confirmed_no_patient_data": False}),
    )
    assert fake.calls[1] == ("stream_battle", ("battle-1", SID))
    final_answers = [u for u in updates if any(getattr(c, "elem_id", None) == "answer-a" for c in u)][-1]
    assert "answer A" in by_elem_id(final_answers).values()
    vote_buttons = [c for c in updates[-1] if str(getattr(c, "elem_id", "")).startswith("vote-")]
    assert len(vote_buttons) == 4 and all(updates[-1][b]["interactive"] is True for b in vote_buttons)


@pytest.mark.parametrize("outcome", list(VoteOutcome))
def test_each_vote_button_sends_its_outcome_flags_and_session_as_one_vote_input(
    fake: FakeService, outcome: VoteOutcome
) -> None:
    demo = build_ui(fake)  # type: ignore[arg-type]
    cast = event(demo, f"vote-{outcome.value.replace('_', '-')}")
    updates = cast.fn("battle-1", False, True, True, False, " cites NICE ", "Physician", "cardiology", SID)
    [(name, vote)] = fake.calls
    assert name == "vote" and vote == VoteInput(
        "battle-1", outcome, session_id=SID, flag_a_unsafe=False, flag_a_incorrect=True, flag_b_unsafe=True,
        flag_b_incorrect=False, rationale=" cites NICE ", voter_role="Physician (self-reported)",
        voter_specialty="cardiology",
    )  # fmt: skip
    assert "smollm2-135m" in by_elem_id(updates)["reveal"]


def test_a_refused_vote_shows_the_sentence_and_reveals_nothing(fake: FakeService) -> None:
    fake.refuse_votes = True
    demo = build_ui(fake)  # type: ignore[arg-type]
    updates = event(demo, "vote-tie").fn("battle-1", False, False, False, False, "", "", "", SID)
    shown = by_elem_id(updates)
    assert "reveal" not in shown
    assert any("already has a vote" in str(value) for value in shown.values())


def test_the_export_box_appears_only_with_files_and_no_badge_covers_a_plot(fake: FakeService) -> None:
    demo = build_ui(fake)  # type: ignore[arg-type]
    blocks = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    assert blocks["exports"].visible is False  # no empty "Exports" box before anything is exported
    shown = by_elem_id(event(demo, "export").fn(""))
    assert shown["exports"]["visible"] is True and [Path(p).name for p in shown["exports"]["value"]] == [
        "votes.csv", "votes.jsonl"
    ]  # fmt: skip
    # Gradio's label badge sits over a plot's top-left corner, where the best contestant's name is.
    assert all(blocks[plot].show_label is False for plot in ("ratings-plot", "heatmap-plot", "history-plot"))
