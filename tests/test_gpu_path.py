"""The GPU path's decisions, checked on CPU with real objects: LoRA targets resolved from real
(tiny, random-weight) Phi-3 and Llama models, a real Gemma-3 processor unwrapped for training,
whole prompts kept under truncation, the family end-of-turn token, the VRAM budget, an
out-of-memory base skipped at start-up, contestant selection by flag and environment, and the
serving loader never touching Unsloth.

Run: ``python -m pytest tests/test_gpu_path.py -q``
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from finetune.data import QARecord
from finetune.gpu import estimated_vram_mb, plan_vram
from finetune.lora_targets import LoraTargetError, resolve_targets
from finetune.prompt import SYSTEM_PROMPT
from finetune.registry import MODELS, MODELS_ENV, UnknownModelError, chosen_models, get_model
from tests.conftest import SERVING_BACKEND


def skip_without_unsloth() -> None:
    """Skip unless Unsloth is installed, without importing it: its import patches transformers."""
    if importlib.util.find_spec("unsloth") is None:
        pytest.skip("setup.sh --test installs Unsloth (--no-deps) for these tests")


ROOT = Path(__file__).resolve().parent.parent
LLAMA_LAYOUT = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PHI3_LAYOUT = ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]
TINY = {
    "vocab_size": 128, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 64,
}  # fmt: skip


# --- LoRA targets (defect 3) -----------------------------------------------------------------------


def tiny_phi3() -> object:
    from transformers import Phi3Config, Phi3ForCausalLM

    return Phi3ForCausalLM(Phi3Config(**TINY, pad_token_id=0))


def tiny_llama() -> object:
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(**TINY))


@pytest.mark.parametrize("key", ["phi3", "phi3.5-mini"])
def test_phi3_resolves_every_projection_in_both_layouts(key: str) -> None:
    """Microsoft's fused layout and the split one Unsloth's 4-bit Phi-3 repos are converted to."""
    spec = get_model(key)
    assert resolve_targets(tiny_phi3(), spec.lora_roles, key) == PHI3_LAYOUT
    # The old literal names (qkv_proj, gate_up_proj) matched only o_proj/down_proj on this layout.
    assert resolve_targets(tiny_llama(), spec.lora_roles, key) == LLAMA_LAYOUT


def test_peft_puts_lora_on_every_resolved_projection_of_phi3() -> None:
    from peft import LoraConfig, get_peft_model
    from peft.tuners.lora import LoraLayer

    model = tiny_phi3()
    targets = resolve_targets(model, ("attention", "mlp"))
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=targets, task_type="CAUSAL_LM"))
    wrapped = {name.rsplit(".", 1)[-1] for name, m in peft_model.named_modules() if isinstance(m, LoraLayer)}
    assert wrapped == set(PHI3_LAYOUT)


def test_a_missing_projection_fails_the_run_with_a_clear_message() -> None:
    import torch

    model = tiny_llama()
    for layer in model.model.layers:
        layer.mlp.down_proj = torch.nn.Identity()  # no complete MLP layout left
    with pytest.raises(LoraTargetError, match=r"phi3: .* mlp projections \(found gate_proj, up_proj"):
        resolve_targets(model, ("attention", "mlp"), "phi3")
    assert resolve_targets(model, ("attention",), "phi3") == LLAMA_LAYOUT[:4]


# --- tokenizer, truncation, end of turn (defects 2, 4, 6) ------------------------------------------


@pytest.fixture(scope="module")
def smollm2_tokenizer() -> object:
    from transformers import AutoTokenizer

    from finetune.loading import convert_embedded

    spec = get_model("smollm2-135m")
    if spec.embedded is None or not spec.embedded.is_installed():
        pytest.skip(f"needs the embedded base: {spec.embedded.install_hint() if spec.embedded else ''}")
    return AutoTokenizer.from_pretrained(convert_embedded(spec))


def test_a_multimodal_processor_is_unwrapped_to_a_tokenizer_that_collates(smollm2_tokenizer: object) -> None:
    """FastModel returns a processor for MedGemma; called on text it gives nested lists."""
    from transformers import Gemma3Processor
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    from finetune.batching import collate, tokenize
    from finetune.loading import finish_tokenizer

    tokenizer = type(smollm2_tokenizer).from_pretrained(
        smollm2_tokenizer.name_or_path,
        extra_special_tokens={
            "boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>",
        },
    )  # fmt: skip
    template = tokenizer.chat_template
    tokenizer.chat_template = None  # as in Gemma-3 repos, the processor carries the template
    processor = Gemma3Processor(
        image_processor=Gemma3ImageProcessorPil(), tokenizer=tokenizer, chat_template=template
    )
    assert isinstance(processor(text="a question")["input_ids"][0], list)  # what broke collate
    unwrapped = finish_tokenizer(processor, get_model("medgemma-4b-it"))
    assert unwrapped is tokenizer and unwrapped.chat_template == template
    record = QARecord(
        "r1", "What is the normal adult resting heart rate?", "60 to 100 beats per minute.", "t"
    )
    examples = tokenize([record], unwrapped, 256, end_of_turn="<|im_end|>").examples
    assert all(isinstance(i, int) for i in examples[0].input_ids)
    assert collate(examples, 0)["input_ids"].shape[0] == 1


def test_truncation_keeps_the_whole_prompt_and_cuts_the_answer_end(smollm2_tokenizer: object) -> None:
    from finetune.batching import IGNORE_INDEX, tokenize
    from finetune.prompt import render_prompt

    tokenizer = smollm2_tokenizer
    question = "What are the long-term complications of poorly controlled type 2 diabetes?"
    prompt_ids = tokenizer(render_prompt(tokenizer, question), add_special_tokens=False)["input_ids"]
    long_answer = " ".join(["Retinopathy, nephropathy and neuropathy are common."] * 60)
    limit = len(prompt_ids) + 40
    tokenized = tokenize(
        [QARecord("long", question, long_answer, "t")], tokenizer, limit, end_of_turn="<|im_end|>"
    )
    (example,) = tokenized.examples
    assert example.input_ids[: len(prompt_ids)] == prompt_ids  # every prompt token, system text included
    assert SYSTEM_PROMPT in tokenizer.decode(example.input_ids)
    assert len(example.input_ids) == limit
    assert example.labels[: len(prompt_ids)] == [IGNORE_INDEX] * len(prompt_ids)
    assert sum(label != IGNORE_INDEX for label in example.labels) == 40


def test_a_prompt_with_no_room_for_an_answer_is_dropped_and_counted(smollm2_tokenizer: object) -> None:
    from finetune.batching import tokenize

    question = "Summarise this case. " + "The patient reports intermittent chest pain on exertion. " * 30
    tokenized = tokenize([QARecord("q", question, "Stable angina.", "t")], smollm2_tokenizer, 96)
    assert tokenized.examples == [] and tokenized.too_long == 1


def test_answers_end_with_the_family_end_of_turn_token_not_eos(smollm2_tokenizer: object) -> None:
    from finetune.batching import end_of_turn_text, tokenize

    tokenizer = smollm2_tokenizer
    spec = get_model("smollm2-135m")
    end = end_of_turn_text(tokenizer, spec)
    assert end == "<|im_end|>" != tokenizer.eos_token  # the GGUF's eos is <|im_start|>
    (example,) = tokenize(
        [QARecord("a", "What is the first-line drug for anaphylaxis?", "Intramuscular adrenaline.", "t")],
        tokenizer,
        256,
        end_of_turn=end,
    ).examples
    assert example.labels[-1] == tokenizer.convert_tokens_to_ids("<|im_end|>")


# --- VRAM budget and start-up (defect 5) -------------------------------------------------------------


def test_vram_plan_takes_models_in_order_until_the_budget_is_spent() -> None:
    specs = [get_model("qwen2.5-1.5b"), get_model("llama3-8b"), get_model("gemma3-1b")]
    need = [estimated_vram_mb(s) for s in specs]
    chosen, skipped = plan_vram(specs, free_mb=1024 + need[0] + need[2] + 100)
    assert [s.key for s in chosen] == ["qwen2.5-1.5b", "gemma3-1b"]
    assert len(skipped) == 1 and skipped[0].startswith("skipped llama3-8b: needs ~")
    assert "--models or MEDARENA_MODELS" in skipped[0]


def test_all_fourteen_models_do_not_fit_one_24_gb_gpu() -> None:
    chosen, skipped = plan_vram(MODELS, free_mb=24 * 1024)
    assert chosen and skipped and len(chosen) + len(skipped) == len(MODELS)
    assert sum(estimated_vram_mb(s) for s in chosen) <= 23 * 1024
    nothing, all_skipped = plan_vram(MODELS, free_mb=0)
    assert nothing == [] and len(all_skipped) == len(MODELS)


def test_out_of_memory_while_loading_skips_that_model_not_the_arena(tmp_path: Path) -> None:
    import torch

    from arena.serving.peft_engine import ArenaEngine

    def loader(spec: object, *, cache_dir: object = None) -> object:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    engine = ArenaEngine.start(adapters_dir=tmp_path, model_keys=["gemma3-270m"], loader=loader)
    assert engine.contestant_names() == []
    assert engine.warnings == [
        "skipped gemma3-270m: out of memory while loading (CUDA out of memory. Tried to allocate 2.00 GiB)"
    ]


def test_contestants_come_from_the_flag_else_the_environment() -> None:
    assert [s.key for s in chosen_models(["phi3", "gemma3-1b"], {})] == ["phi3", "gemma3-1b"]
    assert [s.key for s in chosen_models(None, {MODELS_ENV: "smollm2-135m, gemma3-270m"})] == [
        "smollm2-135m",
        "gemma3-270m",
    ]
    assert chosen_models(None, {}) is None and chosen_models(None, {MODELS_ENV: " "}) is None
    with pytest.raises(UnknownModelError, match="valid keys: llama3-8b"):
        chosen_models(None, {MODELS_ENV: "smollm2-135m,gpt-5"})


@pytest.mark.slow  # starts a Python child process
def test_app_rejects_an_unknown_model_before_loading_anything() -> None:
    code = "import app; app.parse_args(['--models', 'smollm2-135m,nope'])"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2
    assert "unknown model 'nope'; valid keys:" in result.stderr and "Traceback" not in result.stderr
    env_code = "import app, os; print(app.parse_args([]).models)"
    shown = subprocess.run(
        [sys.executable, "-c", env_code], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, MODELS_ENV: "gemma3-270m"},
    )  # fmt: skip
    assert shown.stdout.strip() == "['gemma3-270m']", shown.stderr[-2000:]


# --- serving never through Unsloth (defect 1) and import order (defect 7) ----------------------------


@pytest.mark.slow  # starts a Python child process
@pytest.mark.slow
def test_serving_loader_never_imports_unsloth_even_when_training_would() -> None:
    skip_without_unsloth()
    code = (
        "import sys\n"
        "from finetune.loading import load_serving_base\n"
        "base = load_serving_base('smollm2-135m')\n"
        "print(base.backend, 'unsloth' in sys.modules)\n"
    )
    env = {**os.environ, "MEDARENA_TRAIN_BACKEND": "unsloth"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == f"{SERVING_BACKEND} False"


@pytest.mark.slow  # starts a Python child process
def test_unsloth_import_order_is_enforced() -> None:
    skip_without_unsloth()
    late = "import transformers\nfrom finetune.gpu import import_unsloth_first\nimport_unsloth_first('unsloth')\n"
    result = subprocess.run(
        [sys.executable, "-c", late], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0 and "transformers imported before Unsloth" in result.stderr
    # The training entry point imports nothing Unsloth patches before it decides.
    probe = "import sys, finetune.__main__\nprint(sorted(m for m in ('transformers', 'peft', 'trl') if m in sys.modules))"
    clean = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert clean.stdout.strip() == "[]", clean.stderr[-2000:]


# --- image-text checkpoints (defect 2) --------------------------------------------------------------


def test_multimodal_checkpoint_serves_as_its_text_decoder_alone(tmp_path: Path) -> None:
    """The serving load of a MedGemma-layout checkpoint: no vision tower, decoder weights intact."""
    import torch
    from safetensors.torch import load_file

    from finetune.loading import _load_transformers_cuda
    from tests.tiny_models import build_twin

    spec = get_model("medgemma-4b-it")
    folder = build_twin(spec, tmp_path)[spec.hf_id]
    # 16bit: the weights as stored (a 4-bit load of a full-precision folder quantizes them).
    model, tokenizer = _load_transformers_cuda(str(folder), spec, "cpu", "16bit")
    assert type(model).__name__ == "Gemma3ForCausalLM"
    assert not [name for name, _ in model.named_modules() if "vision" in name or "multi_modal" in name]
    saved = load_file(folder / "model.safetensors")
    # Saved under the language_model prefix, as the MedGemma repos are.
    (key,) = [k for k in saved if k.endswith("layers.1.mlp.down_proj.weight") and "language_model" in k]
    expected = saved[key].to(torch.bfloat16)
    assert torch.equal(model.model.layers[1].mlp.down_proj.weight, expected)
    # Unsloth's text_only load names the decoder the same way, so its adapters fit this model.
    assert resolve_targets(model, ("attention", "mlp")) == LLAMA_LAYOUT
    assert tokenizer.chat_template


# --- Unsloth refusing a repository its bundled name mapper lacks (issue #19, fault 12) ------------

# What Unsloth 2026.10.9's get_model_name raises when the mapper it fetches from GitHub knows a
# name its bundled copy does not (unsloth/models/loader_utils.py); the fetch needs the network, so
# the stand-in below raises the same error from the loader's Unsloth call.
UNSLOTH_MAPPER_ERROR = (
    "Unsloth: unsloth/gemma-3-1b-it-bnb-4bit is not supported in your current Unsloth version! "
    "Please update Unsloth via:\n\npip uninstall unsloth unsloth_zoo -y\n"
)


def test_an_unsloth_mapper_refusal_is_one_sentence_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    skip_without_unsloth()
    import finetune.loading as loading

    def unsloth_refuses(*args: object, **kwargs: object) -> None:
        raise NotImplementedError(UNSLOTH_MAPPER_ERROR)

    monkeypatch.setattr(loading, "_load_unsloth", unsloth_refuses)
    monkeypatch.setenv("MEDARENA_BASE_GEMMA3_1B", "unsloth/gemma-3-1b-it-bnb-4bit")
    with pytest.raises(loading.BaseUnavailableError) as refused:
        loading.load_base("gemma3-1b", backend="unsloth")
    assert str(refused.value) == (
        "Unsloth cannot load gemma3-1b here (unsloth/gemma-3-1b-it-bnb-4bit is not supported in your "
        "current Unsloth version); upgrade Unsloth, or train with MEDARENA_TRAIN_BACKEND=transformers"
    )


@pytest.mark.slow  # builds a tiny model
@pytest.mark.parametrize(("quant", "int8"), [("8bit", True), ("16bit", False)])
def test_medgemma_keeps_its_quantization_beside_the_text_only_load(
    tmp_path: Path, quant: str, int8: bool
) -> None:
    """Issue #19 fault 9: the text-only arguments once replaced the int8 settings, while run.json said int8."""
    from finetune.loading import TEXT_ONLY_KEY_MAPPING, cuda_load_kwargs
    from tests.tiny_models import build_twin

    spec = get_model("medgemma-4b-it")
    folder = build_twin(spec, tmp_path)[spec.hf_id]  # 8bit/16bit start from the full-precision repo
    kwargs = cuda_load_kwargs(spec, str(folder), quant, "float16")
    assert kwargs["key_mapping"] == TEXT_ONLY_KEY_MAPPING and kwargs["config"].model_type == "gemma3_text"
    assert str(kwargs["dtype"]) == "torch.float16"  # a T4's type, from finetune.gpu.cuda_dtype
    quantization = kwargs.get("quantization_config")
    assert (quantization is not None and quantization.load_in_8bit) == int8
