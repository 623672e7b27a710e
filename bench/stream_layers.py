"""Where a streamed battle pauses: each layer between the engine and the page stamped in one run.

For every battle (the app's UI served from this process, headless Chromium on the same cores, as
`bench/serve_bench.py` does it), the longest pauses of:

1. the service's yields (`ArenaService.stream_battle`, what the UI handler forwards);
2. the server's writes of the event stream (Starlette's `StreamingResponse` `send`);
3. Chromium's network reads (CDP `Network.dataReceived`; CLOCK_MONOTONIC, like `time.monotonic`);
4. the page's DOM changes (a MutationObserver on both answers).

A pause that appears at 3 but not at 2 lies in the browser, not the server: issue #25's vLLM gap
does (README, Benchmarks: streaming).

    python bench/stream_layers.py --backend vllm --tokens 128 --battles 4
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def longest(stamps: list[float], top: int = 3) -> list[tuple[float, float]]:
    """The `top` longest pauses between consecutive stamps, as (pause, seconds from the click)."""
    pauses = sorted(((b - a, a) for a, b in itertools.pairwise(stamps)), reverse=True)[:top]
    return [(round(pause, 3), round(at, 3)) for pause, at in pauses]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="vllm", choices=["peft", "vllm", "vllm-stock-lora", "llamacpp"])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--battles", type=int, default=4)
    args = parser.parse_args()

    import starlette.responses
    from playwright.sync_api import expect, sync_playwright

    from arena.serving.backends import BackendOptions, start_backend
    from arena.serving.vllm_config import VLLMSettings
    from bench.serve_bench import backend_options, open_arena_page, serve_stamped_ui, type_question

    backend = start_backend(backend_options(args.backend, BackendOptions, VLLMSettings))
    url, demo, yields, folder = serve_stamped_ui(backend, args.tokens, "stream-layers-")
    sends: list[float] = []
    stream_response = starlette.responses.StreamingResponse.stream_response

    async def stamped_response(self, send):  # every write of an event stream, as the server makes it
        async def stamped_send(message):
            if message.get("type") == "http.response.body" and message.get("body"):
                sends.append(time.monotonic())
            await send(message)

        await stream_response(self, stamped_send)

    starlette.responses.StreamingResponse.stream_response = stamped_response
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        with sync_playwright() as playwright:
            browser, page = open_arena_page(playwright, chromium, url)
            cdp = page.context.new_cdp_session(page)
            cdp.send("Network.enable")
            reads: list[float] = []
            cdp.on("Network.dataReceived", lambda event: reads.append(event["timestamp"]))
            for index in range(args.battles):
                type_question(page, index)
                clicked_page = page.evaluate("() => performance.now()")
                clicked = time.monotonic()
                yields.clear(), sends.clear(), reads.clear()
                page.click("#ask")
                expect(page.locator("#vote-model-a")).to_be_enabled(timeout=600_000)
                dom = [(stamp - clicked_page) / 1000 for stamp in page.evaluate("() => window.__updates")]
                with sqlite3.connect(folder / "votes.db") as db:
                    pair = db.execute(
                        "SELECT contestant_a, contestant_b FROM battles ORDER BY created_at DESC LIMIT 1"
                    ).fetchone()
                print(f"battle {index}: {pair[0]} vs {pair[1]}")
                for layer, stamps in (
                    ("service yields", yields),
                    ("server writes", sends),
                    ("browser reads", reads),
                ):
                    relative = [stamp - clicked for stamp in stamps]
                    print(f"  {layer:15} {len(relative):4} longest pauses (s, at s) {longest(relative)}")
                print(
                    f"  {'page changes':15} {len(dom):4} longest pauses (s, at s) {longest(dom)}", flush=True
                )
            browser.close()
    finally:
        demo.close()
        backend.close()


if __name__ == "__main__":
    main()
