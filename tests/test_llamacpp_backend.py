"""The llama.cpp backend on the real embedded GGUFs and the committed demo adapters.

Fast tier: the PEFT -> GGUF LoRA conversion (names, shapes, rope permutation, alpha, the cache key,
refusals). Slow tier: one backend for the module on SmolLM2's Q4_1 GGUF and Gemma-3-270M's Q4_K_M
GGUF, each with its demo adapter: an adapter changes the answer, prompts are the PEFT engine's
token for token, a battle's sides stream at the same time, a closed stream stops its generation,
a prompt reuses the KV cells it shares with its lane's last prompt, broken adapters are refused at start with one sentence, and greedy tokens agree with the PEFT
engine on the same base dequantized to fp32.

Why the agreement allows a split at a near-tie: llama.cpp multiplies the Q4_1 weights as stored,
with activations quantized to 8 bits per block for the dot products (ggml's `vec_dot_q4_1_q8_1`),
while the reference multiplies the same weights dequantized to fp32 by fp32 activations. That
rounds each logit differently by a few hundredths, which flips only steps whose top-2 margin is
that small. Measured on 8 questions x 2 rows, 16 tokens: 10 of 16 rows agree on every token; the
6 splits fall at reference margins 0.04-0.26 nats (LoRA rows at steps 1 and 6, base rows at 6-12),
so `NEAR_TIE` is 0.3. The adapter path is checked by it too: LoRA rows agree as often as base rows,
which they would not with unpermuted q/k rows or a wrong alpha (`test_an_adapter_changes_the_answer`
shows how far an adapter moves the answer).

Run: ``python -m pytest tests/test_llamacpp_backend.py -q``
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from arena.serving.common import DECODE_NICE, GenerationSettings
from arena.serving.gguf_lora import (
    CONVERTER_VERSION,
    AdapterConversionError,
    BaseArchitecture,
    converted_lora,
    gguf_tensors,
    rope_permute,
)

ROOT = Path(__file__).resolve().parent.parent
SMOLLM2, GEMMA = "smollm2-135m", "gemma3-270m"
SMOLLM2_ARCH = BaseArchitecture("llama", 9, 3)  # SmolLM2-135M: 9 query heads, 3 key/value heads
QUESTION = "What is the first-line treatment for uncomplicated hypertension?"
needs_llamacpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed"
)


def demo_adapter(model: str) -> Path:
    runs = sorted((ROOT / "adapters" / model).iterdir())
    if not runs:
        pytest.skip(f"the committed {model} demo adapter is missing")
    return runs[-1]


# --- conversion (fast) -----------------------------------------------------------------------


def test_rope_permutation_is_llama_cpps_row_order() -> None:
    # convert_hf_to_gguf.py: per head, rows [0, h/2) and [h/2, h) are interleaved (rotate-half -> pairs).
    rows = np.arange(12)[:, None] * np.ones((1, 2))
    permuted = rope_permute(rows, 2)  # 2 heads of 6 rows
    assert permuted[:, 0].tolist() == [0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11]


def test_conversion_renames_pairs_and_permutes_only_q_and_k_rows() -> None:
    from safetensors.numpy import load_file

    adapter = demo_adapter(SMOLLM2)
    tensors, alpha = gguf_tensors(adapter, SMOLLM2_ARCH)
    peft = load_file(str(adapter / "adapter_model.safetensors"))
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert alpha == config["lora_alpha"]  # llama.cpp scales by alpha / rank, as PEFT does
    assert len(tensors) == len(peft)
    prefix = "base_model.model.model.layers.0"
    q_b = peft[f"{prefix}.self_attn.q_proj.lora_B.weight"]
    assert np.array_equal(tensors["blk.0.attn_q.weight.lora_b"], rope_permute(q_b, 9))
    assert np.array_equal(
        tensors["blk.0.attn_k.weight.lora_b"],
        rope_permute(peft[f"{prefix}.self_attn.k_proj.lora_B.weight"], 3),
    )
    assert np.array_equal(
        tensors["blk.0.attn_q.weight.lora_a"], peft[f"{prefix}.self_attn.q_proj.lora_A.weight"]
    )
    assert np.array_equal(
        tensors["blk.0.attn_v.weight.lora_b"], peft[f"{prefix}.self_attn.v_proj.lora_B.weight"]
    )
    # Gemma-3's GGUF keeps HF's row order: nothing is permuted.
    unpermuted, _ = gguf_tensors(adapter, BaseArchitecture("gemma3", 9, 3))
    assert np.array_equal(unpermuted["blk.0.attn_q.weight.lora_b"], q_b)


def test_the_cache_is_keyed_by_content_and_converter_version(tmp_path: Path) -> None:
    import gguf

    adapter = tmp_path / "run"
    shutil.copytree(demo_adapter(SMOLLM2), adapter)
    first, digest = converted_lora(adapter, SMOLLM2_ARCH, tmp_path / "cache")
    assert f"gguf-lora-v{CONVERTER_VERSION}" in str(first)
    stamp = first.stat().st_mtime_ns
    assert converted_lora(adapter, SMOLLM2_ARCH, tmp_path / "cache") == (first, digest)
    assert first.stat().st_mtime_ns == stamp  # converted once
    fields = gguf.GGUFReader(str(first)).fields
    assert fields["medarena.adapter_sha256"].contents() == digest
    assert fields["general.type"].contents() == "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "lora_alpha": 32}))
    second, _ = converted_lora(adapter, SMOLLM2_ARCH, tmp_path / "cache")
    assert second != first and gguf.GGUFReader(str(second)).fields["adapter.lora.alpha"].contents() == 32


@pytest.mark.parametrize(
    ("change", "sentence"),
    [
        ({"use_dora": True}, "DoRA adapters have no llama.cpp equivalent"),
        ({"rank_pattern": {"q_proj": 16}}, "per-module rank or alpha patterns are not supported"),
        ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
    ],
)
def test_adapters_llama_cpp_cannot_hold_are_refused_in_one_sentence(
    tmp_path: Path, change: dict, sentence: str
) -> None:
    adapter = tmp_path / "run"
    shutil.copytree(demo_adapter(SMOLLM2), adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(AdapterConversionError, match=sentence) as raised:
        gguf_tensors(adapter, SMOLLM2_ARCH)
    assert "\n" not in str(raised.value)


def test_another_models_adapter_is_refused_by_its_shapes() -> None:
    with pytest.raises(AdapterConversionError, match="do not split into this base's 3 heads"):
        gguf_tensors(demo_adapter(GEMMA), SMOLLM2_ARCH)


# --- the backend (slow) ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def adapters_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both demo adapters, a truncated copy, and the Gemma-3 adapter filed under SmolLM2."""
    root = tmp_path_factory.mktemp("llamacpp-adapters")
    for model in (SMOLLM2, GEMMA):
        shutil.copytree(demo_adapter(model), root / model / demo_adapter(model).name)
    corrupt = root / SMOLLM2 / "20990101-000000"
    shutil.copytree(demo_adapter(SMOLLM2), corrupt)
    weights = corrupt / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    mismatched = root / SMOLLM2 / "20990101-000001"  # valid files, another base's shapes, no run.json
    shutil.copytree(demo_adapter(GEMMA), mismatched)
    (mismatched / "run.json").unlink()
    return root


@pytest.fixture(scope="module")
def backend(adapters_root: Path, tmp_path_factory: pytest.TempPathFactory):
    from arena.serving.backends import BackendOptions, start_backend

    options = BackendOptions(
        kind="llamacpp", adapters_dir=adapters_root, model_keys=(SMOLLM2, GEMMA), adapter_selection="all"
    )
    backend = start_backend(options)
    yield backend
    backend.close()


def named(backend, model: str, kind: str) -> str:
    display = {SMOLLM2: "SmolLM2", GEMMA: "Gemma"}[model]
    return next(n for n in backend.contestant_names() if n.startswith(display) and kind in n)


@needs_llamacpp
@pytest.mark.slow
def test_broken_or_mismatched_adapters_are_refused_at_start_in_one_sentence(backend) -> None:
    assert backend.kind == "llamacpp"
    assert len(backend.contestant_names()) == 4, backend.contestant_names()  # two bases, two adapters
    refused = [w for w in backend.warnings if "20990101-000001" in w]
    assert refused and refused[0].startswith(f"refused adapter {SMOLLM2}/20990101-000001: its self_attn")
    assert "\n" not in refused[0]
    assert any(
        f"{SMOLLM2}/20990101-000000: adapter_model.safetensors cannot be read" in w for w in backend.warnings
    )


@needs_llamacpp
@pytest.mark.slow
@pytest.mark.parametrize("model", [SMOLLM2, GEMMA])
def test_prompts_are_the_peft_engines_token_for_token(backend, model: str) -> None:
    from transformers import AutoTokenizer

    from finetune.loading import convert_embedded
    from finetune.prompt import render_prompt
    from finetune.registry import get_model

    tokenizer = AutoTokenizer.from_pretrained(convert_embedded(get_model(model)))
    expected = tokenizer(render_prompt(tokenizer, QUESTION), add_special_tokens=False)["input_ids"]
    assert backend.prompt_ids(named(backend, model, "base"), QUESTION) == expected


@needs_llamacpp
@pytest.mark.slow
@pytest.mark.parametrize("model", [SMOLLM2, GEMMA])
def test_an_adapter_changes_the_answer(backend, model: str) -> None:
    settings = GenerationSettings(max_new_tokens=24)
    plain = backend.answer_ids(named(backend, model, "· base ·"), QUESTION, settings)
    tuned = backend.answer_ids(named(backend, model, "LoRA"), QUESTION, settings)
    assert plain and tuned and plain != tuned


@needs_llamacpp
@pytest.mark.slow
def test_a_battle_streams_both_sides_at_once_with_telemetry(backend) -> None:
    adapter, base = named(backend, SMOLLM2, "LoRA"), named(backend, GEMMA, "· base ·")
    clicked = time.perf_counter()
    growth: list[str] = []
    previous, final = ("", ""), None
    for update in backend.stream_pair(
        QUESTION,
        adapter,
        base,
        GenerationSettings(max_new_tokens=32, min_new_tokens=32),
        requested_at=clicked,
    ):
        current = (update.a.text, update.b.text)
        growth += [side for side, old, new in zip("ab", previous, current, strict=True) if new != old]
        previous, final = current, update
    assert final is not None and final.finished and not (final.a.error or final.b.error)
    # Two lanes decode together: each side grew while the other was still growing.
    assert growth.index("b") < len(growth) - growth[::-1].index("a") - 1
    assert growth.index("a") < len(growth) - growth[::-1].index("b") - 1
    for state in (final.a, final.b):
        telemetry = state.telemetry
        assert telemetry is not None and telemetry.output_tokens == 32 and telemetry.tokens_per_s > 0
        assert telemetry.first_token_s >= telemetry.ttft_s and telemetry.device == "cpu"
    # Memory is the contestant's 4-bit weights (SmolLM2 Q4_1 ~ 90 MB, Gemma Q4_K_M ~ 250 MB) + adapter.
    assert 50 < final.a.telemetry.memory_mb < 150 < final.b.telemetry.memory_mb < 400


@needs_llamacpp
@pytest.mark.slow
def test_lanes_decode_below_the_apps_priority(backend) -> None:
    # Each lane's decode thread (and the ggml workers it starts) runs DECODE_NICE steps nicer than
    # the app, so the server thread gets the CPU when a streamed update is due.
    import psutil

    ours = os.getpriority(os.PRIO_PROCESS, 0)
    lanes = [thread for thread in threading.enumerate() if thread.name.startswith("medarena-llamacpp-")]
    assert len(lanes) >= len(backend.contestant_names())  # one lane per contestant
    for lane in lanes:
        assert os.getpriority(os.PRIO_PROCESS, lane.native_id) >= ours + DECODE_NICE > ours
    # ggml's worker threads, started by a lane, inherit its niceness in full: no thread runs at
    # a priority between the app's and the decoders'
    for thread in psutil.Process().threads():
        assert not ours < os.getpriority(os.PRIO_PROCESS, thread.id) < ours + DECODE_NICE


@needs_llamacpp
@pytest.mark.slow
def test_a_closed_stream_stops_its_generation_and_frees_its_sequence(backend) -> None:
    from arena.serving.backends import stream_many

    name = named(backend, SMOLLM2, "LoRA")
    stream = backend.stream_pair(
        QUESTION, name, name, GenerationSettings(max_new_tokens=512, min_new_tokens=512)
    )
    next(stream)
    stream.close()  # the clinician left
    lane = backend._lanes[name]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not lane._pending.empty():
        time.sleep(0.05)
    # Every sequence is free again: eight more battles on that contestant all fit and finish.
    results = stream_many(backend, [(QUESTION, name, name)] * 8, GenerationSettings(max_new_tokens=8))
    assert len(results) == 8 and all(r.final.finished and not r.final.a.error for r in results)


NEAR_TIE = 0.3  # nats; see the module docstring


def fp32_loader(spec, cache_dir=None):
    """The PEFT engine's base as the embedded GGUF dequantized to fp32 (no NF4)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from finetune.loading import LoadedBase, convert_embedded

    folder = convert_embedded(spec, cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    return LoadedBase(spec, model, tokenizer, "fp32-cpu", "fp32", "cpu", 0.0)


@needs_llamacpp
@pytest.mark.slow
def test_greedy_tokens_agree_with_the_peft_engine_on_the_dequantized_base(backend, tmp_path: Path) -> None:
    """SmolLM2 base and adapter rows, 6 questions, 16 greedy tokens each, against PEFT in fp32.

    A split is allowed only where the reference's own top-2 margin is a near-tie (< NEAR_TIE),
    and most rows must agree on every token."""
    from arena.serving.peft_engine import ArenaEngine
    from finetune.data import load_dataset_source
    from tests.test_vllm_backend import reference

    questions = [QUESTION] + [r.question for r in load_dataset_source("bundled").records[:5]]
    root = tmp_path / "adapters"
    shutil.copytree(demo_adapter(SMOLLM2), root / SMOLLM2 / demo_adapter(SMOLLM2).name)
    peft = ArenaEngine.start(
        adapters_dir=root, model_keys=[SMOLLM2], adapter_selection="all", loader=fp32_loader
    )
    settings = GenerationSettings(max_new_tokens=16, min_new_tokens=16)
    full_agreement, splits = 0, []
    try:
        for kind in ("LoRA", "· base ·"):
            ours = named(backend, SMOLLM2, kind)
            theirs = next(n for n in peft.contestant_names() if kind in n)
            for question in questions:
                expected, margins = peft.compute(reference, peft, theirs, question, settings)
                got = backend.answer_ids(ours, question, settings)[:16]
                split = next((i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b), 16)
                full_agreement += split == 16
                if split < 16:
                    splits.append((kind, split, round(margins[split], 3)))
                    assert margins[split] < NEAR_TIE, (kind, question, split, margins[split])
    finally:
        peft.close()
    print("splits (kind, step, reference margin):", splits)
    assert full_agreement >= len(questions), (full_agreement, splits)


@needs_llamacpp
@pytest.mark.slow
@pytest.mark.parametrize("model", [SMOLLM2, GEMMA])
def test_a_prompt_reuses_the_cells_it_shares_with_the_lanes_last_prompt(backend, model: str) -> None:
    """A lane keeps the KV cells of the last prompt it prefilled; a new answer copies those of the
    tokens its prompt starts with and prefills only the rest. That the copied cells give the
    tokens a full prefill gives is `test_greedy_tokens_agree_with_the_peft_engine_on_the_dequantized_base`:
    its questions share the system prompt, so each after the first answers from copied cells.
    (Not to the bit: attention sums over the cells in the order they lie in the cache, so where
    an answer's cells lie moves rounding, as it already did between battles decoded together.)"""
    import queue

    name = named(backend, model, "· base ·")

    def answer(question: str):
        events: queue.Queue = queue.Queue()
        settings = GenerationSettings(max_new_tokens=16, min_new_tokens=16)
        request = backend._submit("a", name, question, settings, None, False, events)
        while (event := events.get(timeout=120))[0] != "done":
            assert event[0] != "error", event
        return request

    first = answer(QUESTION)
    again = answer(QUESTION)  # every cell but the last prompt token's comes from the kept prompt
    assert again.reused == len(again.prompt) - 1 and len(again.generated) == len(first.generated) == 16
    other = answer("How is iron-deficiency anaemia diagnosed?")
    shared = next(i for i, (a, b) in enumerate(zip(other.prompt, again.prompt, strict=False)) if a != b)
    assert 0 < other.reused == shared < len(other.prompt)  # the system prompt and template, not the question
