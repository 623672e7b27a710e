"""Export: refusals (fast) and a GGUF that reloads and answers like the merged model (slow).

python3 -m pytest tests/test_export.py -q
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from finetune.export import ExportError, main, read_run
from finetune.gguf_export import GGUFExportError, check_gguf_type, modelfile

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted((ROOT / "adapters" / "smollm2-135m").glob("*/run.json"))


@pytest.fixture
def run_copy(tmp_path: Path) -> Path:
    if not COMMITTED:
        pytest.skip("no committed smollm2-135m adapter under adapters/")
    target = tmp_path / "run"
    shutil.copytree(COMMITTED[-1].parent, target)
    return target


def test_refuses_a_folder_without_run_json(tmp_path: Path, capsys) -> None:
    with pytest.raises(ExportError, match=r"no run\.json"):
        read_run(tmp_path)
    assert main([str(tmp_path), "--merged"]) == 2
    assert "no run.json" in capsys.readouterr().err


def test_refuses_an_adapter_trained_on_another_base(run_copy: Path) -> None:
    config = json.loads((run_copy / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "/root/.cache/medarena/bases/gemma3-270m"
    (run_copy / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ExportError, match="wrong base"):
        read_run(run_copy)


def test_unknown_gguf_type_lists_valid_ones(run_copy: Path, capsys) -> None:
    with pytest.raises(GGUFExportError, match="valid types: f32, f16, q8_0, q4_k_m"):
        check_gguf_type("q3_xl")
    assert main([str(run_copy), "--gguf", "q3_xl"]) == 2
    assert "unknown GGUF type 'q3_xl'" in capsys.readouterr().err


def test_q4_k_m_without_llama_cpp_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import finetune.gguf_export as gguf_export

    monkeypatch.setattr(gguf_export, "llama_cpp_installed", lambda: False)
    with pytest.raises(GGUFExportError, match=r"pip install llama-cpp-python.*llama-quantize"):
        check_gguf_type("q4_k_m")
    assert check_gguf_type("q8_0") == "q8_0"  # the gguf package's own types need no llama.cpp


def test_modelfile_carries_system_prompt_template_and_stops() -> None:
    from finetune.prompt import SYSTEM_PROMPT

    text = modelfile("m.gguf", "chatml", SYSTEM_PROMPT, ["<|im_end|>", "<|im_end|>"])
    assert text.startswith("FROM ./m.gguf\n")
    assert f'SYSTEM """{SYSTEM_PROMPT}"""' in text
    assert "<|im_start|>assistant\n{{ .Response }}" in text
    assert text.count('PARAMETER stop "<|im_end|>"') == 1


def _greedy(model, tokenizer, prompt: str, tokens: int = 16) -> list[int]:
    import torch

    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
    return out[0, ids.shape[1] :].tolist()


@pytest.mark.slow
def test_gguf_reloads_and_matches_merged_greedy_16_tokens(run_copy: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from finetune.prompt import render_prompt

    out = tmp_path / "export"
    assert main([str(run_copy), "--merged", "--gguf", "f16", "--out", str(out)]) == 0
    record = json.loads((out / "merged" / "export.json").read_text())
    assert record["model_key"] == "smollm2-135m" and record["dtype"] == "float16"
    assert len(record["adapter_sha256"]) == 64
    gguf = next((out / "gguf").glob("*.gguf"))
    assert f"FROM ./{gguf.name}" in (out / "gguf" / "Modelfile").read_text()

    merged = AutoModelForCausalLM.from_pretrained(out / "merged", dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(out / "merged")
    reloaded = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    prompt = render_prompt(tokenizer, "What are the early symptoms of type 2 diabetes?")
    expected = _greedy(merged, tokenizer, prompt)
    assert _greedy(reloaded, tokenizer, prompt) == expected
    # The export is the adapter's model, not the plain base: the merge changed the weights.
    lm_name = "model.layers.0.self_attn.q_proj.weight"
    base = AutoModelForCausalLM.from_pretrained(record["base_source"], dtype=torch.float32)
    assert not torch.equal(base.state_dict()[lm_name].half(), merged.state_dict()[lm_name].half())


@pytest.mark.slow
def test_q4_k_m_is_llama_cpp_quantized_and_answers_alike_in_two_runtimes(
    run_copy: Path, tmp_path: Path
) -> None:
    """llama.cpp quantizes (its Q4_K_M mix) and runs the file; transformers dequantizes it through the
    `gguf` package and runs it too: the same weights read two ways give the same greedy answers."""
    from finetune.gguf_export import llama_cpp_installed

    if not llama_cpp_installed():
        pytest.skip("llama-cpp-python is not installed (bash setup.sh --test builds it)")
    import gguf
    import torch
    from llama_cpp import Llama
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from finetune.loading import finish_tokenizer
    from finetune.prompt import render_prompt
    from finetune.registry import get_model

    out = tmp_path / "export"
    assert main([str(run_copy), "--gguf", "q4_k_m", "--out", str(out)]) == 0
    path = next((out / "gguf").glob("*.gguf"))
    assert path.name.endswith("-q4_k_m.gguf") and not list((out / "gguf").glob(".*"))  # no f16 left
    reader = gguf.GGUFReader(str(path))
    types = {tensor.tensor_type.name for tensor in reader.tensors}
    # Q4_K_M: Q4_K, Q6_K for some feed-forward-down rows, llama.cpp's fallbacks where a row of 576
    # is not a multiple of 256, norms in F32. No tensor is left in f16.
    assert {"Q4_K", "Q6_K"} <= types and "F16" not in types, types
    assert reader.fields["general.file_type"].contents() == 15  # LLAMA_FTYPE_MOSTLY_Q4_K_M
    assert json.loads((out / "gguf" / "export.json").read_text())["dtype"] == "q4_k_m"

    tokenizer = finish_tokenizer(
        AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name), get_model("smollm2-135m")
    )
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    runtime = Llama(model_path=str(path), n_ctx=512, n_threads=2, verbose=False)
    try:
        for question in ("What are the early symptoms of type 2 diabetes?", "What causes hyponatraemia?"):
            ids = tokenizer(render_prompt(tokenizer, question), add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                expected = model.generate(torch.tensor([ids]), max_new_tokens=16, do_sample=False)
            expected_ids = expected[0, len(ids) :].tolist()
            answered: list[int] = []
            for token in runtime.generate(ids, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True):
                answered.append(token)
                if len(answered) == 16 or token == runtime.token_eos():
                    break
            assert answered == expected_ids, (
                question,
                tokenizer.decode(answered),
                tokenizer.decode(expected_ids),
            )
    finally:
        runtime.close()


@pytest.mark.parametrize(
    ("quant", "loaded"),
    [
        ("4bit", "unsloth/SmolLM2-135M-Instruct-bnb-4bit"),  # the registry's 4-bit repo on CUDA
        ("16bit", "unsloth/SmolLM2-135M-Instruct"),  # Unsloth's own 16-bit copy of hf_id
    ],
)
def test_a_cuda_run_records_what_it_loaded_and_exports_from_the_full_precision_base(
    run_copy: Path, quant: str, loaded: str
) -> None:
    """Issue #19 faults 4 and 10: run.json once recorded only the 4-bit repo, which export refused."""
    from arena.adapters import provenance_problem
    from finetune.loading import LoadedBase, base_provenance
    from finetune.registry import get_model

    spec = get_model("smollm2-135m")
    base = LoadedBase(spec, None, None, "unsloth-cuda", quant, "cuda", 0.0, source=loaded)
    run = json.loads((run_copy / "run.json").read_text())
    run.update(base_provenance(base))
    (run_copy / "run.json").write_text(json.dumps(run))
    config = json.loads((run_copy / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = loaded  # what PEFT writes after Unsloth's load
    (run_copy / "adapter_config.json").write_text(json.dumps(config))

    assert (run["hf_id"], run["base_id"], run["base_source"]) == (spec.hf_id, loaded, loaded)
    assert read_run(run_copy).spec == spec  # export accepts it and merges into hf_id's weights
    assert provenance_problem(run_copy, spec.key) is None  # and the arena serves it


def test_a_run_recording_another_full_precision_base_is_refused(run_copy: Path) -> None:
    run = json.loads((run_copy / "run.json").read_text())
    run.update(hf_id="google/gemma-3-270m", base_id="HuggingFaceTB/SmolLM2-135M-Instruct")
    (run_copy / "run.json").write_text(json.dumps(run))
    with pytest.raises(ExportError, match="is not smollm2-135m's base"):
        read_run(run_copy)
