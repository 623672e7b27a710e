"""Serving benchmark: the PEFT/NF4 engine vs the vLLM backend on the embedded bases, one run each.

Each backend runs in a fresh process (clean start-up time and RSS) with the committed
adapters, and every answer is exactly `--tokens` long (min = max new tokens, greedy). Three
probes: `peft`, `vllm` (its CPU engines computing LoRA per adapter slot, `arena/vllm_cpu_lora.py`,
the default) and `vllm-stock-lora` (the same engines with vLLM's own CPU LoRA ops), so what the
LoRA ops change is measured in the same run:

1. start-up: `start_backend` until every contestant is served;
2. one battle: SmolLM2 + its adapter vs the SmolLM2 base, wall time (median of `--repeats`);
3. 8 concurrent battles (16 sequences, same pair): total tokens/s, p95 time to first token from
   the click, slowest battle;
4. contestants on different bases (SmolLM2 adapter vs Gemma-3 base): gap between the two sides'
   first tokens;
5. RSS of the serving process tree.

Targets (issue #11): 8 battles on vLLM >= 3x the engine's tokens/s; one vLLM battle <= 1.2x the
engine's wall time; different bases start streaming within 1 s of each other.

    python bench/serve_bench.py                   # ~8 min on 2 cores; JSON in bench/results/
    python bench/serve_bench.py --tokens 128 --battles 8
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTION = "What is the first-line treatment for uncomplicated hypertension?"
QUESTIONS = [
    QUESTION,
    "What are the early signs of sepsis in adults?",
    "How is iron-deficiency anaemia diagnosed?",
    "When should a child with a fever see a doctor?",
    "What are the side effects of metformin?",
    "How is community-acquired pneumonia treated?",
    "What are the symptoms of hypothyroidism?",
    "How can type 2 diabetes be prevented?",
]


def pick(names: list[str], model: str, adapter: bool) -> str:
    wanted = "LoRA" if adapter else "· base ·"
    return next(n for n in names if model in n and wanted in n)


PROBES = ("peft", "vllm", "vllm-stock-lora")


def probe(kind: str, tokens: int, battles: int, repeats: int) -> dict[str, float]:
    """Everything for one backend, measured in this (fresh) process."""
    from arena.backend import BackendOptions, start_backend, stream_many
    from arena.engine import GenerationSettings
    from arena.vllm_config import VLLMSettings, process_tree_rss_mb

    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    options = BackendOptions(
        kind="peft" if kind == "peft" else "vllm",
        adapters_dir=ROOT / "adapters",
        vllm=VLLMSettings(cpu_lora_ops="vllm" if kind == "vllm-stock-lora" else "row_mask"),
    )
    backend = start_backend(options)
    startup_s = time.perf_counter() - started
    names = backend.contestant_names()
    adapter, base = pick(names, "SmolLM2", True), pick(names, "SmolLM2", False)
    other_base = pick(names, "Gemma-3", False)
    settings = GenerationSettings(max_new_tokens=tokens, min_new_tokens=tokens)
    warm = GenerationSettings(max_new_tokens=4, min_new_tokens=4)
    stream_many(backend, [("warm-up", adapter, base), ("warm-up", adapter, other_base)], warm)

    ones = [stream_many(backend, [(QUESTION, adapter, base)], settings)[0] for _ in range(repeats)]
    one_times = [one.finished_at - one.requested_at for one in ones]
    one, one_s = ones[0], statistics.median(one_times)

    many = stream_many(
        backend, [(QUESTIONS[i % len(QUESTIONS)], adapter, base) for i in range(battles)], settings
    )
    wall = max(r.finished_at for r in many) - min(r.requested_at for r in many)
    # A side the backend gave up on (the PEFT engine's stall timeout voids a side queued with no
    # output for 120 s) has no telemetry: it adds no tokens and counts as voided.
    sides = [s for r in many for s in (r.final.a, r.final.b)]
    answered = [s.telemetry for s in sides if s.telemetry is not None and not s.error]
    total_tokens = sum(t.output_tokens for t in answered)
    first_tokens = sorted(t.first_token_s for t in answered) or [float("nan")]
    p95 = first_tokens[min(len(first_tokens) - 1, round(0.95 * (len(first_tokens) - 1)))]

    mixed = stream_many(backend, [(QUESTION, adapter, other_base)], settings)[0].final
    gap = abs(mixed.a.telemetry.first_token_s - mixed.b.telemetry.first_token_s)
    result = {
        "startup_s": round(startup_s, 2),
        "one_battle_s": round(one_s, 2),
        "one_battle_runs_s": [round(t, 2) for t in one_times],
        "one_battle_tokens": one.final.a.telemetry.output_tokens + one.final.b.telemetry.output_tokens,
        "many_wall_s": round(wall, 2),
        "many_tokens_per_s": round(total_tokens / wall, 2),
        "many_tokens": total_tokens,
        "many_voided_sides": len(sides) - len(answered),
        "many_p95_first_token_s": round(p95, 3),
        "many_median_first_token_s": round(statistics.median(first_tokens), 3),
        "many_slowest_battle_s": round(max(r.finished_at - r.requested_at for r in many), 2),
        "different_bases_first_token_gap_s": round(gap, 3),
        "different_bases_first_token_s": [mixed.a.telemetry.first_token_s, mixed.b.telemetry.first_token_s],
        "rss_mb": round(process_tree_rss_mb(), 1),
        # The machine is shared: the 1-minute load average before and after this backend's probe.
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    backend.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per answer (min = max)")
    parser.add_argument("--battles", type=int, default=8, help="concurrent battles")
    parser.add_argument("--repeats", type=int, default=3, help="one-battle runs (the median is reported)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "serve_bench.json")
    parser.add_argument("--probe", choices=PROBES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print("RESULT " + json.dumps(probe(args.probe, args.tokens, args.battles, args.repeats)), flush=True)
        return 0

    results: dict[str, dict[str, float]] = {}
    for kind in PROBES:
        command = [
            sys.executable,
            __file__,
            "--probe",
            kind,
            "--tokens",
            str(args.tokens),
            "--battles",
            str(args.battles),
            "--repeats",
            str(args.repeats),
        ]
        run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)
        lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
        if run.returncode != 0 or not lines:
            print(f"{kind} probe failed:\n{run.stderr[-3000:]}", file=sys.stderr)
            return 1
        results[kind] = json.loads(lines[-1][len("RESULT ") :])
        print(kind, results[kind], flush=True)

    peft, vllm, stock = results["peft"], results["vllm"], results["vllm-stock-lora"]

    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    ratios = {
        "many_tokens_per_s_vllm_over_peft": round(vllm["many_tokens_per_s"] / peft["many_tokens_per_s"], 2),
        "one_battle_vllm_over_peft": round(vllm["one_battle_s"] / peft["one_battle_s"], 2),
        "p95_first_token_vllm_over_peft": round(
            vllm["many_p95_first_token_s"] / peft["many_p95_first_token_s"], 2
        ),
        "slowest_battle_vllm_over_peft": round(
            vllm["many_slowest_battle_s"] / peft["many_slowest_battle_s"], 2
        ),
        "startup_vllm_over_peft": round(vllm["startup_s"] / peft["startup_s"], 2),
        "rss_vllm_over_peft": round(vllm["rss_mb"] / peft["rss_mb"], 2),
        # What the per-slot LoRA ops changed (arena/vllm_cpu_lora.py vs vLLM's own, same run).
        "one_battle_stock_lora_over_peft": round(stock["one_battle_s"] / peft["one_battle_s"], 2),
        "one_battle_vllm_over_stock_lora": round(vllm["one_battle_s"] / stock["one_battle_s"], 2),
        "many_tokens_per_s_vllm_over_stock_lora": round(
            vllm["many_tokens_per_s"] / stock["many_tokens_per_s"], 2
        ),
    }
    print(f"\n{args.battles} concurrent battles, {args.tokens} tokens a side:")
    print(
        f"  tokens/s  peft {peft['many_tokens_per_s']}  vllm {vllm['many_tokens_per_s']}  "
        f"ratio {ratios['many_tokens_per_s_vllm_over_peft']}x (target >= 3x: "
        f"{met(ratios['many_tokens_per_s_vllm_over_peft'] >= 3)})"
    )
    print(
        f"  voided sides     peft {peft['many_voided_sides']}  vllm {vllm['many_voided_sides']} (of {2 * args.battles})"
    )
    print(
        f"  p95 first token  peft {peft['many_p95_first_token_s']} s  vllm {vllm['many_p95_first_token_s']} s"
    )
    print(
        f"  slowest battle   peft {peft['many_slowest_battle_s']} s  vllm {vllm['many_slowest_battle_s']} s"
    )
    print(
        f"one battle: peft {peft['one_battle_s']} s  vllm {vllm['one_battle_s']} s  "
        f"ratio {ratios['one_battle_vllm_over_peft']}x (target <= 1.2x: "
        f"{met(ratios['one_battle_vllm_over_peft'] <= 1.2)})"
    )
    print(
        f"vLLM's own CPU LoRA ops instead (vllm-stock-lora): one battle {stock['one_battle_s']} s "
        f"({ratios['one_battle_stock_lora_over_peft']}x peft; per-slot ops "
        f"{ratios['one_battle_vllm_over_stock_lora']}x its time), 8 battles {stock['many_tokens_per_s']} "
        f"tok/s (per-slot ops {ratios['many_tokens_per_s_vllm_over_stock_lora']}x)"
    )
    for kind in ("peft", "vllm"):
        print(
            f"different bases ({kind}): first tokens {results[kind]['different_bases_first_token_s']} s, "
            f"gap {results[kind]['different_bases_first_token_gap_s']} s (target <= 1 s: "
            f"{met(results[kind]['different_bases_first_token_gap_s'] <= 1)})"
        )
    print(
        f"start-up: peft {peft['startup_s']} s  vllm {vllm['startup_s']} s; "
        f"RSS: peft {peft['rss_mb']} MB  vllm {vllm['rss_mb']} MB (process tree)"
    )
    print(
        f"load average (1 min) before/after each probe: peft {peft['load_average_1min']}  "
        f"vllm {vllm['load_average_1min']}  vllm-stock-lora {stock['load_average_1min']} "
        f"on {os.cpu_count()} cores"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"tokens": args.tokens, "battles": args.battles, **results, "ratios": ratios}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
