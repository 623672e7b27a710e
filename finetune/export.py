"""Export a training run: 16-bit merged weights, and a GGUF file with an Ollama Modelfile.

The adapter is merged (`PEFT merge_and_unload`) into the run's base in full precision, never into
the 4-bit base it trained on: on a CPU that is the embedded GGUF dequantized into the float32
cache (`finetune.loading.convert_embedded`), elsewhere the registry's full-precision repository
(or `MEDARENA_BASE_<KEY>`). Every export writes `export.json` (source run, base, adapter hash,
dtype, tool versions) beside the files, and refuses a run without `run.json`, an adapter whose
base is not the run's, and an unknown GGUF type.

Run as:
    python -m finetune.export adapters/smollm2-135m/<run-id> --merged
    python -m finetune.export adapters/smollm2-135m/<run-id> --gguf f16     # or q8_0, f32
    python -m finetune.export RUN_DIR --merged --gguf q8_0 --out exports/smollm2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

from finetune.gguf_export import GGUFExportError, check_gguf_type, modelfile, write_gguf
from finetune.registry import END_OF_TURN, ModelSpec, get_model

MergedDType = Literal["float16", "bfloat16", "float32"]


class ExportError(ValueError):
    """The run cannot be exported; the message says why."""


@dataclass(frozen=True)
class RunInfo:
    run_dir: Path
    spec: ModelSpec
    run: dict[str, Any]
    adapter_sha256: str


def sha256(path: Path) -> str:
    """The file's sha256, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_run(run_dir: Path) -> RunInfo:
    """The run's provenance, checked: run.json present, adapter present, adapter base = run's base."""
    run_json = run_dir / "run.json"
    if not run_json.is_file():
        raise ExportError(f"{run_dir} has no run.json: not a MedArena training run, refusing to export")
    run = json.loads(run_json.read_text())
    spec = get_model(run.get("model_key", ""))
    # `hf_id` is the full-precision base every export merges into; runs written before it was
    # recorded kept that id in `base_id` (CPU runs) or the 4-bit repo's (CUDA runs).
    recorded, allowed = (
        (run["hf_id"], {spec.hf_id})
        if "hf_id" in run
        else (run.get("base_id"), {spec.hf_id, spec.bnb_4bit_id})
    )
    if recorded not in allowed:
        raise ExportError(f"run.json base {recorded!r} is not {spec.key}'s base {spec.hf_id!r}")
    adapter = run_dir / "adapter_model.safetensors"
    config_path = run_dir / "adapter_config.json"
    if not adapter.is_file() or not config_path.is_file():
        raise ExportError(f"{run_dir} lacks adapter_model.safetensors or adapter_config.json")
    adapter_base = json.loads(config_path.read_text()).get("base_model_name_or_path") or ""
    # The adapter names the folder or repo it was trained on: the converted cache of this key
    # (…/bases/<key>), the registry's 4-bit or full repo, or an override folder.
    known = {spec.hf_id, spec.bnb_4bit_id, run.get("base_id"), run.get("base_source")} - {None, ""}
    if adapter_base not in known and Path(adapter_base).name != spec.key:
        raise ExportError(
            f"adapter_config.json says the adapter was trained on {adapter_base!r}, not on {spec.key} "
            f"({' or '.join(sorted(known))}): refusing to merge it into the wrong base"
        )
    return RunInfo(run_dir, spec, run, sha256(adapter))


def full_precision_source(spec: ModelSpec) -> str:
    """Where the 16-bit base comes from: an override, the converted embedded GGUF, or the hub id."""
    from finetune.loading import base_override, convert_embedded, twin_folder

    override = base_override(spec) or twin_folder(spec.hf_id)
    if override:
        return override
    if spec.embedded is not None:
        return str(convert_embedded(spec))
    return spec.hf_id


def merge(info: RunInfo, dtype: MergedDType) -> tuple[Any, Any]:
    """The merged model (in `dtype`) and tokenizer; the adapter is merged in float32 first."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from finetune.loading import TEXT_ONLY_KEY_MAPPING, finish_tokenizer, text_only_config
    from finetune.lora_names import served_adapter

    source = full_precision_source(info.spec)
    # An image-text checkpoint exports as the text decoder its adapters were trained on.
    text_only = (
        {"config": text_only_config(source), "key_mapping": TEXT_ONLY_KEY_MAPPING}
        if info.spec.multimodal_checkpoint
        else {}
    )
    base = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **text_only)
    with tempfile.TemporaryDirectory(prefix="medarena-export-") as work:
        # The adapter as this base names its modules: Phi-3's split q/k/v LoRA fused for
        # Microsoft's qkv_proj layout (PEFT would otherwise skip the modules it cannot find).
        adapter = served_adapter(info.run_dir, set(base.state_dict()), Path(work))
        merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    tokenizer = finish_tokenizer(AutoTokenizer.from_pretrained(source), info.spec)
    return merged.to(getattr(torch, dtype)), tokenizer


def provenance(info: RunInfo, kind: str, dtype: str, files: list[str]) -> dict[str, Any]:
    """export.json: where the export came from (run, base, adapter hash) and with what versions."""
    from finetune.train import git_commit

    tools = {name: _version(name) for name in ("torch", "transformers", "peft", "gguf")}
    return {
        "kind": kind,
        "source_run": str(info.run_dir),
        "run_id": info.run.get("run_id"),
        "model_key": info.spec.key,
        "base_id": info.spec.hf_id,
        "base_source": full_precision_source(info.spec),
        "adapter_sha256": info.adapter_sha256,
        "dtype": dtype,
        "files": files,
        "tools": tools,
        "git_commit": git_commit(),
        "exported_at": datetime.now(UTC).isoformat(),
    }


def _version(name: str) -> str | None:
    try:
        return version(name)
    except Exception:
        return None


def _publish(staged: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    staged.rename(target)


def export_merged(info: RunInfo, out: Path, dtype: MergedDType = "float16") -> Path:
    """`out` holds safetensors, config, tokenizer and export.json; written atomically."""
    model, tokenizer = merge(info, dtype)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as tmp:
        staged = Path(tmp) / "merged"
        # A decoder loaded out of an image-text checkpoint (TEXT_ONLY_KEY_MAPPING) would be saved
        # under the image-text names by default (transformers reverses the mapping), and reloading
        # that folder as the causal LM its config names then initialises every weight at random.
        original_names = not info.spec.multimodal_checkpoint
        model.save_pretrained(staged, save_original_format=original_names)
        tokenizer.save_pretrained(staged)
        files = sorted(p.name for p in staged.iterdir())
        (staged / "export.json").write_text(json.dumps(provenance(info, "merged", dtype, files), indent=1))
        _publish(staged, out)
    return out


def export_gguf(info: RunInfo, out: Path, gguf_type: str) -> Path:
    """`out` holds `<model>-<type>.gguf`, its `Modelfile` and export.json; returns the GGUF path."""
    from finetune.loading import embedded_gguf_path
    from finetune.prompt import SYSTEM_PROMPT

    checked = check_gguf_type(gguf_type)
    spec = info.spec
    if spec.embedded is None:
        raise ExportError(
            f"{spec.key} has no base GGUF on this machine to take the tokenizer metadata from; export "
            "it on a CUDA machine with Unsloth's save_pretrained_gguf (README, Export), or --merged here"
        )
    model, tokenizer = merge(info, "float32")
    out.mkdir(parents=True, exist_ok=True)
    name = f"{spec.key}-{info.run.get('run_id', 'run')}-{checked}.gguf"
    with tempfile.TemporaryDirectory(prefix=f".{spec.key}-gguf-") as tmp:
        base_gguf = embedded_gguf_path(spec, Path(tmp))
        path = write_gguf(model.state_dict(), base_gguf, out / name, checked, name=f"MedArena {spec.key}")
    stops = [END_OF_TURN[spec.chat_template], tokenizer.eos_token]
    (out / "Modelfile").write_text(modelfile(name, spec.chat_template, SYSTEM_PROMPT, stops))
    record = provenance(info, "gguf", checked, [name, "Modelfile"])
    record["gguf_sha256"] = sha256(path)
    (out / "export.json").write_text(json.dumps(record, indent=1))
    return path


def main(argv: list[str] | None = None) -> int:
    """python -m finetune.export: write merged weights and/or a GGUF for a run."""
    parser = argparse.ArgumentParser(prog="python -m finetune.export", description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path, help="a run folder, e.g. adapters/smollm2-135m/<run-id>")
    parser.add_argument("--merged", action="store_true", help="write 16-bit merged weights")
    parser.add_argument(
        "--gguf", metavar="TYPE", help="write a GGUF (f16, q8_0, f32, q4_k_m) and an Ollama Modelfile"
    )
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    parser.add_argument("--out", type=Path, help="output folder (default RUN_DIR/export)")
    args = parser.parse_args(argv)
    if not args.merged and not args.gguf:
        parser.error("nothing to do: pass --merged and/or --gguf TYPE")
    out = args.out or args.run_dir / "export"
    try:
        if args.gguf:
            check_gguf_type(args.gguf)  # refuse before any loading
        info = read_run(args.run_dir)
        if args.merged:
            print(f"merged weights: {export_merged(info, out / 'merged', args.dtype)}")
        if args.gguf:
            print(f"GGUF: {export_gguf(info, out / 'gguf', args.gguf)}")
    except (ExportError, GGUFExportError, KeyError) as error:
        print(f"export refused: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
