"""Arena benchmark: every ratio in one run, on the embedded bases.

    python bench/arena_bench.py [--tokens 128] [--adapters adapters]

1. Battle wall time (two contestants on the same base, 128 new greedy tokens each): the engine's
   one mixed-adapter batch vs a naive baseline that loads two separate models and generates one
   after the other, as many tokens per side as the engine produced (target <= 0.6x). Each side runs
   in a fresh process.
2. Adapter switch: median time for the engine to switch the resident base to another contestant's
   adapter (ResidentBase.switch_adapter) vs reloading the adapter from disk (target <= 1 ms vs
   hundreds of ms); PEFT's set_adapter and the per-token cost of routing rows by name are printed
   beside it, since mixed battles route instead of switching.
3. Memory: RSS with every embedded contestant loaded vs the bases alone (target <= 1.3x).
4. Leaderboard: Bradley-Terry with 200 bootstrap rounds on 100,000 synthetic votes among 12
   contestants (target < 2 s).
Figures are printed and written to bench/results/arena_bench.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTION = "What are the first-line treatments for community-acquired pneumonia in adults?"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ensure_adapter(adapters: Path) -> Path:
    """The newest smollm2-135m adapter, training a tiny one when none exists."""
    runs = sorted((adapters / "smollm2-135m").glob("[0-9]*"))
    if not runs:
        subprocess.run(
            [sys.executable, "-m", "finetune", "--model", "smollm2-135m", "--max-steps", "2", "--data.limit", "16",
             "--train.max_seq_length", "128", "--output", str(adapters)],
            cwd=ROOT, check=True,
        )  # fmt: skip
        runs = sorted((adapters / "smollm2-135m").glob("[0-9]*"))
    return runs[-1]


def median_ms(action: Callable[[int], object], repeats: int) -> float:
    timings = []
    for i in range(repeats):
        t0 = time.perf_counter()
        action(i)
        timings.append(time.perf_counter() - t0)
    return statistics.median(timings) * 1000


def memory_probe(adapters: Path, with_adapters: bool) -> float:
    """RSS of a fresh process holding the embedded bases, with or without every adapter."""
    command = [
        sys.executable,
        __file__,
        "--adapters",
        str(adapters),
        "--probe-memory",
        "all" if with_adapters else "none",
    ]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return float(next(line for line in out.splitlines() if line.startswith("RSS")).split()[1])


def battle_probe(
    args: argparse.Namespace, side: str, tokens: tuple[int, int] | None = None
) -> tuple[float, tuple[int, int]]:
    """Time one battle in a fresh process.

    A fresh process per side keeps the comparison fair: PyTorch's OpenMP pool belongs to the
    thread that made it, and a second pool in the same process slows the other thread's decoding.
    """
    command = [sys.executable, __file__, "--adapters", str(args.adapters), "--tokens", str(args.tokens)]
    command += ["--probe-battle", side]
    if tokens:
        command += ["--naive-tokens", f"{tokens[0]},{tokens[1]}"]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    _, seconds, a, b = next(line for line in out.splitlines() if line.startswith("BATTLE")).split()
    return float(seconds), (int(a), int(b))


def run_battle_probe(args: argparse.Namespace) -> None:
    """Engine: one mixed-adapter batch (adapter vs plain base), models already resident. Naive: load
    two separate models, then generate one answer after the other, each exactly as many tokens as
    the engine's answer on that side had (equal work)."""
    from peft import PeftModel

    from arena.serving.common import GenerationSettings
    from arena.serving.peft_engine import ArenaEngine
    from finetune.loading import load_base
    from finetune.prompt import render_prompt

    adapter_dir = ensure_adapter(args.adapters)
    if args.probe_battle == "engine":
        engine = ArenaEngine.start(
            adapters_dir=args.adapters,
            model_keys=["smollm2-135m"],
            adapter_selection=[f"smollm2-135m/{adapter_dir.name}"],
        )
        name_adapter, name_base = engine.contestant_names()
        list(engine.stream_pair("warm-up", name_adapter, name_base, GenerationSettings(max_new_tokens=4)))
        settings = GenerationSettings(max_new_tokens=args.tokens, repetition_penalty=1.0)
        started = time.perf_counter()
        final = list(engine.stream_pair(QUESTION, name_adapter, name_base, settings))[-1]
        seconds = time.perf_counter() - started
        assert final.a.telemetry and final.b.telemetry
        print("BATTLE", seconds, final.a.telemetry.output_tokens, final.b.telemetry.output_tokens)
        return
    token_counts = [int(n) for n in args.naive_tokens.split(",")]
    started = time.perf_counter()
    naive_a = load_base("smollm2-135m")
    naive_a_model = PeftModel.from_pretrained(naive_a.model, str(adapter_dir))
    naive_b = load_base("smollm2-135m")
    for (loaded, model), count in zip(
        ((naive_a, naive_a_model), (naive_b, naive_b.model)), token_counts, strict=True
    ):
        prompt = render_prompt(loaded.tokenizer, QUESTION)
        encoded = loaded.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        model.generate(**encoded, max_new_tokens=count, min_new_tokens=count, do_sample=False)
    print("BATTLE", time.perf_counter() - started, *token_counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--adapters", type=Path, default=ROOT / "adapters")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--probe-memory", choices=["all", "none"], help=argparse.SUPPRESS)
    parser.add_argument("--probe-battle", choices=["engine", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--naive-tokens", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe_battle:
        run_battle_probe(args)
        return
    if args.probe_memory:
        from arena.serving.peft_engine import ArenaEngine

        engine = ArenaEngine.start(
            adapters_dir=args.adapters, adapter_selection="all" if args.probe_memory == "all" else []
        )
        print("RSS", rss_mb(), len(engine.contestant_names()))
        return

    import numpy as np
    import torch

    from arena.ratings import RatedBattle, leaderboard
    from arena.serving.peft_engine import ArenaEngine
    from finetune.prompt import render_prompt

    adapter_dir = ensure_adapter(args.adapters)
    results: dict[str, float] = {}

    # 1. battle wall time, same base: each side in a fresh process (see battle_probe)
    engine_s, tokens = battle_probe(args, "engine")
    naive_s, _ = battle_probe(args, "naive", tokens)
    results.update(battle_engine_s=engine_s, battle_naive_s=naive_s, battle_ratio=engine_s / naive_s)
    results["battle_tokens_a"], results["battle_tokens_b"] = tokens

    engine = ArenaEngine.start(
        adapters_dir=args.adapters,
        model_keys=["smollm2-135m"],
        adapter_selection=[f"smollm2-135m/{adapter_dir.name}"],
    )
    name_adapter, _ = engine.contestant_names()

    # 2. adapter switch vs reload, on the engine's resident base
    resident = engine.base_for(name_adapter)
    resident.model.load_adapter(str(adapter_dir), adapter_name="second")
    # "second" lands on the same LoRA layers, so resident.lora_layers needs no refresh.
    pair = [engine.contestant(name_adapter).adapter_name, "second"]
    results["switch_median_ms"] = median_ms(lambda i: resident.switch_adapter(pair[i % 2]), 200)
    results["peft_set_adapter_median_ms"] = median_ms(
        lambda i: resident.model.set_adapter(pair[i % 2], inference_mode=True), 50
    )

    def reload(i: int) -> None:
        resident.model.load_adapter(str(adapter_dir), adapter_name=f"reload{i}")
        resident.model.delete_adapter(f"reload{i}")  # not timed apart: deleting is cheap

    results["reload_median_ms"] = median_ms(reload, 5)
    results["switch_ratio"] = results["switch_median_ms"] / results["reload_median_ms"]

    # What routing rows by name costs instead (the path mixed battles take), per generated token.
    tokenizer = resident.loaded.tokenizer
    encoded = tokenizer(render_prompt(tokenizer, QUESTION), return_tensors="pt", add_special_tokens=False)
    steps = 32

    def generate(routed: bool) -> float:
        extra = {"adapter_names": [pair[0]]} if routed else {}
        with torch.inference_mode():
            t0 = time.perf_counter()
            resident.model.generate(
                **encoded, max_new_tokens=steps, min_new_tokens=steps, do_sample=False, **extra
            )
            return time.perf_counter() - t0

    resident.switch_adapter(pair[0])
    switched = statistics.median(engine.compute(generate, False) for _ in range(3))
    routed = statistics.median(engine.compute(generate, True) for _ in range(3))
    results["routing_overhead_ms_per_token"] = (routed - switched) / steps * 1000
    results["switched_ms_per_token"] = switched / steps * 1000
    del engine

    # 3. memory: every embedded contestant vs bases alone, each in a fresh process
    if not args.skip_memory:
        results["rss_bases_mb"] = memory_probe(args.adapters, with_adapters=False)
        results["rss_all_contestants_mb"] = memory_probe(args.adapters, with_adapters=True)
        results["memory_ratio"] = results["rss_all_contestants_mb"] / results["rss_bases_mb"]

    # 4. leaderboard on 100k synthetic votes among 12 contestants
    rng = np.random.default_rng(0)
    names = [f"model-{i:02d}" for i in range(12)]
    strength = np.linspace(-1.5, 1.5, 12)
    pairs = rng.integers(0, 12, size=(100_000, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    p_a = 1 / (1 + np.exp(strength[pairs[:, 1]] - strength[pairs[:, 0]]))
    draws = rng.random(len(pairs))
    outcomes = np.where(draws < 0.1, "tie", np.where(draws < 0.1 + 0.9 * p_a, "model_a", "model_b"))
    battles = [RatedBattle(names[a], names[b], o) for (a, b), o in zip(pairs, outcomes, strict=True)]
    t0 = time.perf_counter()
    rows = leaderboard(battles, rounds=200, seed=0)
    results["leaderboard_100k_s"] = time.perf_counter() - t0
    results["leaderboard_votes"] = len(battles)
    assert rows[0].name == "model-11"

    print(
        f"battle (same base, up to {args.tokens} tokens each, {results['battle_tokens_a']}+{results['battle_tokens_b']} "
        f"generated): engine {results['battle_engine_s']:.2f} s vs naive "
        f"{results['battle_naive_s']:.2f} s -> {results['battle_ratio']:.2f}x (target <= 0.6x)"
    )
    print(
        f"adapter switch: {results['switch_median_ms']:.4f} ms vs reload {results['reload_median_ms']:.1f} ms "
        f"-> {results['switch_ratio']:.5f}x (target <= 1 ms); PEFT set_adapter "
        f"{results['peft_set_adapter_median_ms']:.2f} ms; routing by name instead costs "
        f"{results['routing_overhead_ms_per_token']:.1f} ms per token "
        f"(on {results['switched_ms_per_token']:.1f} ms per token)"
    )
    if "memory_ratio" in results:
        print(
            f"memory: all contestants {results['rss_all_contestants_mb']:.0f} MB vs bases alone "
            f"{results['rss_bases_mb']:.0f} MB -> {results['memory_ratio']:.2f}x (target <= 1.3x)"
        )
    print(
        f"leaderboard: Bradley-Terry + 200 bootstrap rounds on {len(battles):,} votes, 12 contestants: "
        f"{results['leaderboard_100k_s']:.2f} s (target < 2 s)"
    )
    out = ROOT / "bench" / "results" / "arena_bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({k: round(v, 5) for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()
