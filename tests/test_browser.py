"""A clinician's whole battle in headless Chromium against the real app on a real SQLite file.

Needs Debian's `chromium` (installed by `bash setup.sh --test`) and Playwright's Python package.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (bash setup.sh --test)"),
]


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
    ],
)
def app_server(
    request: pytest.FixtureRequest, tiny_adapters: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    db = tmp_path_factory.mktemp("browser") / "votes.db"
    port = free_port()
    log = (db.parent / "app.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), "--db", str(db), "--adapters", str(tiny_adapters),
         "--models", "smollm2-135m", "--max-new-tokens", "24", "--backend", request.param],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
        start_new_session=True,  # one signal ends the app and any engine processes it started
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
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
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("app did not start within 300 s")
    yield url, db
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    log.close()


def test_clinician_battle_in_a_real_browser(app_server: tuple[str, Path]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, db = app_server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"],
        )  # fmt: skip
        page = browser.new_page()
        page.goto(url, wait_until="load")
        expect(page.locator("#notice")).to_contain_text("not medical advice")

        # Script in a question is shown as text, never run.
        page.fill("#question textarea", "<script>window.pwned = 1</script>")
        page.fill("#question textarea", "")
        page.click("#ask")
        expect(page.locator("#status")).to_contain_text("type a medical question", timeout=30_000)

        page.fill(
            "#question textarea", "What are the warning signs of a stroke? <img src=x onerror=window.pwned=1>"
        )
        page.click("#ask")
        vote_a = page.locator("#vote-model-a")
        expect(vote_a).to_be_enabled(timeout=240_000)
        assert page.input_value("#answer-a textarea").strip()
        assert page.input_value("#answer-b textarea").strip()
        assert "was" not in page.inner_text("#reveal")  # names stay hidden until the vote

        page.fill("#rationale input, #rationale textarea", "A is clearer")
        vote_a.click()
        expect(page.locator("#reveal")).to_contain_text("SmolLM2-135M-Instruct", timeout=30_000)
        expect(page.locator("#reveal")).to_contain_text("tok/s")
        expect(vote_a).to_be_disabled()
        assert page.evaluate("window.pwned === undefined")

        page.get_by_role("tab", name="Leaderboard").click()
        expect(page.locator("#leaderboard-summary")).to_contain_text("1 rated votes", timeout=60_000)
        expect(page.locator("#leaderboard-table")).to_contain_text("SmolLM2-135M-Instruct")
        browser.close()

    with sqlite3.connect(db) as connection:
        votes = connection.execute("SELECT outcome, rationale FROM votes").fetchall()
    assert votes == [("model_a", "A is clearer")]
