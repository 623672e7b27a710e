"""The board's automatic metrics at first start, measured on the served weights.

A fresh arena's metric columns used to stay empty until someone ran `python -m arena.evaluate` by
hand. At start, `AutoMetrics.start` looks for served contestants without a board metric measured on
the weights they are served on now (`arena.eval.results.served_results`: stable id and weights tag)
and, in a background thread, evaluates just those through the serving backend itself (the bundled
free-text and multiple-choice sets, a few questions each; `arena.eval.runner.run_evaluation`),
storing rows with their provenance like the command line does. Answers are cached by the served
weights, so a restart on the same weights measures nothing again; on other weights (another backend
or precision) it measures afresh. While it runs, the board carries a note (`AutoMetrics.note`).

    metrics = AutoMetrics.start(backend, store, served_weights)   # app.py does this at start
    metrics.note()   # "Automatic metrics are being measured ..." while running, else None

Run as: python app.py   (on by default; --no-auto-metrics or MEDARENA_AUTO_METRICS=0 turns it off)
Tests: python -m pytest tests/test_auto_metrics.py -q
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from arena.eval.results import LEADERBOARD_METRICS, served_results
from arena.eval.runner import EVAL_BACKENDS, EvalBackend, EvalRequest, run_evaluation
from arena.store.protocol import VoteStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AutoMetricsSettings:
    """What the first-start evaluation measures: small, so it finishes within minutes on a CPU."""

    data: tuple[str, ...] = ("bundled", "bundled-mcq")
    limit: int = 12  # questions of each set's test split
    batch_size: int = 4
    max_new_tokens: int | None = (
        None  # None: the evaluation default (arena.serving.peft_engine.GenerationSettings)
    )


def unmeasured(eval_results: Iterable[Mapping[str, Any]], served_weights: Mapping[str, str]) -> list[str]:
    """Served contestants (stable ids, serving order) with no board metric measured on the weights
    they are served on now; a contestant whose weights are unknown ("", a remote server) is left out:
    nothing measured could be matched to it."""
    measured = {
        row.get("contestant_id") or row["contestant"]
        for row in served_results(eval_results, served_weights).rows
        if row["metric"] in LEADERBOARD_METRICS
    }
    return [
        stable_id for stable_id, weights in served_weights.items() if weights and stable_id not in measured
    ]


class AutoMetrics:
    """One background evaluation of the contestants the board has no metrics for; `note()` says
    what the board should tell its readers meanwhile."""

    def __init__(self, pending: list[str], kind: str):
        self.pending = pending
        self.kind = kind
        self.stored = 0  # result rows stored when done
        self.problem: str | None = None  # why it stopped, if it failed
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def start(
        cls,
        backend: EvalBackend,
        store: VoteStore,
        served_weights: Mapping[str, str],
        settings: AutoMetricsSettings | None = None,
    ) -> AutoMetrics:
        """Start measuring what is missing (nothing when every served contestant has metrics on its
        weights, or when the backend cannot be evaluated here, e.g. a remote server)."""
        settings = settings or AutoMetricsSettings()
        pending = unmeasured(store.eval_results(), served_weights) if backend.kind in EVAL_BACKENDS else []
        job = cls(pending, backend.kind)
        if not pending:
            job._done.set()
            return job
        job._thread = threading.Thread(
            target=job._run, args=(backend, store, settings), name="arena-auto-metrics", daemon=True
        )
        job._thread.start()
        return job

    def _run(self, backend: EvalBackend, store: VoteStore, settings: AutoMetricsSettings) -> None:
        request = EvalRequest(
            data=settings.data,
            limit=settings.limit,
            batch_size=settings.batch_size,
            max_new_tokens=settings.max_new_tokens,
            backend=backend.kind,  # type: ignore[arg-type]  # checked against EVAL_BACKENDS in start
            contestants=tuple(self.pending),
        )
        try:
            run = run_evaluation(
                request, store=store, environ=None, start_engine=lambda _options: backend, notify=log.info
            )  # type: ignore[arg-type]  # SQLite and Postgres stores both hold the evaluation tables
            store.add_eval_results(run.rows)  # type: ignore[attr-defined]
            self.stored = len(run.rows)
            log.info("automatic metrics: stored %d rows for %s", self.stored, ", ".join(self.pending))
        except Exception as error:  # a missing scoring model or a failed answer: a board note, not a crash
            self.problem = " ".join(f"{type(error).__name__}: {error}".split())[:300]
            log.warning("automatic metrics were not measured: %s", self.problem)
        finally:
            self._done.set()

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the evaluation ends (tests); False on timeout."""
        return self._done.wait(timeout_s)

    def note(self) -> str | None:
        """The board's note: while measuring, which contestants and where; after a failure, why."""
        if self.running:
            count = len(self.pending)
            return (
                f"Automatic metrics for {count} contestant{'s' if count != 1 else ''} are being measured "
                f"now on the weights the {self.kind} backend serves (a few bundled questions); they "
                "appear here when done."
            )
        if self.problem:
            return f"Automatic metrics could not be measured at start ({self.problem})."
        return None
