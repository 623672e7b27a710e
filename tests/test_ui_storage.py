"""The page's storage banner and storage sentences, wired against a fake service (Gradio wiring only;
the faults themselves are real in tests/test_service_boundary.py): the banner appears and clears as
the service's storage problem does, and the leaderboard, export and "New battle" show the sentence.

Run as: python -m pytest tests/test_ui_storage.py -q
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import pytest

from arena.service import StorageUnavailable
from arena.ui import build_ui
from tests.test_ui_wiring import SID, FakeService, by_elem_id, event

SENTENCE = "The disk holding the vote database /data/votes.db is full, so votes cannot be saved."


@dataclass
class FailingStore(FakeService):
    """A fake service whose storage fails on every read and write."""

    def leaderboard(self, *args: Any, **filters: Any) -> Any:
        raise StorageUnavailable(f"{SENTENCE} The leaderboard cannot be shown just now.")

    def export_votes(self, directory: Any) -> Any:
        raise StorageUnavailable(f"{SENTENCE} The export was not written.")

    def cancel_battle(self, *args: Any, **kwargs: Any) -> bool:
        raise StorageUnavailable(SENTENCE)


def banner_tick(demo: gr.Blocks) -> Any:
    timer = next(b for b in demo.blocks.values() if isinstance(b, gr.Timer))
    return next(f for f in demo.fns.values() if (timer._id, "tick") in f.targets)


def test_the_banner_appears_and_clears_with_the_storage_problem() -> None:
    fake = FakeService()
    demo = build_ui(fake)  # type: ignore[arg-type]
    tick = banner_tick(demo)
    assert tick.fn()["visible"] is False
    fake.storage_problem = SENTENCE
    shown = tick.fn()
    assert shown["visible"] is True and SENTENCE in shown["value"]
    fake.storage_problem = None
    assert tick.fn()["visible"] is False


def test_leaderboard_export_and_new_battle_show_the_storage_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FailingStore(storage_problem=SENTENCE)
    demo = build_ui(fake)  # type: ignore[arg-type]
    board = by_elem_id(event(demo, "refresh").fn("", ""))
    assert "leaderboard cannot be shown" in board["leaderboard-summary"]
    new = by_elem_id(event(demo, "new-battle").fn("battle-1", SID))
    assert SENTENCE in new["status"]
    warnings: list[str] = []
    monkeypatch.setattr(gr, "Warning", warnings.append)  # a toast outside a request: recorded instead
    result = event(demo, "export").fn()
    assert (
        warnings == [f"{SENTENCE} The export was not written."] and result == {}
    )  # nothing on the page changes
