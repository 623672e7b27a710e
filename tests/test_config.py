"""Tests for finetune/config.py: defaults, presets, YAML and flag overrides in that order,
and ConfigError messages that name the offending field.

Run: ``python -m pytest tests/test_config.py -q``
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from finetune.__main__ import flag_overrides, parse_args
from finetune.config import (
    PRESETS,
    ConfigError,
    FinetuneConfig,
    LoraSettings,
    TrainSettings,
    build_config,
    cli_fields,
)


def write_yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_valid_and_match_the_seed_recipe() -> None:
    config = build_config()
    assert config == FinetuneConfig()
    lora = config.lora
    assert (lora.rank, lora.alpha, lora.dropout, lora.target) == (16, 32, 0.05, "all")
    assert (config.train.batch_size, config.train.grad_accum, config.train.max_steps) == (2, 4, 60)
    assert config.train.learning_rate == 2e-4
    assert config.train.optimizer == "adamw_8bit"
    assert config.train.gradient_checkpointing is False
    assert config.data.source == "bundled" and config.data.limit is None
    assert config.output_dir == "adapters"
    assert config.to_dict()["train"]["max_seq_length"] is None  # resolved per device:
    assert config.train.seq_length(on_cuda=True) == 2048  # what the seed notebooks train with
    assert config.train.seq_length(on_cuda=False) == 512
    assert config.prompt.thinking is False  # for every model alike


def test_seq_length_flag_overrides_the_device_default_and_none_restores_it() -> None:
    assert build_config(flags={"train": {"max_seq_length": "1024"}}).train.seq_length(on_cuda=True) == 1024
    assert build_config(preset="demo").train.seq_length(on_cuda=True) == 256  # CPU presets keep theirs
    assert (
        build_config(preset="demo", flags={"train": {"max_seq_length": "none"}}).train.max_seq_length is None
    )
    assert build_config(flags={"prompt": {"thinking": "true"}}).prompt.thinking is True


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        build_config().train.max_steps = 3  # type: ignore[misc]


def test_demo_preset() -> None:
    config = build_config(preset="demo")
    assert config.train.learning_rate == 1e-3
    assert config.train.max_steps == 40
    assert config.train.warmup_steps == 3
    assert config.train.max_seq_length == 256
    assert (config.lora.rank, config.lora.alpha) == (8, 16)
    # Untouched settings keep their defaults.
    assert config.train.batch_size == 2 and config.data == FinetuneConfig().data
    assert set(PRESETS) == {"default", "demo"}


def test_unknown_preset() -> None:
    with pytest.raises(ConfigError, match="unknown preset 'fast'; valid: default, demo"):
        build_config(preset="fast")


def test_yaml_overrides_defaults(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path,
        "lora:\n  rank: 4\n  target: attention\ntrain:\n  learning_rate: 5.0e-4\n  max_steps: 7\n"
        "data:\n  source: bundled-mcq\n  limit: 30\noutput_dir: elsewhere\n",
    )
    config = build_config(yaml_file=path)
    assert config.lora.rank == 4 and config.lora.target == "attention"
    assert config.lora.alpha == 32  # not in the file
    assert config.train.learning_rate == 5e-4 and config.train.max_steps == 7
    assert config.data.source == "bundled-mcq" and config.data.limit == 30
    assert config.output_dir == "elsewhere"


def test_yaml_beats_preset_and_flags_beat_yaml(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "train:\n  max_steps: 7\n  learning_rate: 5.0e-4\n")
    config = build_config(
        preset="demo", yaml_file=path, flags={"train": {"max_steps": "3"}, "lora": {"rank": "2"}}
    )
    assert config.train.max_steps == 3  # flag over YAML
    assert config.train.learning_rate == 5e-4  # YAML over preset
    assert config.train.max_seq_length == 256  # preset over default
    assert config.lora.rank == 2


def test_command_line_flags_are_typed(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "train:\n  max_steps: 7\n")
    args = parse_args(
        [
            "--model", "smollm2-135m", "--config", str(path), "--max-steps", "9",
            "--train.learning_rate", "1e-3", "--train.group_by_length", "false",
            "--data.limit", "none", "--data", "bundled-mcq", "--output", str(tmp_path / "out"),
        ]
    )  # fmt: skip
    config = build_config(preset=args.preset, yaml_file=args.config, flags=flag_overrides(args))
    assert config.train.max_steps == 9
    assert config.train.learning_rate == 1e-3
    assert config.train.group_by_length is False
    assert config.data.limit is None
    assert config.data.source == "bundled-mcq"
    assert config.output_dir == str(tmp_path / "out")


def test_every_field_has_a_flag() -> None:
    flags = {flag for flag, _section, _field in cli_fields()}
    expected = {f"lora.{f.name}" for f in dataclasses.fields(LoraSettings)} | {
        f"train.{f.name}" for f in dataclasses.fields(TrainSettings)
    }
    assert expected <= flags
    assert {"data.source", "data.limit", "data.split_seed"} <= flags


@pytest.mark.parametrize(
    ("flags", "field", "detail"),
    [
        ({"train": {"learning_rate": "abc"}}, "train.learning_rate", "must be of type float, got 'abc'"),
        ({"train": {"max_steps": "1.5"}}, "train.max_steps", "must be of type int"),
        ({"train": {"max_steps": 2.5}}, "train.max_steps", "must be of type int"),
        ({"train": {"batch_size": True}}, "train.batch_size", "must be of type int"),
        ({"train": {"group_by_length": "maybe"}}, "train.group_by_length", "must be of type bool"),
        ({"lora": {"rank": None}}, "lora.rank", "must not be empty"),
    ],
)
def test_wrong_type_names_the_field(flags: dict, field: str, detail: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_config(flags=flags)
    assert str(caught.value).startswith(field)
    assert detail in str(caught.value)


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        ({"train": {"learning_rate": 0}}, "train.learning_rate"),
        ({"train": {"learning_rate": "1.5"}}, "train.learning_rate"),
        ({"train": {"max_steps": 0}}, "train.max_steps"),
        ({"train": {"batch_size": -1}}, "train.batch_size"),
        ({"train": {"max_seq_length": 32}}, "train.max_seq_length"),
        ({"data": {"min_answer_chars": 50, "max_answer_chars": 10}}, "data.min_answer_chars"),
        ({"train": {"optimizer": "sgd"}}, "train.optimizer"),
        ({"train": {"lr_scheduler": "step"}}, "train.lr_scheduler"),
        ({"lora": {"rank": 0}}, "lora.rank"),
        ({"lora": {"dropout": 1.0}}, "lora.dropout"),
        ({"lora": {"target": "mlp"}}, "lora.target"),
        ({"data": {"limit": 2}}, "data.limit"),
        ({"data": {"source": " "}}, "data.source"),
    ],
)
def test_out_of_range_names_the_field(flags: dict, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_config(flags=flags)
    assert str(caught.value).startswith(field)


def test_unknown_section_and_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown config section\(s\) \['optim'\]"):
        build_config(flags={"optim": {"lr": 1}})
    with pytest.raises(ConfigError) as caught:
        build_config(yaml_file=write_yaml(tmp_path, "train:\n  epoch: 3\n"))
    assert "unknown train setting(s) ['epoch']" in str(caught.value)
    assert "max_steps" in str(caught.value)  # the valid names are listed


def test_bad_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        build_config(yaml_file=tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        build_config(yaml_file=write_yaml(tmp_path, "train: [unclosed\n"))
    with pytest.raises(ConfigError, match="must hold a mapping"):
        build_config(yaml_file=write_yaml(tmp_path, "- just\n- a list\n"))
    with pytest.raises(ConfigError, match="config section train must be a mapping"):
        build_config(yaml_file=write_yaml(tmp_path, "train: 5\n"))
    assert build_config(yaml_file=write_yaml(tmp_path, "")) == FinetuneConfig()
