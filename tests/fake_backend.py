"""A backend without a model, for wiring tests of the service boundary (input checks, storage faults,
ownership, fuzzing): it answers every question with fixed text and real-shaped telemetry. Model
behaviour is tested on real tiny models in tests/test_service.py; this only feeds the service.

    service = ArenaService(ScriptedBackend(), ArenaStore(tmp_path / "votes.db"), bank)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from arena.serving.common import GenerationSettings, PairUpdate, SideState, Telemetry

TELEMETRY = Telemetry(
    ttft_s=0.01,
    latency_s=0.02,
    output_tokens=3,
    tokens_per_s=150.0,
    peak_memory_mb=1.0,
    memory_kind="rss",
    adapter_switch_ms=0.0,
    batched_with_other_side=True,
    device="cpu",
)


@dataclass
class ScriptedBackend:
    """Two contestants that answer in two steps; `gate`, when set, holds the stream after its first
    step until released (a battle that stays generating while a test acts)."""

    names: tuple[str, ...] = ("smollm2-135m · base", "smollm2-135m · LoRA run-1")
    gate: threading.Event | None = None
    warnings: list[str] = field(default_factory=list)
    kind: ClassVar[Literal["peft"]] = "peft"
    concurrent_battles: int = 2

    def contestant_names(self) -> list[str]:
        return list(self.names)

    def contestant_id(self, name: str) -> str:
        model, _, run = name.partition(" · ")
        return f"{model}/{'base' if run == 'base' else run.removeprefix('LoRA ')}"

    def contestant_weights(self, name: str) -> str:
        return "scripted"

    def stream_pair(
        self,
        question: str,
        name_a: str,
        name_b: str,
        settings: GenerationSettings,
        requested_at: float | None = None,
    ) -> Iterator[PairUpdate]:
        yield PairUpdate(SideState(text="Partial"), SideState(text="Partial"))
        if self.gate is not None:
            self.gate.wait(timeout=30)
        yield PairUpdate(
            SideState(text=f"Answer by {name_a}.", done=True, telemetry=TELEMETRY),
            SideState(text=f"Answer by {name_b}.", done=True, telemetry=TELEMETRY),
        )

    def compute(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    def close(self) -> None:
        pass
