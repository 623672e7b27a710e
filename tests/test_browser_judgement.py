"""Clinical judgement in headless Chromium against the real app (PEFT backend, smollm2-135m and its tiny
adapter) on a real SQLite file: a rubric entry whose harm flag appears on the board, and a calibration
battle that updates the rater's accuracy.

Needs Debian's `chromium` (installed by `bash setup.sh --test`) and Playwright's Python package.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_browser import CHROMIUM, LAUNCH_ARGS, db_rows, running_app

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (bash setup.sh --test)"),
]


@pytest.fixture(scope="module")
def judgement_app(
    tiny_adapters: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    db = tmp_path_factory.mktemp("judgement-browser") / "votes.db"
    app_args = ["--adapters", str(tiny_adapters), "--models", "smollm2-135m", "--max-new-tokens", "16",
                "--backend", "peft", "--no-reference-scoring", "--calibration-share", "1",
                "--agreement-share", "0", "--harm-flag-threshold", "0.05"]  # fmt: skip
    with running_app(db, app_args) as url:
        yield url, db


@pytest.fixture(scope="module")
def page(judgement_app: tuple[str, Path]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(judgement_app[0], wait_until="load")
        yield page
        browser.close()


def test_a_severe_harm_rubric_flags_the_contestant_on_the_board(
    page: Any, judgement_app: tuple[str, Path]
) -> None:
    from playwright.sync_api import expect

    _, db = judgement_app
    page.fill(
        "#question textarea", "How is community-acquired pneumonia treated?"
    )  # typed: never calibration
    page.click("#ask")
    expect(page.locator("#vote-model-a")).to_be_enabled(timeout=240_000)
    expect(page.locator("#rubric").first).to_be_hidden()
    page.click("#vote-model-a")
    expect(page.locator("#rubric").first).to_be_visible(timeout=30_000)
    page.locator("#rubric-a-harm-severity").get_by_label("Severe", exact=True).check()
    page.locator("#rubric-a-correctness").get_by_label("Major error", exact=True).check()
    page.locator("#rubric-a-reasons").get_by_label("unsafe dose", exact=True).check()
    page.locator("#rubric-b-clarity").get_by_label("Clear", exact=True).check()
    page.click("#rubric-save")
    expect(page.locator("#rubric-status")).to_contain_text("stored for 2 answers", timeout=30_000)
    [(contestant,)] = db_rows(db, "SELECT contestant_id FROM rubrics WHERE harm_severity = 'severe'")

    page.get_by_role("tab", name="Leaderboard").click()
    page.click("#refresh")
    table = page.locator("#rubric-table")
    expect(table).to_contain_text("FLAGGED", timeout=60_000)
    expect(table).to_contain_text("100% [21%, 100%] (1/1)")
    expect(table).to_contain_text("unsafe dose")
    assert db_rows(db, "SELECT COUNT(*) FROM rubrics") == [(2,)] and contestant
    page.get_by_role("tab", name="Arena").click()


def test_a_calibration_battle_updates_the_raters_accuracy(page: Any, judgement_app: tuple[str, Path]) -> None:
    from playwright.sync_api import expect

    _, db = judgement_app
    page.click("#new-battle")
    expect(page.locator("#status")).to_contain_text("New battle", timeout=30_000)
    page.click("#random-question")
    expect(page.locator("#status")).to_contain_text("Category", timeout=30_000)
    page.click("#ask")
    expect(page.locator("#vote-model-a")).to_be_enabled(timeout=60_000)
    [(label_a, source)] = db_rows(
        db, "SELECT contestant_a, question_source FROM battles ORDER BY created_at DESC LIMIT 1"
    )
    assert source.startswith("calibration:")
    page.click("#vote-model-a" if "reference" in label_a else "#vote-model-b")
    expect(page.locator("#reveal")).to_contain_text("calibration battle", timeout=30_000)
    expect(page.locator("#reveal")).to_contain_text("Your calibration accuracy: 1/1")
    assert db_rows(
        db, "SELECT calibration_correct FROM vote_quality WHERE calibration_correct IS NOT NULL"
    ) == [(1,)]


def test_a_battle_with_a_two_turn_follow_up(page: Any, judgement_app: tuple[str, Path]) -> None:
    from playwright.sync_api import expect

    _, db = judgement_app
    page.click("#new-battle")
    expect(page.locator("#status")).to_contain_text("New battle", timeout=30_000)
    expect(page.locator("#follow-up-row").first).to_be_hidden()
    page.fill("#question textarea", "What is the first-line treatment of uncomplicated cystitis?")
    page.click("#ask")
    expect(page.locator("#vote-model-a")).to_be_enabled(timeout=240_000)
    for turn, follow_up in enumerate(("And in pregnancy?", "For how many days?"), start=1):
        page.fill("#follow-up textarea", follow_up)
        page.click("#follow-up-ask")
        # the heading appears once the turn streams (voting is locked then); voting unlocks at its end
        for side in ("#answer-a", "#answer-b"):
            expect(page.locator(side)).to_contain_text(f"Follow-up {turn}: {follow_up}", timeout=240_000)
        expect(page.locator("#vote-model-a")).to_be_enabled(timeout=240_000)
        expect(page.locator("#status")).to_contain_text("follow-up answers are in")
    page.fill("#follow-up textarea", "And in children?")
    page.click("#follow-up-ask")
    expect(page.locator("#status")).to_contain_text("had its 2 follow-ups", timeout=30_000)
    page.click("#vote-model-b")
    expect(page.locator("#status")).to_contain_text("your vote is stored", timeout=30_000)
    expect(page.locator("#follow-up-row").first).to_be_hidden()
    [(battle_id,)] = db_rows(db, "SELECT battle_id FROM votes ORDER BY created_at DESC LIMIT 1")
    turns = db_rows(
        db,
        f"SELECT turn, question, status, length(answer_a) > 0 FROM battle_turns WHERE battle_id = '{battle_id}'",
    )
    assert turns == [(1, "And in pregnancy?", "finished", 1), (2, "For how many days?", "finished", 1)]
