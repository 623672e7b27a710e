"""Tests for finetune/registry.py: every entry complete and valid, clear unknown-key errors,
importable without torch, and `python -m finetune --list`.

Run: ``python -m pytest tests/test_registry.py -q``
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from finetune.registry import (
    CHAT_TEMPLATES,
    END_OF_TURN,
    MODELS,
    REGISTRY,
    ModelSpec,
    UnknownModelError,
    embedded_models,
    get_model,
)

ROOT = Path(__file__).resolve().parent.parent

SEED_KEYS = {
    "llama3-8b",
    "qwen2.5-1.5b",
    "qwen3-4b",
    "medgemma-1.5-4b",
    "medgemma-4b-it",
    "phi3",
    "mistral-7b",
    "deepseek-r1-llama-8b",
    "llama3.1-8b",
    "gemma2-9b",
    "phi3.5-mini",
    "gemma3-1b",
}
EMBEDDED_KEYS = {"smollm2-135m", "gemma3-270m"}
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def test_registry_holds_the_twelve_seed_models_and_the_two_embedded_bases() -> None:
    keys = [spec.key for spec in MODELS]
    assert len(keys) == 14
    assert len(set(keys)) == len(keys), "registry keys must be unique"
    assert set(keys) == SEED_KEYS | EMBEDDED_KEYS
    assert set(REGISTRY) == set(keys)
    assert {spec.key for spec in embedded_models()} == EMBEDDED_KEYS


@pytest.mark.parametrize("spec", MODELS, ids=lambda spec: spec.key)
def test_entry_is_complete_and_valid(spec: ModelSpec) -> None:
    for name in ("key", "display_name", "hf_id", "bnb_4bit_id", "chat_template", "license"):
        value = getattr(spec, name)
        assert isinstance(value, str) and value.strip(), f"{spec.key}: {name} is empty"
    assert spec.key == spec.key.strip().lower()
    assert REPO_ID.match(spec.hf_id), spec.hf_id
    assert REPO_ID.match(spec.bnb_4bit_id), spec.bnb_4bit_id
    assert spec.chat_template in CHAT_TEMPLATES
    assert spec.chat_template in END_OF_TURN
    assert spec.lora_roles == ("attention", "mlp")  # every attention and MLP projection, resolved at load
    assert spec.params_b > 0
    assert spec.context_length >= 512
    assert (spec.embedded is not None) == (spec.key in EMBEDDED_KEYS)
    if spec.embedded is not None:
        assert spec.embedded.package and spec.embedded.module and spec.embedded.filename.endswith(".gguf")
        assert spec.embedded.package in spec.embedded.install_hint()
    assert get_model(spec.key) is spec


def test_spec_rejects_an_unknown_chat_template() -> None:
    with pytest.raises(ValueError, match="chat_template"):
        ModelSpec(
            key="broken",
            display_name="Broken",
            params_b=1.0,
            hf_id="owner/name",
            bnb_4bit_id="owner/name-bnb-4bit",
            chat_template="no-such-template",
            context_length=2048,
            license="MIT",
        )


def test_spec_rejects_an_unknown_lora_role() -> None:
    with pytest.raises(ValueError, match="lora_roles"):
        ModelSpec(
            key="broken",
            display_name="Broken",
            params_b=1.0,
            hf_id="owner/name",
            bnb_4bit_id="owner/name-bnb-4bit",
            chat_template="chatml",
            context_length=2048,
            license="MIT",
            lora_roles=("attention", "q_proj"),  # type: ignore[arg-type]
        )


def test_unknown_key_error_lists_every_valid_key() -> None:
    with pytest.raises(UnknownModelError) as caught:
        get_model("nope")
    message = str(caught.value)
    assert "'nope'" in message
    for key in REGISTRY:
        assert key in message
    assert isinstance(caught.value, KeyError)


def test_registry_imports_without_torch() -> None:
    # A meta path finder that refuses torch (and anything under it) for the child interpreter.
    code = (
        "import sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch is blocked for this test')\n"
        "        return None\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "sys.modules['torch'] = None\n"
        "import finetune.registry as registry\n"
        "assert len(registry.MODELS) == 14\n"
        "assert registry.get_model('smollm2-135m').embedded is not None\n"
        "loaded = [name for name, module in sys.modules.items() if name.split('.')[0] == 'torch' and module]\n"
        "assert not loaded, loaded\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.slow  # starts a Python child process
def test_list_command_shows_every_key_and_smollm2_is_available() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "finetune", "--list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.split()}
    for key in REGISTRY:
        assert key in rows, f"{key} missing from --list"
    # Columns: key, name, params, ctx, here (yes/no), how. The display name has no spaces.
    smollm2 = rows["smollm2-135m"].split()
    assert smollm2[4] == "yes", rows["smollm2-135m"]
    assert "14 models and 1 encoder baseline" in result.stdout
    assert "never served" in rows["biobert"] and rows["biobert"].split()[4] == "yes"  # offline stand-in


def test_the_encoder_baseline_is_never_a_contestant(tmp_path) -> None:
    from arena.adapters import discover_adapters
    from finetune.registry import ENCODER_REGISTRY, chosen_models, get_trainable

    assert ENCODER_REGISTRY["biobert"].kind == "encoder" and "biobert" not in REGISTRY
    assert all(spec.kind == "decoder" for spec in MODELS)  # what engines, --all and the Space iterate
    assert get_trainable("biobert").hf_id == "dmis-lab/biobert-base-cased-v1.2"
    with pytest.raises(UnknownModelError, match=r"encoder baseline .* the arena does not serve it"):
        chosen_models("smollm2-135m,biobert")
    run = tmp_path / "biobert" / "20260101-000000"
    run.mkdir(parents=True)
    (run / "run.json").write_text("{}")
    found, warnings = discover_adapters(tmp_path)
    assert found == [] and warnings == [
        "skipped adapters/biobert: an encoder baseline, not served in the arena"
    ]
