"""The board's automatic metrics at first start (arena/eval/auto_metrics.py): which contestants lack metrics
on their served weights, the board's note while they are measured, and a real background evaluation
on llama.cpp (the embedded Q4_1 SmolLM2 GGUF and its committed demo adapter) that fills the board's
metric cells with rows naming those weights, and is not repeated at the next start.

Run as: python -m pytest tests/test_auto_metrics.py -q
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from arena.board import LEADERBOARD_COLUMNS, NO_METRICS_NOTE, standing_cells
from arena.eval.auto_metrics import AutoMetrics, AutoMetricsSettings, unmeasured
from arena.service import ArenaService
from arena.store.battles import ArenaStore
from finetune.data import load_dataset_source

ROOT = Path(__file__).resolve().parent.parent
MODEL = "smollm2-135m"
BANK = load_dataset_source("bundled").records


def row(contestant_id: str, weights: str | None, metric: str = "bertscore_f1") -> dict[str, Any]:
    return {"contestant": contestant_id, "contestant_id": contestant_id, "metric": metric, "weights": weights}


def test_only_contestants_without_metrics_on_their_served_weights_are_measured() -> None:
    rows = [
        row("smollm2-135m/base", "gguf-q4_1"),
        row("smollm2-135m/run1", "nf4"),  # measured on other weights
        row("gemma3-270m/base", "gguf-q4_k_m", "gen.max_new_tokens"),  # a setting is not a metric
    ]
    served = {"smollm2-135m/base": "gguf-q4_1", "smollm2-135m/run1": "gguf-q4_1",
              "gemma3-270m/base": "gguf-q4_k_m", "remote/demo": ""}  # fmt: skip
    assert unmeasured(rows, served) == ["smollm2-135m/run1", "gemma3-270m/base"]  # remote: nothing to match
    assert unmeasured([], {}) == []


def cells(service: ArenaService, contestant_id: str) -> dict[str, Any]:
    standing = next(s for s in service.leaderboard().rows if s.contestant_id == contestant_id)
    return dict(zip(LEADERBOARD_COLUMNS, standing_cells(standing), strict=True))


@pytest.fixture(scope="module")
def backend() -> Any:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    from arena.serving.backends import BackendOptions, start_backend

    started = start_backend(
        BackendOptions(kind="llamacpp", adapters_dir=ROOT / "adapters", model_keys=(MODEL,))
    )
    yield started
    started.close()


@pytest.mark.slow
def test_the_first_start_measures_the_served_weights_in_the_background_and_the_next_start_does_not(
    backend: Any, tmp_path: Path
) -> None:
    store = ArenaStore(tmp_path / "votes.db")
    service = ArenaService(backend, store, BANK, seed=1, bootstrap_rounds=20, heartbeat_every=None)
    ids = list(service.served_weights())
    assert len(ids) == 2 and set(service.served_weights().values()) == {"gguf-q4_1"}  # base and adapter
    assert NO_METRICS_NOTE in service.leaderboard().notes

    # While a job runs, the board says what is being measured instead of "run arena.evaluate".
    service.auto_metrics = AutoMetrics(ids, backend.kind)  # not started: still running
    notes = service.leaderboard().notes
    assert NO_METRICS_NOTE not in notes
    assert any("are being measured now on the weights the llamacpp backend serves" in n for n in notes)

    settings = AutoMetricsSettings(limit=3, max_new_tokens=8)
    job = service.start_auto_metrics(settings)
    assert job.pending == ids
    assert job.wait(900) and job.problem is None, job.problem
    assert job.note() is None and job.stored > 0
    stored = store.eval_results()
    assert {(r["contestant_id"], r["weights"]) for r in stored} == {(i, "gguf-q4_1") for i in ids}
    for contestant_id in ids:
        shown = cells(service, contestant_id)
        assert shown["BERTScore F1"] and shown["MCQ accuracy"]  # both bundled sets, on these weights
        assert shown["BERTScore F1"] != "not measured on these weights"
    assert NO_METRICS_NOTE not in service.leaderboard().notes

    again = service.start_auto_metrics(settings)  # a restart on the same weights measures nothing
    assert again.pending == [] and not again.running and len(store.eval_results()) == len(stored)
    service.close()
