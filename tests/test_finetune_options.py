"""Fast checks (no model) of the fine-tuning options: quantisation, rank and target presets,
epochs vs max_steps, schedules, the data mix, the sweep grid and table, and every file in configs/.

Run: ``python -m pytest tests/test_finetune_options.py -q``
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from finetune.__main__ import main, without_options
from finetune.config import ConfigError, FinetuneConfig, build_config
from finetune.data import DataError
from finetune.mixing import load_mix, parse_mix
from finetune.steps import lr_lambda
from finetune.sweep import cell_flags, cells, parse_axes, table_row, write_table

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
QA = ROOT / "data" / "medarena_qa.jsonl"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_example_config_is_valid_and_opens_with_its_launch_command(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# ") and "-m finetune" in first and f"configs/{path.name}" in first
    config = build_config(yaml_file=path)
    assert isinstance(config, FinetuneConfig)


def test_configs_folder_has_the_examples() -> None:
    assert {"smollm2-135m_medquad.yaml", "sweep_rank_quant.yaml"} <= {p.name for p in CONFIGS}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"quant": "3bit"}, "quant must be one of 4bit, 8bit, 16bit"),
        ({"lora": {"rank": "12"}}, "power of two"),
        ({"lora": {"target": "mlp"}}, "lora.target must be one of qv, attention, all"),
        ({"train": {"epochs": 1, "max_steps": 3}}, "exactly one of train.max_steps and train.epochs"),
        ({"train": {"early_stopping_patience": 2}}, "needs train.eval_steps"),
        ({"train": {"lr_scheduler": "step"}}, "linear, cosine, constant"),
        ({"train": {"warmup_ratio": 1.5}}, "warmup_ratio"),
        ({"train": {"save_steps": 0}}, "save_steps"),
    ],
)
def test_bad_options_fail_naming_the_field(flags: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(flags=flags)


def test_power_of_two_ranks_are_accepted() -> None:
    for rank in (1, 2, 64, 256):
        assert build_config(flags={"lora": {"rank": rank}}).lora.rank == rank


def test_epochs_replace_max_steps_from_a_lower_layer(tmp_path: Path) -> None:
    config = build_config(preset="demo", flags={"train": {"epochs": "2"}})
    assert (config.train.max_steps, config.train.epochs) == (None, 2.0)
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("train:\n  epochs: 3\n")
    again = build_config(yaml_file=yaml_file, flags={"train": {"max_steps": 7}})
    assert (again.train.max_steps, again.train.epochs) == (7, None)
    # 2 epochs of 10 micro-batches, 2 per step on each of 2 processes: 5 steps
    assert config.train.total_steps(10, world_size=2) == math.ceil(2 * 10 / (config.train.grad_accum * 2))


def test_warmup_ratio_and_schedules() -> None:
    settings = build_config(flags={"train": {"warmup_ratio": 0.25}}).train
    assert settings.warmup(20) == 5 and build_config().train.warmup(20) == 5  # warmup_steps default
    cosine, linear, constant = (lr_lambda(10, 2, s) for s in ("cosine", "linear", "constant"))
    assert [cosine(s) for s in (0, 1)] == pytest.approx([1 / 3, 2 / 3])
    assert cosine(2) == linear(2) == constant(9) == 1.0
    assert cosine(6) == pytest.approx(0.5) and linear(6) == pytest.approx(0.5)
    assert cosine(4) > linear(4) and cosine(8) < linear(8)  # cosine stays high longer, then falls faster


def test_mix_is_seeded_weighted_and_recorded() -> None:
    mixed, provenance = load_mix(f"bundled:3,{QA}:1", limit=20, seed=5)
    again, _ = load_mix(f"bundled:3,{QA}:1", limit=20, seed=5)
    other, _ = load_mix(f"bundled:3,{QA}:1", limit=20, seed=6)
    assert [p["records"] for p in provenance] == [15, 5] and [p["weight"] for p in provenance] == [0.75, 0.25]
    assert mixed.content_hash == again.content_hash != other.content_hash
    assert len(mixed.records) == 20


@pytest.mark.parametrize("text", ["bundled", "bundled:0", "bundled:x", "bundled:1,bundled:2"])
def test_bad_mix_fails_cleanly(text: str) -> None:
    with pytest.raises(DataError):
        parse_mix(text)


def test_mix_from_yaml_list(tmp_path: Path) -> None:
    yaml_file = tmp_path / "m.yaml"
    yaml_file.write_text(
        "data:\n  mix:\n    - {source: bundled, weight: 0.5}\n    - {source: x.jsonl, weight: 0.5}\n"
    )
    assert build_config(yaml_file=yaml_file).data.mix == "bundled:0.5,x.jsonl:0.5"


def test_sweep_grid_and_unknown_key() -> None:
    axes = parse_axes(["lora.rank=8,16", "quant=4bit,16bit"])
    assert cells(axes) == [("8", "4bit"), ("8", "16bit"), ("16", "4bit"), ("16", "16bit")]
    assert cell_flags(axes, ("8", "16bit")) == {"lora": {"rank": "8"}, "quant": "16bit"}
    with pytest.raises(ConfigError, match=r"valid: quant, lora\.rank"):
        parse_axes(["lora.rnak=8"])


def test_sweep_table_has_one_row_per_cell(tmp_path: Path) -> None:
    run = {
        "trainable_parameters": 10, "train_seconds": 1.5, "train_tokens_per_second": 99.0,
        "memory": {"peak_rss_mb": 800.0, "peak_vram_mb": None}, "validation_loss": 2.5,
        "losses": [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 1.5}, {"step": 3, "loss": 2.0}],
    }  # fmt: skip
    rows = [table_row({"quant": "4bit"}, run), table_row({"quant": "16bit"}, None)]
    write_table(rows, ["quant"], tmp_path)
    with (tmp_path / "sweep.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert table[0]["peak_memory_mb"] == "800.0" and table[1]["status"] == "failed"
    assert (tmp_path / "sweep.png").stat().st_size > 0
    # initial, final, minimum and mean training loss from the history, then validation loss
    assert (
        "| 4bit | ok | 10 | 1.5 | 99.0 | 800.0 | 3.0 | 2.0 | 1.5 | 2.16667 | 2.5 |"
        in (tmp_path / "sweep.md").read_text()
    )


def test_cli_refuses_bad_quant_and_resume_without_checkpoint(tmp_path: Path, capsys) -> None:
    assert main(["--model", "smollm2-135m", "--quant", "2bit"]) == 2
    assert "quant must be one of" in capsys.readouterr().err
    assert main(["--resume", str(tmp_path)]) == 2
    assert "holds no checkpoint" in capsys.readouterr().err
    assert main(["--model", "smollm2-135m", "--sweep", "lora.rank=8,12"]) == 2  # every cell checked first
    assert "power of two" in capsys.readouterr().err


def test_sweep_passthrough_drops_selection_and_output() -> None:
    argv = ["--model", "m", "--sweep", "quant=4bit", "--output=x", "--max-steps", "2", "--sweep-dir", "d"]
    assert without_options(argv, ("--model", "--sweep", "--sweep-dir", "--output")) == ["--max-steps", "2"]
