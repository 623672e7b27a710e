"""The adapter catalogue (arena/adapters.py): discovery, latest selection, run.json base check, ids.

Real files in a temporary adapters/ folder (tiny finite safetensors); no model is loaded.
Run as: python -m pytest tests/test_adapters.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arena.adapters import Contestant, discover_adapters, latest_runs, select_adapters
from arena.eval.runner import resolve_adapter
from finetune.registry import get_model

SMOL = get_model("smollm2-135m")


def make_run(root: Path, model_key: str, run_id: str, run_json: dict | None) -> Path:
    """An adapter folder as training writes one: config, one finite tensor and (optionally) run.json."""
    import torch
    from safetensors.torch import save_file

    run_dir = root / model_key / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "adapter_config.json").write_text("{}")
    save_file({"lora_A.weight": torch.ones(2, 4)}, str(run_dir / "adapter_model.safetensors"))
    if run_json is not None:
        (run_dir / "run.json").write_text(json.dumps(run_json))
    return run_dir


@pytest.fixture()
def adapters(tmp_path: Path) -> Path:
    root = tmp_path / "adapters"
    make_run(root, SMOL.key, "20260101-000000", {"model_key": SMOL.key, "base_id": SMOL.hf_id})
    make_run(root, SMOL.key, "20260301-000000", {"model_key": SMOL.key, "base_id": SMOL.bnb_4bit_id})
    make_run(root, SMOL.key, "20260401-000000", None)  # hand-made: no provenance recorded, not refused
    # Newest of all, but trained on another base: must be refused, so "latest" is the run before it.
    make_run(
        root, SMOL.key, "20260501-000000", {"model_key": "gemma3-270m", "base_id": "google/gemma-3-270m-it"}
    )
    make_run(root, SMOL.key, "20260601-000000", {"model_key": SMOL.key, "base_id": "someone/other-base"})
    return root


def test_runs_recorded_on_another_base_are_refused_with_a_warning(adapters: Path) -> None:
    found, warnings = discover_adapters(adapters)
    assert [info.run_id for info in found] == ["20260101-000000", "20260301-000000", "20260401-000000"]
    assert len(warnings) == 2
    assert "trained on gemma3-270m, not smollm2-135m" in warnings[0]
    assert "records base someone/other-base" in warnings[1]


def test_latest_is_the_newest_sound_run_in_every_consumer(adapters: Path) -> None:
    found, _ = discover_adapters(adapters)
    assert latest_runs(found)[SMOL.key].run_id == "20260401-000000"
    assert [info.run_id for info in select_adapters(found, "latest")] == ["20260401-000000"]
    resolved = resolve_adapter(SMOL.key, "latest", adapters)
    assert resolved is not None and resolved.run_id == "20260401-000000"
    assert select_adapters(found, [f"{SMOL.key}/20260101-000000"]) == [found[0]]


def test_contestant_id_is_stable_and_the_label_is_derived() -> None:
    lora = Contestant(SMOL.key, SMOL.display_name, "20260101-000000", None, "nf4")
    base = Contestant(SMOL.key, "Renamed in the registry", None, None, "bf16")
    assert lora.id == "smollm2-135m/20260101-000000" and base.id == "smollm2-135m/base"
    assert lora.name == f"{SMOL.display_name} · LoRA 20260101-000000 · nf4"


def test_a_missing_or_misspelt_adapters_folder_gets_a_note_naming_it(tmp_path: Path) -> None:
    (tmp_path / "adapters").mkdir()
    found, warnings = discover_adapters(tmp_path / "adaptors")
    assert found == [] and len(warnings) == 1
    assert str(tmp_path / "adaptors") in warnings[0] and "does not exist" in warnings[0]
    assert f"Did you mean {tmp_path / 'adapters'}?" in warnings[0]
    _, elsewhere = discover_adapters(tmp_path / "nothing-like-it" / "runs")
    assert "does not exist" in elsewhere[0] and "Did you mean" not in elsewhere[0]
    assert discover_adapters(tmp_path / "adapters") == ([], [])  # an empty folder that exists: no note
