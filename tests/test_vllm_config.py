"""Where the vLLM backend puts each CPU engine's threads (`arena.vllm_config`), without vLLM.

Run: ``python -m pytest tests/test_vllm_config.py -q``
"""

from __future__ import annotations

import os

import pytest

from arena.vllm_config import VLLMSettings, cpu_engine_env, engine_environment


def test_spread_gives_each_engine_its_own_core_and_all_gives_every_core() -> None:
    spread = VLLMSettings(cpu_binding="spread", preload_iomp=False)
    binds = [cpu_engine_env(spread, i, [4, 2])["VLLM_CPU_OMP_THREADS_BIND"] for i in range(3)]
    assert binds == ["2", "4", "2"]  # the allowed cores in order, round-robin over engines
    every = cpu_engine_env(VLLMSettings(cpu_binding="all", preload_iomp=False), 1, [0, 1])
    assert every == {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "0,1"}
    assert "VLLM_CPU_OMP_THREADS_BIND" not in cpu_engine_env(VLLMSettings(cpu_binding="vllm"), 0, [0, 1])
    with pytest.raises(ValueError, match="cpu_binding must be one of"):
        VLLMSettings(cpu_binding="fast")  # type: ignore[arg-type]


def test_engine_environment_keeps_what_the_operator_set_and_restores_ours(monkeypatch) -> None:
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0-1")
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    with engine_environment({"VLLM_CPU_OMP_THREADS_BIND": "1", "VLLM_CPU_KVCACHE_SPACE": "2"}):
        assert os.environ["VLLM_CPU_OMP_THREADS_BIND"] == "0-1"  # the operator's choice wins
        assert os.environ["VLLM_CPU_KVCACHE_SPACE"] == "2"
    assert os.environ["VLLM_CPU_OMP_THREADS_BIND"] == "0-1"
    assert "VLLM_CPU_KVCACHE_SPACE" not in os.environ
