"""The DPO loop end to end on the embedded smollm2-135m: simulated votes -> `python -m arena.export
--format dpo` -> `python -m finetune --dpo` (a few trl DPOTrainer steps) -> the new adapter served by
the arena as its own contestant, its run.json naming the votes snapshot it learned from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from arena.export import main as export_main
from tests.conftest import ROOT
from tests.votes_fixture import simulated_votes

pytestmark = pytest.mark.slow


def test_votes_train_an_adapter_that_the_arena_serves(tmp_path: Path) -> None:
    from arena.service import ArenaService
    from arena.serving.common import GenerationSettings
    from arena.serving.peft_engine import ArenaEngine
    from finetune.data import load_dataset_source

    store = simulated_votes(tmp_path / "votes.db", pairs=4)
    export = tmp_path / "dpo"
    assert export_main(["--db", str(store.path), "--format", "dpo", "--out", str(export)]) == 0
    snapshot = json.loads((export / "snapshot.json").read_text())

    adapters = tmp_path / "adapters"
    command = [
        sys.executable, "-m", "finetune", "--model", "smollm2-135m", "--dpo", str(export), "--max-steps", "2",
        "--train.batch_size", "2", "--train.grad_accum", "1", "--train.learning_rate", "1e-3",
        "--output", str(adapters),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    [run_dir] = [path for path in (adapters / "smollm2-135m").iterdir() if not path.name.startswith(".")]
    run = json.loads((run_dir / "run.json").read_text())
    assert run["training"] == "dpo" and run["steps_done"] == 2 and len(run["losses"]) == 2
    assert run["votes_snapshot"] == snapshot and run["dpo"]["pairs"] == 4
    assert (run_dir / "adapter_model.safetensors").is_file()

    engine = ArenaEngine.start(adapters_dir=adapters, model_keys=["smollm2-135m"])
    try:
        names = engine.contestant_names()
        dpo_name = next(name for name in names if run["run_id"] in engine.contestant_id(name))
        assert engine.contestant_id(dpo_name) == f"smollm2-135m/{run['run_id']}"
        service = ArenaService(
            engine,
            store,
            load_dataset_source("bundled").records,
            settings=GenerationSettings(max_new_tokens=8),
        )
        started = service.start_battle(
            "What is the first-line treatment of anaphylaxis?", session_id="dpo-loop-1"
        )
        progress = list(service.stream_battle(started.battle_id, "dpo-loop-1"))
        assert progress[-1].finished and not progress[-1].voided, progress[-1].message
        battle = service.store.get_battle(started.battle_id)
        assert {battle.contestant_a, battle.contestant_b} == set(names) and dpo_name in names
        assert battle.answer_a.strip() and battle.answer_b.strip()
    finally:
        engine.close()
