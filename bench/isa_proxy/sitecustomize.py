"""AVX2 proxy runs of bench/serve_bench.py (`--isa avx2`): every Python process of a probe, vLLM's
spawned engine processes included, starts with this directory on PYTHONPATH, so this file runs
first in each and tells torch (and so vLLM's kernel choice, vllm/platforms/cpu.py import_kernels)
that the CPU has no AVX-512. Inert unless MEDARENA_BENCH_ISA=avx2.

Run as: (by bench/serve_bench.py --isa avx2; never imported by the app)
"""

import os

if os.environ.get("MEDARENA_BENCH_ISA") == "avx2":
    import torch

    torch.cpu._is_avx512_supported = lambda: False
    torch.cpu._is_avx512_bf16_supported = lambda: False
