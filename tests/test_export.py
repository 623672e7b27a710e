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
