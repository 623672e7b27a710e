"""The seed twins on a lent CUDA GPU: VRAM, train speed, and CUDA-vs-CPU greedy agreement, as JSON.

Driven by bench/gpu_check.sh (which also runs the CUDA-marked tests); not part of CI. For each seed
twin (tests/tiny_models.py, served through MEDARENA_TWINS): a few LoRA steps on CUDA through
`finetune.train.train_one` (Unsloth where installed, else transformers; bitsandbytes-less images
train the 16-bit path), its steps/s and peak VRAM, then greedy tokens of base and adapter on CUDA
and on the CPU in float32 with the same weights. For the embedded bases (SmolLM2-135M,
Gemma-3-270M): the VRAM of the arena's serving load. Every step that cannot run on this image
records why instead of failing the run.

    python bench/gpu_check.py --out gpu_check.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTION = "Which electrolyte disturbance is most typical of tumour lysis syndrome?"
NEW_TOKENS = 8


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def greedy(source: str, adapter: Path | None, spec: Any, device: str) -> list[int]:
    """Greedy token ids in float32 on `device`, adapter renamed/fused for the checkpoint if needed."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from finetune.loading import TEXT_ONLY_KEY_MAPPING, text_only_config
    from finetune.lora_names import served_adapter
    from finetune.prompt import render_prompt

    extra = (
        {"config": text_only_config(source), "key_mapping": TEXT_ONLY_KEY_MAPPING}
        if spec.multimodal_checkpoint
        else {}
    )
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **extra).to(device)
    if adapter is not None:
        with tempfile.TemporaryDirectory() as work:
            adapter = served_adapter(adapter, set(model.state_dict()), Path(work))
            model = PeftModel.from_pretrained(model, str(adapter)).to(device)
    tokenizer = AutoTokenizer.from_pretrained(source)
    ids = tokenizer(render_prompt(tokenizer, QUESTION), return_tensors="pt", add_special_tokens=False).to(
        device
    )
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False)
    return out[0, ids["input_ids"].shape[1] :].tolist()


def check_twin(spec: Any, adapters: Path) -> dict[str, Any]:
    import torch

    from finetune.config import build_config
    from finetune.loading import twin_folder
    from finetune.train import train_one

    quant = "4bit" if installed("bitsandbytes") else "16bit"
    config = build_config(
        flags={
            "quant": quant,
            "train": {"max_steps": 5, "max_seq_length": 384, "learning_rate": 3e-2, "warmup_steps": 0},
            "data": {"limit": 16},
            "lora": {"rank": 8, "alpha": 16},
            "output_dir": str(adapters),
        }
    )
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    result = train_one(spec, config)
    seconds = time.perf_counter() - started
    run = result.run
    source = twin_folder(spec.hf_id)
    assert source is not None, "twin missing"
    cuda = {
        "base": greedy(source, None, spec, "cuda"),
        "adapter": greedy(source, result.adapter_dir, spec, "cuda"),
    }
    cpu = {
        "base": greedy(source, None, spec, "cpu"),
        "adapter": greedy(source, result.adapter_dir, spec, "cpu"),
    }
    return {
        "backend": run["backend"],
        "quant": quant,
        "train_steps_per_s": round(run["steps_done"] / max(run["train_seconds"], 1e-9), 3),
        "load_train_save_seconds": round(seconds, 1),
        "train_tokens_per_s": run.get("train_tokens_per_second"),
        "peak_vram_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
        "final_loss": run.get("final_train_loss"),
        "greedy_cuda": cuda,
        "greedy_cpu": cpu,
        "greedy_agree": {side: cuda[side] == cpu[side] for side in cuda},
        "adapter_changes_output": cuda["adapter"] != cuda["base"],
    }


def embedded_vram() -> dict[str, Any]:
    import torch

    from finetune.loading import load_serving_base
    from finetune.registry import embedded_models

    found: dict[str, Any] = {}
    for spec in embedded_models():
        try:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            base = load_serving_base(spec)
            found[spec.key] = {
                "backend": base.backend,
                "peak_vram_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
            }
            del base
        except Exception as error:  # record, never stop the check
            found[spec.key] = {"error": f"{type(error).__name__}: {error}"}
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    parser.add_argument("--twins", type=Path, required=True, help="folder of twins (tests/tiny_models.py)")
    parser.add_argument("--pytest-summary", type=Path, help="JSON of the CUDA-marked test run, merged in")
    args = parser.parse_args()
    import torch

    from finetune.registry import MODELS

    os.environ["MEDARENA_TWINS"] = str(args.twins)
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "capability": list(torch.cuda.get_device_capability(0)) if torch.cuda.is_available() else None,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            **{name: installed(name) for name in ("bitsandbytes", "unsloth", "vllm", "peft", "transformers")},
        },
        "twins": {},
    }
    if not torch.cuda.is_available():
        report["error"] = "no CUDA device"
    else:
        with tempfile.TemporaryDirectory() as adapters:
            for spec in (s for s in MODELS if s.architecture is not None):
                started = time.perf_counter()
                try:
                    report["twins"][spec.key] = check_twin(spec, Path(adapters))
                except Exception as error:
                    report["twins"][spec.key] = {
                        "error": f"{type(error).__name__}: {error}",
                        "trace": traceback.format_exc()[-1500:],
                    }
                report["twins"][spec.key]["seconds"] = round(time.perf_counter() - started, 1)
                print(spec.key, json.dumps(report["twins"][spec.key])[:300], flush=True)
        report["embedded_bases"] = embedded_vram()
    if args.pytest_summary and args.pytest_summary.is_file():
        report["cuda_tests"] = json.loads(args.pytest_summary.read_text())
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
