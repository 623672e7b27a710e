"""The serving contract: the `ArenaBackend` Protocol the service depends on, and what every backend
shares to honour it (the one fold of per-side events into pair updates, with its bounded wait, and the
one telemetry builder). It sits below every backend and the factory (`arena.serving.backends`), so no backend
imports the module that constructs it.

Run as: python -m pytest tests/test_backend_choice.py tests/test_reveal_telemetry.py -q
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from arena.serving.common import GenerationSettings, PairUpdate, SideState, Telemetry

BackendKind = Literal["peft", "vllm", "llamacpp", "remote"]
BACKENDS: tuple[BackendKind, ...] = ("peft", "vllm", "llamacpp", "remote")


@runtime_checkable
class ArenaBackend(Protocol):
    """What the service (and app.py) need from whatever serves the contestants."""

    warnings: list[str]
    kind: ClassVar[BackendKind]  # which implementation serves (app.py prints it)
    concurrent_battles: int  # battles worth running at once: the UI's queue concurrency

    def contestant_names(self) -> list[str]:
        """Every served contestant's display label, in serving order."""

    def contestant_id(self, name: str) -> str:
        """The stable id (`<model key>/<run id or base>`) of the contestant shown as `name`."""
        ...

    def contestant_weights(self, name: str) -> str:
        """The weights `name` is served on, as a format/precision tag (`arena.adapters.Contestant.weights`:
        "nf4", "bf16", "gguf-q4_1"; "" where the backend cannot say); the board shows an automatic
        metric only where the evaluation recorded these weights."""
        ...

    def stream_pair(
        self,
        question: str,
        name_a: str,
        name_b: str,
        settings: GenerationSettings,
        requested_at: float | None = None,
    ) -> Iterator[PairUpdate]:
        """Both answers as they stream; `requested_at` is `time.perf_counter()` at the clinician's
        click, so `Telemetry.first_token_s` is the wait the clinician saw."""
        ...

    def compute(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run other torch work (the battle-time BERTScore scorer) where this backend wants it."""
        ...

    def close(self) -> None:
        """Stop serving and release the models (engine processes, threads, memory)."""


def side_telemetry(
    *,
    requested_at: float | None,
    started: float,
    first_token_at: float | None,
    ended: float,
    output_tokens: int,
    memory_mb: float | None,
    peak_memory_mb: float,
    batched: bool,
    device: str,
) -> Telemetry:
    """One answer's telemetry by the shared contract: first token from the click (fallback: this
    side's start), tokens/s over the side's own wall time, memory = this contestant's weights."""
    first = first_token_at or ended
    latency = ended - started
    return Telemetry(
        ttft_s=round(first - started, 4),
        latency_s=round(latency, 4),
        output_tokens=output_tokens,
        tokens_per_s=round(output_tokens / latency, 2) if latency > 0 else 0.0,
        peak_memory_mb=round(peak_memory_mb, 1),
        memory_kind="rss" if device == "cpu" else ("vram" if device == "cuda" else "remote"),
        adapter_switch_ms=0.0,
        batched_with_other_side=batched,
        device=device,
        first_token_s=round(first - (requested_at if requested_at is not None else started), 4),
        memory_mb=None if memory_mb is None else round(memory_mb, 1),
    )


SideEvent = tuple[str, str, Any]  # (kind, side, payload): ("text", "a", str) / ("done", ...) / ("error", ...)


def merge_sides(
    events: queue.Queue[SideEvent], cancel: Callable[[], None], *, stall_timeout_s: float | None = None
) -> Iterator[PairUpdate]:
    """Fold per-side events from producer threads into PairUpdate snapshots until both sides end.

    `cancel` runs if the consumer stops early (a clinician closes the tab), so no request keeps
    generating for nobody. With `stall_timeout_s`, a wait for the next event is bounded: the sides
    still open end with a TimeoutError (the service voids the battle) and the requests are cancelled."""
    sides = {"a": SideState(), "b": SideState()}
    try:
        while not (sides["a"].done and sides["b"].done):
            try:
                kind, side, payload = events.get(timeout=stall_timeout_s)
            except queue.Empty:
                message = f"TimeoutError: no output for {stall_timeout_s:g} s"
                for name, state in sides.items():
                    if not state.done:
                        sides[name] = SideState(text=state.text, done=True, error=message)
                cancel()  # the stalled requests are told to stop; nobody waits on them
                yield PairUpdate(a=SideState(**vars(sides["a"])), b=SideState(**vars(sides["b"])))
                break
            if kind == "text":
                sides[side] = SideState(text=payload)
            elif kind == "done":
                text, telemetry = payload
                sides[side] = SideState(text=text, done=True, telemetry=telemetry)
            else:
                sides[side] = SideState(text=sides[side].text, done=True, error=payload)
            yield PairUpdate(a=SideState(**vars(sides["a"])), b=SideState(**vars(sides["b"])))
    finally:
        if not (sides["a"].done and sides["b"].done):
            cancel()
