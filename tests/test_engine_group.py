"""vLLM's engine processes run in a session and autogroup of their own, and end with the app
(arena/serving/engine_group.py; issue #25 item 4).

Real processes through vLLM's own multiprocessing context (the one its engine manager starts the
EngineCore with); the vLLM backend's tests check the real engines too.

Run as: python -m pytest tests/test_engine_group.py -q
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from arena.serving.engine_group import ENGINE_GROUP_NICE, engines_in_own_group

# real processes, and a Python child that imports vLLM: the slow tier
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
AUTOGROUPS = Path("/proc/self/autogroup").exists()


def wait_for(condition, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def autogroup_of(pid: int) -> str:
    return Path(f"/proc/{pid}/autogroup").read_text().strip()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has ended; only its parent's wait is missing


def test_a_process_started_inside_runs_in_its_own_session_at_the_groups_nice() -> None:
    from vllm.v1.engine import utils as engine_utils

    # A process whose session began at boot (a CI runner's, a container's) sits in the root task
    # group, and its autogroup file reads empty; a desktop shell's reads "/autogroup-N nice 0".
    apps_group = autogroup_of(os.getpid()) if AUTOGROUPS else ""
    with engines_in_own_group():
        child = engine_utils.get_mp_context().Process(target=time.sleep, args=(30,), name="EngineCore")
        child.start()
    try:
        assert wait_for(lambda: os.getsid(child.pid) == child.pid), "the engine never left the app's session"
        assert os.getsid(child.pid) != os.getsid(0)
        if AUTOGROUPS:
            assert wait_for(lambda: autogroup_of(child.pid).endswith(f"nice {ENGINE_GROUP_NICE}"))
            assert autogroup_of(child.pid) != apps_group
            assert autogroup_of(os.getpid()) == apps_group  # the app's own group is untouched
    finally:
        child.terminate()
        child.join(10)


def test_outside_the_block_processes_stay_in_the_apps_session() -> None:
    from vllm.v1.engine import utils as engine_utils

    with engines_in_own_group():
        pass
    child = engine_utils.get_mp_context().Process(target=time.sleep, args=(30,))
    child.start()
    try:
        time.sleep(1.0)  # long enough for a wrapped target to have called setsid
        assert os.getsid(child.pid) == os.getsid(0)
    finally:
        child.terminate()
        child.join(10)


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_an_engine_ends_when_the_app_dies_without_closing_it(method: str) -> None:
    """Outside the app's session no terminal hang-up reaches the engine: it watches its parent."""
    app = (
        "import multiprocessing, os, sys, time\n"
        "from vllm.v1.engine import utils as engine_utils\n"
        "from arena.serving.engine_group import engines_in_own_group\n"
        f"os.environ['VLLM_WORKER_MULTIPROC_METHOD'] = {method!r}\n"
        "with engines_in_own_group():\n"
        "    engine = engine_utils.get_mp_context().Process(target=time.sleep, args=(120,))\n"
        "    engine.start()\n"
        "print(engine_utils.get_mp_context().get_start_method(), engine.pid, flush=True)\n"
        "time.sleep(2)\n"
        "os._exit(0)  # killed: no close, no atexit\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", app], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    start_method, pid = result.stdout.split()[-2:]
    assert start_method == method
    engine_pid = int(pid)
    assert wait_for(lambda: not alive(engine_pid), timeout_s=15), "the engine outlived the app"


def test_the_group_context_passes_everything_else_through() -> None:
    from vllm.v1.engine import utils as engine_utils

    with engines_in_own_group():
        context = engine_utils.get_mp_context()
        queue = context.Queue()
        queue.put("tensor")
        assert queue.get(timeout=5) == "tensor"
        assert context.get_start_method() in multiprocessing.get_all_start_methods()
