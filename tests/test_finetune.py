"""End-to-end tests of `python -m finetune` with the real smollm2-135m base (NF4 on CPU):
one short training run shared by the module, its adapter folder and provenance, the adapter
loaded back onto the 4-bit base, and bad input that must fail in one line and leave nothing behind.

Run: ``python -m pytest tests/test_finetune.py -q``  (about two minutes on 2 CPU cores)
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from finetune.config import build_config
from finetune.data import load_dataset_source
from tests.conftest import TRAINING_BACKEND

# Every test here runs `python -m finetune` in a child process (the fast option checks are in
# test_finetune_options.py).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
MODEL = "smollm2-135m"
STEPS = 12
# The demo preset (lr 1e-3, rank 8) on 40 bundled records, short sequences, 4 examples a step:
# three passes over the 32 training records, enough for the loss to fall clearly.
RUN_FLAGS = {
    "data": {"limit": 40},
    "train": {"max_steps": STEPS, "max_seq_length": 192, "grad_accum": 2},
}
CLI_FLAGS = [
    "--preset", "demo", "--data.limit", "40", "--train.max_seq_length", "192",
    "--train.grad_accum", "2", "--max-steps", str(STEPS),
]  # fmt: skip
ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
RUN_FILES = {"adapter_model.safetensors", "adapter_config.json", "run.json", "loss.png", "README.md"}
PROVENANCE_KEYS = {
    "run_id", "model_key", "display_name", "base_id", "backend", "quantization", "config",
    "optimizer_used", "lora_target_modules", "data", "git_commit", "started_at", "ended_at",
    "train_seconds", "train_tokens", "train_tokens_per_second", "trainable_parameters",
    "total_parameters", "memory", "losses", "final_train_loss", "validation_loss",
    "max_seq_length", "end_of_turn",
}  # fmt: skip
# LoRA r=8 on q,k,v,o,gate,up,down of 30 SmolLM2 blocks (hidden 576, kv 192, MLP 1536):
# 8 x (576+576 + 2x(576+192) + 576+576 + 3x(576+1536)) per block.
SMOLLM2_RANK8_PARAMETERS = 30 * 8 * (1152 + 2 * 768 + 1152 + 3 * 2112)


def finetune(*args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "finetune", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def tree(folder: Path) -> set[str]:
    """Every path under folder (hidden ones included), relative to it."""
    return {str(path.relative_to(folder)) for path in folder.rglob("*")} if folder.exists() else set()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """(output root, completed process) of one real training run on a slice of the bundled set."""
    output = tmp_path_factory.mktemp("adapters")
    result = finetune("--model", MODEL, "--output", str(output), *CLI_FLAGS)
    assert result.returncode == 0, result.stderr[-3000:]
    return output, result


@pytest.fixture(scope="module")
def run_dir(trained: tuple[Path, subprocess.CompletedProcess[str]]) -> Path:
    output, _ = trained
    (folder,) = [path for path in (output / MODEL).iterdir() if not path.name.startswith(".")]
    return folder


@pytest.fixture(scope="module")
def run(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


@pytest.mark.slow
def test_run_writes_a_complete_adapter_folder(
    trained: tuple[Path, subprocess.CompletedProcess[str]], run_dir: Path
) -> None:
    output, result = trained
    assert re.fullmatch(r"\d{8}-\d{6}(-\d+)?", run_dir.name)
    assert {path.name for path in run_dir.iterdir()} == RUN_FILES
    assert tree(output) == {MODEL, f"{MODEL}/{run_dir.name}"} | {
        f"{MODEL}/{run_dir.name}/{n}" for n in RUN_FILES
    }
    assert f"adapter written: {run_dir}" in result.stdout
    assert (run_dir / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    adapter_config = json.loads((run_dir / "adapter_config.json").read_text())
    assert (adapter_config["r"], adapter_config["lora_alpha"]) == (8, 16)
    assert set(adapter_config["target_modules"]) == set(ALL_PROJECTIONS)
    card = (run_dir / "README.md").read_text()
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card
    assert f"LoRA run {run_dir.name}" in card and "not for medical advice" in card


@pytest.mark.slow
def test_run_json_records_full_provenance(run: dict, run_dir: Path) -> None:
    assert set(run) >= PROVENANCE_KEYS
    assert run["run_id"] == run_dir.name
    assert run["model_key"] == MODEL
    assert run["base_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert (run["backend"], run["quantization"]) == (TRAINING_BACKEND, "nf4")
    expected = build_config(preset="demo", flags={**RUN_FLAGS, "output_dir": str(run_dir.parent.parent)})
    assert run["config"] == expected.to_dict()
    data = run["data"]
    assert data["source"] == "bundled" and data["kind"] == "free_text"
    assert data["content_hash"] == load_dataset_source("bundled", limit=40).content_hash
    assert data["split_sizes"] == {"train": 32, "validation": 4, "test": 4}
    assert data["cleaning"] == {"read": 193, "kept": 193, "dropped": {}, "too_long_for_max_seq_length": 0}
    assert run["lora_target_modules"] == ALL_PROJECTIONS  # resolved from the loaded model
    assert (run["max_seq_length"], run["end_of_turn"]) == (192, "<|im_end|>")
    assert "git_commit" in run and (
        run["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", run["git_commit"])
    )
    started, ended = datetime.fromisoformat(run["started_at"]), datetime.fromisoformat(run["ended_at"])
    assert started < ended
    assert 0 < run["train_seconds"] < (ended - started).total_seconds()
    assert run["train_tokens"] > 0
    assert run["train_tokens_per_second"] == pytest.approx(
        run["train_tokens"] / run["train_seconds"], rel=0.01
    )
    assert run["trainable_parameters"] == SMOLLM2_RANK8_PARAMETERS
    assert run["total_parameters"] > run["trainable_parameters"]
    assert run["memory"]["peak_rss_mb"] > 100
    assert [point["step"] for point in run["losses"]] == list(range(1, STEPS + 1))
    assert run["final_train_loss"] == run["losses"][-1]["loss"]
    assert math.isfinite(run["validation_loss"]) and run["validation_loss"] > 0


@pytest.mark.slow
def test_loss_goes_down(run: dict) -> None:
    losses = [point["loss"] for point in run["losses"]]
    assert all(math.isfinite(loss) for loss in losses)
    # Means over three steps each: one step's loss depends on which random batch it drew.
    first_three, last_three = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last_three < first_three - 0.3, losses


@pytest.mark.slow
def test_adapter_loads_back_onto_the_4bit_base_and_changes_the_logits(run_dir: Path) -> None:
    import torch
    from peft import PeftModel

    from finetune.loading import load_base
    from finetune.prompt import render_prompt

    # The plain reference comes from a second copy of the base. Wrapping a base that has already
    # run an eval-mode forward on CPU is not comparable: bitsandbytes repacks NF4 weights for its
    # AVX512-BF16 kernel on that first forward, and PEFT's wrap resets the packing flag, so the
    # weights get packed twice (top tokens agree, logits drift ~0.5). The arena and evaluation
    # attach adapters before any forward, which is the order tested here.
    reference = load_base(MODEL)
    base = load_base(MODEL)
    prompt = render_prompt(base.tokenizer, "What is the first-line treatment for uncomplicated hypertension?")
    inputs = base.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        plain = reference.model(**inputs).logits[0, -1]
        tuned = PeftModel.from_pretrained(base.model, str(run_dir))
        tuned.eval()
        adapted = tuned(**inputs).logits[0, -1]
        with tuned.disable_adapter():
            disabled = tuned(**inputs).logits[0, -1]
    assert "Linear4bit" in type(tuned.get_base_model().model.layers[0].self_attn.q_proj.base_layer).__name__
    assert (adapted - plain).abs().max().item() > 0.05
    torch.testing.assert_close(disabled, plain)


@pytest.mark.slow
def test_second_run_gets_a_new_folder_and_leaves_the_first_alone(
    trained: tuple[Path, subprocess.CompletedProcess[str]], run_dir: Path
) -> None:
    output, _ = trained
    before = {name: file_digest(run_dir / name) for name in RUN_FILES}
    result = finetune(
        "--model", MODEL, "--output", str(output), "--max-steps", "1", "--data.limit", "12",
        "--train.max_seq_length", "128", "--train.grad_accum", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(path.name for path in (output / MODEL).iterdir())
    assert len(runs) == 2 and run_dir.name in runs
    assert not [name for name in runs if name.startswith(".")]
    assert {name: file_digest(run_dir / name) for name in RUN_FILES} == before
    (second,) = [name for name in runs if name != run_dir.name]
    assert json.loads((output / MODEL / second / "run.json").read_text())["run_id"] == second


# --- bad input: non-zero exit, one clear line on stderr, nothing left behind ----------------------------


def assert_clean_failure(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("error: ")
    for fragment in fragments:
        assert fragment in line, line
    return line


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def earlier_output(tmp_path: Path) -> Path:
    """An output root that already holds one run, which a failing run must leave exactly as it was."""
    output = tmp_path / "adapters"
    earlier = output / MODEL / "20250101-000000"
    earlier.mkdir(parents=True)
    write(earlier / "run.json", "{}")
    return output


@pytest.mark.parametrize(
    ("case", "args", "fragments"),
    [
        ("unknown model", ["--model", "nope"], ["unknown model 'nope'", "smollm2-135m"]),
        ("missing data file", ["--data", "{tmp}/absent.jsonl"], ["absent.jsonl does not exist"]),
        ("garbage data file", ["--data", "{tmp}/garbage.jsonl"], ["no usable records", "3 malformed"]),
        ("empty after cleaning", ["--data", "{tmp}/short.jsonl"], ["no usable records", "2 question length"]),
        (
            "wrong config type",
            ["--train.learning_rate", "abc"],
            ["train.learning_rate must be of type float"],
        ),
        ("out of range", ["--train.max_seq_length", "10"], ["train.max_seq_length must be in [64, 32768]"]),
        ("unknown preset", ["--preset", "turbo"], ["unknown preset 'turbo'"]),
        ("bad yaml", ["--config", "{tmp}/bad.yaml"], ["unknown train setting(s) ['epoch']"]),
    ],
)
def test_bad_input_fails_cleanly(
    case: str, args: list[str], fragments: list[str], tmp_path: Path, earlier_output: Path
) -> None:
    write(tmp_path / "garbage.jsonl", "not json\n[1, 2]\n{broken\n")
    write(
        tmp_path / "short.jsonl", '{"question": "Why?", "answer": "a"}\n{"question": "Hm?", "answer": "b"}\n'
    )
    write(tmp_path / "bad.yaml", "train:\n  epoch: 3\n")
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    if "--model" not in args:
        args = ["--model", MODEL, *args]
    before = tree(earlier_output)
    result = finetune(*args, "--output", str(earlier_output), "--max-steps", "1")
    assert_clean_failure(result, *fragments)
    assert tree(earlier_output) == before, case


def test_failure_after_the_output_check_leaves_no_new_folders(tmp_path: Path) -> None:
    # The output root does not exist yet: the writability check must not leave it (or the model folder) behind.
    output = tmp_path / "fresh" / "adapters"
    result = finetune("--model", MODEL, "--data", str(tmp_path / "absent.jsonl"), "--output", str(output))
    assert_clean_failure(result, "does not exist")
    assert not (tmp_path / "fresh").exists()
    assert list(tmp_path.iterdir()) == []


def test_output_under_a_regular_file_is_not_writable(tmp_path: Path) -> None:
    # chmod cannot stop root from writing; a path below a regular file fails for every user.
    blocker = write(tmp_path / "afile", "not a folder")
    result = finetune("--model", MODEL, "--max-steps", "1", "--output", str(blocker / "sub"))
    assert_clean_failure(result, f"output folder {blocker / 'sub' / MODEL} is not writable")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["afile"]
    assert blocker.read_text() == "not a folder"


def test_base_that_cannot_load_here_says_what_to_do(tmp_path: Path, earlier_output: Path) -> None:
    before = tree(earlier_output)
    result = finetune("--model", "llama3-8b", "--max-steps", "1", "--output", str(earlier_output))
    line = assert_clean_failure(
        result, "llama3-8b", "pip install 'medarena[gpu]'", "unsloth/llama-3-8b-Instruct-bnb-4bit"
    )
    assert line.count(". ") == 0, "one sentence"
    assert tree(earlier_output) == before
