"""The app on a CPU without AVX-512, for real: QEMU's user-mode emulator of an Intel Haswell (AVX2,
FMA, F16C; no AVX-512) runs the project's own processes (issue #25 item 5).

tests/test_any_cpu.py and tests/test_unsloth_import.py make `vllm._C` fail on this machine's CPU,
which has AVX-512; here nothing is simulated: the emulated CPU reports no AVX-512 to every library's
CPU check (torch, vLLM's loader, ggml), and an AVX-512 instruction is SIGILL, as on such a CPU. The
control shows it: a plain `import unsloth` (which force-imports vLLM's AVX-512 kernels) dies there.
The project's imports (Unsloth's through `finetune.gpu`, the app, every backend, the UI), a battle on
the PEFT engine and a battle on llama.cpp's portable build (`setup.sh --test` builds it beside the
native one) all run there. Emulation says nothing of speed (bench/serve_bench.py --isa avx2 is the
proxy for that); it is slow, so each child does one short battle.

Run as: python -m pytest tests/test_avx2_cpu.py -q
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import signal
import subprocess
import sys

import pytest

from tests.conftest import ROOT

QEMU = shutil.which("qemu-x86_64-static") or shutil.which("qemu-x86_64")
# Haswell without TSX (v4): AVX2, FMA, F16C, BMI2 and no AVX-512, like most laptops' and many clouds' CPUs
CPU_MODEL = "Haswell-v4"
PORTABLE_LLAMA_CPP = ROOT / "build" / "llama-portable"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        QEMU is None or platform.machine() != "x86_64",
        reason="needs QEMU's x86-64 user-mode emulator (setup.sh --test installs qemu-user-static)",
    ),
]


def on_haswell(code: str, timeout_s: int = 900) -> subprocess.CompletedProcess[str]:
    """Run `code` in this Python under QEMU's Haswell; no GPU, the repository importable."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": path}
    # (the real interpreter: QEMU runs an ELF file, not a shell shim in front of one)
    command = [QEMU, "-cpu", CPU_MODEL, os.path.realpath(sys.executable), "-c", code]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
    # QEMU names the host-only features of the model it leaves out (TSC deadline, x2APIC ...)
    stderr = "\n".join(line for line in result.stderr.splitlines() if "TCG doesn't support" not in line)
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout, stderr)


def battle(kind: str, tokens: int) -> str:
    """Child code: start `kind` on SmolLM2 and serve its adapter against its base, both answering
    (`tuned` and `base` name the two contestants afterwards)."""
    return (
        "from arena.serving.backends import BackendOptions, start_backend\n"
        "from arena.serving.common import GenerationSettings\n"
        f"backend = start_backend(BackendOptions(kind={kind!r}, model_keys=('smollm2-135m',)))\n"
        "tuned, base = backend.contestant_names()[0], backend.contestant_names()[-1]\n"
        "final = list(backend.stream_pair('What is sepsis?', tuned, base, "
        f"GenerationSettings(max_new_tokens={tokens})))[-1]\n"
        "backend.close()\n"
        "assert final.finished and final.a.text and final.b.text and not (final.a.error or final.b.error), final\n"
    )


@pytest.mark.skipif(importlib.util.find_spec("unsloth") is None, reason="needs Unsloth (setup.sh --test)")
def test_a_plain_unsloth_import_dies_there_with_sigill() -> None:
    # The control: Unsloth 2026.10.9 force-imports vllm._C, vLLM's AVX-512 build, which this CPU lacks.
    result = on_haswell("import unsloth\n")
    assert result.returncode == -signal.SIGILL, (result.returncode, result.stderr[-2000:])


def test_the_projects_imports_and_a_peft_battle_run_there() -> None:
    result = on_haswell(
        "import importlib.util, torch\n"
        # (every library's CPU check sees the emulated CPU: torch picks its AVX2 kernels)
        "print('CAPABILITY', torch.backends.cpu.get_cpu_capability(), torch.cpu._is_avx512_supported())\n"
        "if importlib.util.find_spec('unsloth') is not None:\n"
        "    from finetune.gpu import import_unsloth, import_unsloth_first\n"
        "    assert import_unsloth_first('unsloth') and import_unsloth().FastLanguageModel is not None\n"
        "import app, arena.service, arena.ui, arena.serving.backends, arena.serving.peft_engine\n"
        "import arena.serving.llamacpp_backend, arena.serving.remote_backend, arena.serving.vllm_backend\n"
        + battle("peft", tokens=6)
        + "mapped = sorted({line.split()[-1] for line in open('/proc/self/maps') if '/vllm/' in line and '.so' in line})\n"
        "print('SERVED', tuned, '|', base)\n"
        "print('MAPPED', mapped)\n"
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-3000:])
    assert "CAPABILITY AVX2 False" in result.stdout, result.stdout
    assert "SERVED" in result.stdout and "LoRA" in result.stdout, result.stdout
    assert "MAPPED []" in result.stdout, result.stdout


@pytest.mark.skipif(
    not (PORTABLE_LLAMA_CPP / "llama_cpp").is_dir(),
    reason=f"needs llama.cpp's portable build in {PORTABLE_LLAMA_CPP} (setup.sh --test builds it)",
)
def test_llama_cpps_portable_build_serves_a_battle_there() -> None:
    result = on_haswell(
        f"import sys; sys.path.insert(0, {str(PORTABLE_LLAMA_CPP)!r})\n"
        "import llama_cpp\n"
        "print('SYSTEM', llama_cpp.llama_print_system_info().decode())\n"
        + battle("llamacpp", tokens=8)
        + "print('LIBRARY', llama_cpp.__file__)\n"
        "print('SERVED', tuned, '|', base)\n"
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-3000:])
    assert f"LIBRARY {PORTABLE_LLAMA_CPP}" in result.stdout, result.stdout
    system = next(line for line in result.stdout.splitlines() if line.startswith("SYSTEM"))
    assert "AVX2 = 1" in system and "AVX512" not in system, system
    assert "SERVED" in result.stdout and "LoRA" in result.stdout, result.stdout
