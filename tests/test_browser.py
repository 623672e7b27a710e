"""A clinician's whole battle in headless Chromium against the real app on a real SQLite file.

Needs Debian's `chromium` (installed by `bash setup.sh --test`) and Playwright's Python package.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (bash setup.sh --test)"),
]


# vLLM and llama.cpp stream 24 tokens a side in about a second, so a battle could finish before the
# mid-stream "New battle" click lands; a longer answer keeps that click mid-stream.
MAX_NEW_TOKENS = {"peft": 24, "vllm": 64, "llamacpp": 64}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(
    scope="module",
    params=[
        "peft",
        pytest.param(
            "vllm",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("vllm") is None, reason="vLLM is not installed"
            ),
        ),
        pytest.param(
            "llamacpp",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed"
            ),
        ),
    ],
)
def app_server(
    request: pytest.FixtureRequest, tiny_adapters: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    db = tmp_path_factory.mktemp("browser") / "votes.db"
    app_args = ["--adapters", str(tiny_adapters), "--models", "smollm2-135m",
                "--max-new-tokens", str(MAX_NEW_TOKENS[request.param]), "--backend", request.param]  # fmt: skip
    with running_app(db, app_args) as url:
        yield url, db


@contextmanager
def running_app(db: Path, app_args: list[str]) -> Iterator[str]:
    """`python app.py` on a free port with its votes in `db` (its log beside it, app.log) for the
    block; yields its URL once it listens. Robots click at once, so reading time is not enforced."""
    port = free_port()
    # No first-start metric evaluation: the cores serve the battles (tests/test_auto_metrics.py covers it).
    env = {
        **os.environ,
        "GRADIO_ANALYTICS_ENABLED": "False",
        "MEDARENA_READING_WPS": "0",
        "MEDARENA_AUTO_METRICS": "0",
    }
    with (db.parent / "app.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(port), "--db", str(db), *app_args],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,  # one signal ends the app and any engine processes it started
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    pytest.fail(f"app exited early:\n{(db.parent / 'app.log').read_text()[-3000:]}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    time.sleep(1)
            else:
                pytest.fail("app did not start within 300 s")
            yield f"http://127.0.0.1:{port}"
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the app's process group, SIGKILL if it has not ended within 30 s."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
VOTE_LABELS = {"#vote-model-a": "A is better", "#vote-model-b": "B is better", "#vote-tie": "Tie",
               "#vote-both-bad": "Both are bad"}  # fmt: skip


@pytest.fixture(scope="module")
def page(app_server: tuple[str, Path]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    url, _ = app_server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url, wait_until="load")
        yield page
        browser.close()


def db_rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


def labels_intact(page: Any) -> None:
    for selector, label in VOTE_LABELS.items():
        assert page.inner_text(selector).strip() == label, f"{selector} lost its label"


def new_battle(page: Any) -> None:
    """Press "New battle" and wait for the cleared page (typing earlier would be wiped by the reset)."""
    from playwright.sync_api import expect

    page.click("#new-battle")
    expect(page.locator("#status")).to_contain_text("New battle", timeout=30_000)


def ask_and_vote(page: Any, outcome: str = "#vote-model-a") -> None:
    from playwright.sync_api import expect

    expect(page.locator(outcome)).to_be_enabled(timeout=240_000)
    page.click(outcome)
    expect(page.locator("#status")).to_contain_text("your vote is stored", timeout=30_000)


def test_clinician_battle_in_a_real_browser(page: Any, app_server: tuple[str, Path]) -> None:
    from playwright.sync_api import expect

    _, db = app_server
    expect(page.locator("#notice")).to_contain_text("not medical advice")
    expect(page.locator("#how-it-works")).to_contain_text("How it works")

    page.fill(
        "#question textarea", "What are the warning signs of a stroke? <img src=x onerror=window.pwned=1>"
    )
    page.click("#ask")
    vote_a = page.locator("#vote-model-a")
    expect(vote_a).to_be_enabled(timeout=240_000)
    assert page.inner_text("#answer-a").strip()
    assert page.inner_text("#answer-b").strip()
    assert "was" not in page.inner_text("#reveal")  # names stay hidden until the vote
    # a stroke answer does not fit in a few dozen tokens: the voter is told where it was cut
    shown = page.inner_text("#answer-a") + page.inner_text("#answer-b")
    marks = re.findall(r"cut at (\d+) tokens", shown)
    assert marks and {int(mark) for mark in marks} <= set(MAX_NEW_TOKENS.values()), shown
    budget = int(marks[0])
    stored = db_rows(db, "SELECT telemetry_a, telemetry_b FROM battles WHERE status = 'finished'")
    assert any(f'"cut_at_tokens": {budget}' in telemetry for row in stored for telemetry in row)

    page.fill("#rationale input, #rationale textarea", "A is clearer")
    vote_a.click()
    expect(page.locator("#reveal")).to_contain_text("SmolLM2-135M-Instruct", timeout=30_000)
    expect(page.locator("#reveal")).to_contain_text("after you asked")
    reveal = page.inner_text("#reveal")
    assert "nf4" not in reveal and "LoRA 2" not in reveal  # run ids and quantisation only in the details
    expect(vote_a).to_be_disabled()
    labels_intact(page)
    assert page.evaluate("window.pwned === undefined")
    assert db_rows(db, "SELECT outcome, rationale FROM votes") == [("model_a", "A is clearer")]


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("", "type a medical question"),
        ("   \n\t  ", "type a medical question"),
        ("x" * 50_000, "characters long"),
        ("Mrs Jane Doe, 62, of 12 Baker Street, admitted on 3 March 2024: next step?", "a person's name"),
    ],
    ids=["empty", "whitespace", "50k", "phi"],
)
def test_messages_stay_visible_and_buttons_keep_labels(
    page: Any, app_server: tuple[str, Path], question: str, message: str
) -> None:
    from playwright.sync_api import expect

    _, db = app_server
    battles_before = db_rows(db, "SELECT COUNT(*) FROM battles")
    new_battle(page)
    page.fill("#question textarea", question)
    page.click("#ask")
    expect(page.locator("#status")).to_contain_text(message, timeout=30_000)
    page.wait_for_timeout(2_000)  # the old page blanked the message after ~0.1 s
    expect(page.locator("#status")).to_contain_text(message)
    labels_intact(page)
    assert db_rows(db, "SELECT COUNT(*) FROM battles") == battles_before  # nothing stored
    if "name" in message:
        expect(page.locator("#status")).to_contain_text("address")
        expect(page.locator("#redact-send")).to_be_visible()
        expect(page.locator("#send-anyway")).to_be_visible()


def test_redact_and_send_stores_no_identifiers(page: Any, app_server: tuple[str, Path]) -> None:
    from playwright.sync_api import expect

    _, db = app_server
    new_battle(page)
    page.fill("#question textarea", "Mr John Smith, DOB 03/04/1961, has new AF: anticoagulate?")
    page.click("#ask")
    expect(page.locator("#redact-send")).to_be_visible(timeout=30_000)
    page.click("#redact-send")
    ask_and_vote(page, "#vote-tie")
    [(question,)] = db_rows(db, "SELECT question FROM battles ORDER BY created_at DESC LIMIT 1")
    assert "John" not in question and "1961" not in question and "[NAME]" in question


# Questions for the mid-stream "New battle" click. A fast engine can finish a battle in the second
# between "answering" showing and the click landing (CI saw it once on vLLM); such a battle ends
# finished, not voided, and the next question tries again. Three finished in a row fail the test.
MID_STREAM_QUESTIONS = (
    "What are the causes of hyponatraemia?",
    "How is diabetic ketoacidosis managed in adults?",
    "What are the complications of untreated hypertension?",
)


def test_double_ask_and_mid_stream_new_lose_no_vote(page: Any, app_server: tuple[str, Path]) -> None:
    from playwright.sync_api import expect

    _, db = app_server
    votes_before = db_rows(db, "SELECT COUNT(*) FROM votes")[0][0]
    new_battle(page)
    page.fill("#question textarea", "How is community-acquired pneumonia treated?")
    page.click("#ask")
    page.click("#ask")  # a second press while the first battle streams
    ask_and_vote(page)
    labels_intact(page)

    outcomes = []
    for question in MID_STREAM_QUESTIONS:
        new_battle(page)
        page.fill("#question textarea", question)
        page.click("#ask")
        expect(page.locator("#status")).to_contain_text("answering", timeout=30_000)
        new_battle(page)  # mid-stream, unless the engine was faster than the click
        page.wait_for_timeout(3_000)  # the stopped battle's event ends at its next token
        [(status, reason)] = db_rows(
            db, f"SELECT status, void_reason FROM battles WHERE question = '{question}'"
        )
        outcomes.append(status)
        if status == "voided":
            assert reason == "the clinician started a new battle"
            break
        assert status == "finished", f"a battle left mid-stream ended {status!r}"
    assert outcomes[-1] == "voided", f"no click landed mid-stream in {len(outcomes)} tries: {outcomes}"

    page.fill("#question textarea", "What are the causes of hypokalaemia?")
    page.click("#ask")
    ask_and_vote(page, "#vote-model-b")
    labels_intact(page)

    assert db_rows(db, "SELECT COUNT(*) FROM votes")[0][0] == votes_before + 2
    # every battle ended finished or voided; none is left generating
    page.wait_for_timeout(1_000)
    assert db_rows(db, "SELECT COUNT(*) FROM battles WHERE status = 'generating'") == [(0,)]


def test_leaderboard_is_readable(page: Any, app_server: tuple[str, Path]) -> None:
    from playwright.sync_api import expect

    _, db = app_server
    while db_rows(db, "SELECT COUNT(*) FROM votes")[0][0] < 2:  # run alone, it casts its own votes
        new_battle(page)
        page.fill("#question textarea", "How is community-acquired pneumonia treated?")
        page.click("#ask")
        ask_and_vote(page, "#vote-model-b")
    page.get_by_role("tab", name="Leaderboard").click()
    page.click("#refresh")
    expect(page.locator("#leaderboard-summary")).to_contain_text("rated votes", timeout=60_000)
    table = page.locator("#leaderboard-table")
    expect(table).to_contain_text("SmolLM2-135M-Instruct")
    expect(table).to_contain_text("Flagged unsafe")
    expect(table).to_contain_text("Flagged incorrect")
    expect(page.locator("#metrics-table")).to_contain_text("ROUGE-L")
    expect(page.locator("#leaderboard-notes")).to_contain_text("python -m arena.evaluate")
    cells = [cell.strip() for cell in table.inner_text().split("\n")]
    # rank ranges, never "everyone is 1": a few votes are preliminary, overlapping intervals say so,
    # separated ones get 1 and 2
    assert "preliminary" in cells or "not yet separable" in cells or {"1", "2"} <= set(cells)
    assert table.bounding_box()["width"] <= 1400
    heatmap = page.locator("#heatmap-plot img").first  # matplotlib figures arrive as an image
    expect(heatmap).to_be_visible(timeout=30_000)
    assert heatmap.bounding_box()["width"] > 300  # it rendered ~40 px wide beside the ratings plot
