"""Where the vLLM backend puts each CPU engine's threads (`arena.serving.vllm_config`), without vLLM.

Run: ``python -m pytest tests/test_vllm_config.py -q``
"""

from __future__ import annotations

import os

import pytest

from arena.serving.vllm_config import VLLMSettings, cpu_engine_env, engine_environment


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


def test_engine_lora_rank_is_the_smallest_vllm_rank_holding_the_adapters(tmp_path) -> None:
    import json

    from arena.serving.vllm_config import adapter_rank, engine_lora_rank

    for name, rank in (("r8", 8), ("r12", 12)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "adapter_config.json").write_text(json.dumps({"r": rank}))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "adapter_config.json").write_text("{not json")
    assert [adapter_rank(tmp_path / n) for n in ("r8", "r12", "broken", "missing")] == [8, 12, 0, 0]
    assert engine_lora_rank([8], 64) == 8  # not padded to the cap: vLLM's CPU LoRA cost grows with it
    assert engine_lora_rank([8, 12], 64) == 16
    assert engine_lora_rank([], 64) == 8  # a plain base still needs a valid rank
    assert engine_lora_rank([8, 128], 64) == 8  # the rank-128 adapter is refused, not served
