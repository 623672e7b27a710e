"""The reveal line under each answer, for every backend's telemetry (issue #19, fault 5).

The remote backend (and vLLM serving a hub id) cannot measure a contestant's weights, so their
telemetry carries `memory_mb=None`; the reveal once formatted None and crashed after the vote
was stored. The telemetry here comes from the backends' own `side_telemetry`.

Run: ``python -m pytest tests/test_reveal_telemetry.py -q``
"""

from __future__ import annotations

import pytest

from arena.board import telemetry_summary
from arena.serving.protocol import side_telemetry


def telemetry(memory_mb: float | None, device: str) -> dict:
    return side_telemetry(
        requested_at=0.0, started=0.5, first_token_at=1.0, ended=3.0, output_tokens=40,
        memory_mb=memory_mb, peak_memory_mb=0.0, batched=True, device=device,
    ).to_dict()  # fmt: skip


@pytest.mark.parametrize(
    ("memory_mb", "device", "weights"),
    [
        (None, "remote", "weights not measured"),  # RemoteBackend always
        (None, "cuda", "weights not measured"),  # vLLM serving a hub id
        (2310.44, "cuda", "weights 2310 MB VRAM"),
        (96.0, "cpu", "weights 96 MB RAM"),
    ],
)
def test_reveal_line_names_the_weights_only_where_they_were_measured(
    memory_mb: float | None, device: str, weights: str
) -> None:
    line = telemetry_summary(telemetry(memory_mb, device))
    assert line == (
        f"first words 1.0 s after you asked · complete after 2.5 s · 40 tokens at 16.0 tok/s · {weights}"
    )
