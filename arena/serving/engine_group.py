"""vLLM's engine processes in a scheduling group of their own, below the app and the browser.

Linux (with `sched_autogroup_enabled`, the default on desktop and many server kernels) shares the CPU
between sessions first and between the threads of one session second. Niceness only ranks threads
inside a session: vLLM's engines, started by the app, shared the app's session, and that session got
the same share as the browser's whatever the engines' niceness. On 2 cores the page then fell behind
the server (issue #25 item 4: Chromium's network reads paused 1-4 s while the server's writes were
steady). An engine started inside `engines_in_own_group` calls `setsid` first, so it runs in a new
session with an autogroup of its own, and raises that group's nice: the app's and the browser's
sessions are served first, the engines take what is left. Only engines on a CPU: on a GPU the
engines' CPU threads feed the GPU and compete with nothing that streams.

Best effort: without autogroups (`/proc/self/autogroup` absent) only the session changes, and the
threads' own niceness (`lower_new_children_priority`) still ranks them below the app. A new session
no longer gets the terminal's signals, so the engine watches its parent and ends when the app does.

Run as: python -m pytest tests/test_engine_group.py -q
"""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

# The engines' autogroup nice: weight 110 against the app's and the browser's 1024 (nice 0), so
# a busy engine takes about a tenth of a core the others want, and all of what they leave.
ENGINE_GROUP_NICE = 10
PARENT_CHECK_S = 1.0


def enter_own_group(nice: int) -> None:
    """Make the calling process the leader of a new session, with its autogroup `nice`; best effort."""
    with suppress(OSError):  # already a session or group leader
        os.setsid()
    with suppress(OSError), open("/proc/self/autogroup", "w") as autogroup:  # no autogroups here
        autogroup.write(str(nice))


def _end_with_parent(parent: int) -> None:
    """SIGTERM this process once its parent has gone (outside the app's session, no terminal ends it)."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os.kill(os.getpid(), signal.SIGTERM)


def run_in_own_group(nice: int, parent: int, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A child process's target: enter its own group, watch the parent, then run `target`."""
    enter_own_group(nice)
    threading.Thread(target=_end_with_parent, args=(parent,), name="parent-watch", daemon=True).start()
    return target(*args, **kwargs)


class _OwnGroupContext:
    """A multiprocessing context whose processes run their target through `run_in_own_group`."""

    def __init__(self, context: Any, nice: int) -> None:
        self._context = context
        self._nice = nice

    # multiprocessing's name for it
    def Process(self, *args: Any, target: Callable[..., Any], **kwargs: Any) -> Any:
        wrapped = functools.partial(run_in_own_group, self._nice, os.getpid(), target)
        return self._context.Process(*args, target=wrapped, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


@contextmanager
def engines_in_own_group(nice: int = ENGINE_GROUP_NICE) -> Iterator[None]:
    """vLLM engine processes started inside the block run in their own session and autogroup."""
    from vllm.v1.engine import utils as engine_utils

    original = engine_utils.get_mp_context
    engine_utils.get_mp_context = lambda: _OwnGroupContext(original(), nice)
    try:
        yield
    finally:
        engine_utils.get_mp_context = original
