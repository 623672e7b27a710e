"""`python -m arena.evaluate --mcq-scoring loglik` end to end: real smollm2-135m base and adapter, a real
SQLite file, paired base -> adapter deltas, and the studies' table of `--report`.

python -m pytest tests/test_eval_loglik.py -q
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from arena.eval.results import LOGLIK_METRICS, MCQ_METRICS, PAIRED_PREFIX
from arena.eval.studies_report import HEADER
from arena.serving.peft_engine import ArenaEngine
from arena.store.battles import ArenaStore
from tests.conftest import SHARED_DATA
from tests.test_evaluate import run_main

MODEL = "smollm2-135m"
MEDQA = SHARED_DATA / "medqa_usmle" / "medqa_usmle.jsonl"
N = 6

pytestmark = pytest.mark.slow


def test_loglik_scoring_paired_delta_and_studies_report(tiny_adapters: Path, tmp_path: Path) -> None:
    if not MEDQA.exists():
        pytest.skip(f"MedQA-USMLE not found at {MEDQA} (the shared data folder beside the checkout)")
    engine = ArenaEngine.start(adapters_dir=tiny_adapters, model_keys=[MODEL])
    db = tmp_path / "votes.db"
    common = ["--model", MODEL, "--data", str(MEDQA), "--split", "all", "--limit", str(N),
              "--mcq-scoring", "loglik", "--db", str(db), "--adapters-dir", str(tiny_adapters)]  # fmt: skip
    base = run_main([*common, "--adapter", "none"], start_engine=lambda _options: engine)
    adapter = run_main([*common, "--adapter", "latest"], start_engine=lambda _options: engine)
    assert base.code == 0 and adapter.code == 0, base.stdout + adapter.stdout
    assert "generated 0 new answers" in base.stdout  # log-likelihood scoring generates nothing
    with closing(sqlite3.connect(db)) as connection:
        assert connection.execute("SELECT COUNT(*) FROM eval_cache").fetchone()[0] == 0

    store = ArenaStore(db)
    by_run: dict[str | None, dict[str, dict]] = {}
    for row in store.eval_results():
        by_run.setdefault(row["run_id"], {})[row["metric"]] = row
    base_rows, adapter_rows = by_run[base.run_id], by_run[adapter.run_id]
    for rows in (base_rows, adapter_rows):
        assert set(LOGLIK_METRICS) <= set(rows) and not set(MCQ_METRICS) & set(rows)
        accuracy = rows["mcq_ll_accuracy"]
        assert accuracy["n"] == N and accuracy["ci_low"] <= accuracy["value"] <= accuracy["ci_high"]
        assert round(accuracy["value"] * N) == pytest.approx(accuracy["value"] * N)  # k of N right
    assert not any(metric.startswith(PAIRED_PREFIX) for metric in base_rows)
    paired = adapter_rows[PAIRED_PREFIX + "mcq_ll_accuracy"]
    # The adapter run scored its base with every LoRA off; that equals the plain base's own run.
    expected = adapter_rows["mcq_ll_accuracy"]["value"] - base_rows["mcq_ll_accuracy"]["value"]
    assert paired["value"] == pytest.approx(expected)
    assert paired["ci_low"] <= paired["value"] <= paired["ci_high"]

    out = tmp_path / "results"
    report = run_main(["--report", "--db", str(db), "--out", str(out), "--adapters-dir", str(tiny_adapters)])
    assert report.code == 0
    studies = (out / "studies.md").read_text(encoding="utf-8")
    assert "| " + " | ".join(HEADER) + " |" in studies and studies in report.stdout + "\n"
    run_dir = next(p for p in (tiny_adapters / MODEL).iterdir() if not p.name.startswith("."))
    run = json.loads((run_dir / "run.json").read_text())
    adapter_line = next(line for line in studies.splitlines() if run["run_id"] in line)
    cells = [cell.strip() for cell in adapter_line.strip("|").split("|")]
    row = dict(zip(HEADER, cells, strict=True))
    assert row["Trainable"] == f"{run['trainable_parameters'] / 1e6:.1f}M"
    assert row["Train s"] == f"{run['train_seconds']:.0f}" and row["MCQ by"] == "log-likelihood"
    assert row["Acc"].startswith(f"{adapter_rows['mcq_ll_accuracy']['value']:.3f} [")
    assert row["Δ vs base (paired 95% CI)"].startswith(f"LL accuracy {paired['value']:+.3f} [")
    assert (out / "studies_mcq_ll_accuracy.png").read_bytes().startswith(b"\x89PNG")
    assert (out / "studies.csv").read_text(encoding="utf-8").startswith("Model,")
    assert f"{paired['value']:+.3f} [" in (out / "eval_report.md").read_text(encoding="utf-8")
