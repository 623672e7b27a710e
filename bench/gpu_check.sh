#!/usr/bin/env bash
# The GPU path on a lent CUDA machine (one H100, no internet, ~10 minutes): the CUDA-marked tests and
# the seed twins trained and compared on CUDA, written to ONE JSON file. Not part of CI.
#
#   bash bench/gpu_check.sh [OUT_JSON]        # default: $OUT/gpu_check.json, else ./gpu_check.json
#
# The image is expected to have torch (CUDA), transformers 5.17, peft and accelerate. Wheels it lacks
# can be carried in bench/wheels/ (ignored by git, installed with --no-index --no-deps): bitsandbytes
# (~60 MB, enables the 4-bit path) is the one that fits the ~60 MB allowance; unsloth/unsloth_zoo and
# vllm do not fit (vllm alone is ~400 MB), so their CUDA paths are reported as not run.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_JSON="${1:-${OUT:-.}/gpu_check.json}"
WORK="$(mktemp -d)"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader || echo "no nvidia-smi"
if compgen -G "bench/wheels/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps bench/wheels/*.whl || echo "carried wheels did not install"
fi
python3 -m pip install -q --no-index --no-deps -e . 2>/dev/null || true
# 1. Twins of every seed (KB-sized, built offline from finetune/registry.py).
timeout 120 python3 -m tests.tiny_models "$WORK/twins" >/dev/null
# 2. The CUDA tests (Unsloth's skip without Unsloth) and the GPU planning/adapter-name tests.
timeout 300 python3 -m pytest -q tests/test_gpu.py tests/test_gpu_planning.py tests/test_lora_names.py \
  --junitxml="$WORK/cuda-tests.xml" >"$WORK/cuda-tests.log" 2>&1
python3 - "$WORK/cuda-tests.xml" "$WORK/cuda-tests.log" "$WORK/summary.json" <<'PY'
import json, sys, xml.etree.ElementTree as ET
from pathlib import Path
xml, log, out = map(Path, sys.argv[1:4])
cases = []
if xml.is_file():
    for case in ET.parse(xml).getroot().iter("testcase"):
        status = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        detail = next((child.get("message", "")[:300] for child in case if child.tag != "system-out"), "")
        cases.append({"test": f"{case.get('classname')}::{case.get('name')}", "status": status, "detail": detail})
out.write_text(json.dumps({"cases": cases, "log_tail": log.read_text()[-2000:] if log.is_file() else ""}))
PY
# 3. Per twin: VRAM, train steps/s, greedy agreement CUDA vs CPU; embedded bases' serving VRAM.
timeout 420 python3 bench/gpu_check.py --twins "$WORK/twins" --pytest-summary "$WORK/summary.json" --out "$OUT_JSON"
status=$?
rm -rf "$WORK"
exit $status
