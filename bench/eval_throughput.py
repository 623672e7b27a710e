"""Evaluation throughput: batched generation vs one question at a time, and BERTScore wall time.

    python bench/eval_throughput.py [--questions 32] [--tokens 64] [--batch-sizes 8 16] \\
        [--data ../shared/data/medquad/medquad.jsonl]

Loads smollm2-135m once and answers the first 32 questions of the MedQuAD test split (the split
`python -m arena.evaluate` scores by default). It answers them one at a time (batch 1) and then in
batches of 8 and 16, with the same greedy settings (64 new tokens), and prints answers per second for
each and the batched/sequential ratio (target >= 2x). It then times BERTScore over the 32
(answer, reference) pairs with the offline scorer (all-MiniLM-L6-v2, layer 6). The scorer's load time
is reported separately. The figures, the machine's load average before and after, and how many batched
answers match the one-at-a-time ones are written to bench/results/eval_throughput.json. On a shared
machine, compare runs only when the load averages are alike.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from arena.eval.metrics import bertscore  # noqa: E402
from arena.eval.scoring_models import load_bert_scorer, resolve_scoring_model  # noqa: E402
from arena.serving.common import GeneratedAnswer, GenerationSettings  # noqa: E402
from arena.serving.peft_engine import ArenaEngine  # noqa: E402
from finetune.data import QARecord, load_dataset_source, split_records  # noqa: E402

MODEL = "smollm2-135m"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "medquad" / "medquad.jsonl"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=64, help="max new tokens per answer (greedy)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "eval_throughput.json")
    return parser.parse_args()


def timed_answers(
    engine: ArenaEngine,
    name: str,
    items: list[tuple[str, None]],
    settings: GenerationSettings,
    batch_size: int,
) -> tuple[list[GeneratedAnswer], float]:
    started = time.perf_counter()
    answers = engine.generate_answers(name, items, settings, batch_size=batch_size)
    return answers, time.perf_counter() - started


def main() -> int:
    args = parse_args()
    load_before = os.getloadavg()
    data = load_dataset_source(args.data)
    records = [r for r in split_records(data.records).test if isinstance(r, QARecord)][: args.questions]
    items: list[tuple[str, None]] = [(record.question, None) for record in records]
    settings = GenerationSettings(max_new_tokens=args.tokens)

    started = time.perf_counter()
    engine = ArenaEngine.start(model_keys=[MODEL], adapter_selection=[])
    load_s = time.perf_counter() - started
    name = engine.contestant_names()[0]
    # Warm-up, so the first timed mode does not pay for first-call allocations.
    engine.generate_answers(name, items[:2], GenerationSettings(max_new_tokens=4), batch_size=2)

    modes: dict[str, dict[str, float]] = {}
    sequential, sequential_s = timed_answers(engine, name, items, settings, batch_size=1)
    answers_by_mode = {"sequential": sequential}
    modes["sequential"] = {"wall_s": sequential_s}
    for batch_size in args.batch_sizes:
        answers, wall_s = timed_answers(engine, name, items, settings, batch_size=batch_size)
        answers_by_mode[f"batch_{batch_size}"] = answers
        modes[f"batch_{batch_size}"] = {"wall_s": wall_s}
    for mode, answers in answers_by_mode.items():
        figures = modes[mode]
        tokens = sum(answer.output_tokens for answer in answers)
        figures["answers_per_s"] = round(len(answers) / figures["wall_s"], 3)
        figures["output_tokens"] = tokens
        figures["tokens_per_s"] = round(tokens / figures["wall_s"], 2)
        figures["same_text_as_sequential"] = sum(
            a.text == b.text for a, b in zip(answers, sequential, strict=True)
        )
        figures["wall_s"] = round(figures["wall_s"], 2)
        figures["speedup_vs_sequential"] = round(
            figures["answers_per_s"] / modes["sequential"]["answers_per_s"], 2
        )

    started = time.perf_counter()
    scorer = load_bert_scorer(resolve_scoring_model("offline"))
    scorer_load_s = time.perf_counter() - started
    best_batched = max((m for m in modes if m != "sequential"), key=lambda m: modes[m]["answers_per_s"])
    candidates = [answer.text for answer in answers_by_mode[best_batched]]
    references = [record.answer for record in records]
    started = time.perf_counter()
    f1 = bertscore(candidates, references, scorer).f1
    bertscore_s = time.perf_counter() - started

    result = {
        "model": MODEL,
        "contestant": name,
        "data": data.source,
        "questions": len(items),
        "settings": settings.to_dict(),
        "engine_load_s": round(load_s, 2),
        "modes": modes,
        "best_batched_mode": best_batched,
        "best_speedup_vs_sequential": modes[best_batched]["speedup_vs_sequential"],
        "bertscore": {
            "scoring_model": f"{scorer.scoring_model.name}@L{scorer.scoring_model.num_layers}",
            "pairs": len(candidates),
            "load_s": round(scorer_load_s, 2),
            "score_wall_s": round(bertscore_s, 3),
            "mean_f1": round(sum(f1) / len(f1), 4),
        },
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(f"{len(items)} questions, {args.tokens} new tokens, greedy, {name}")
    for mode, figures in modes.items():
        print(
            f"  {mode:<11} {figures['answers_per_s']:.3f} answers/s  {figures['tokens_per_s']:.1f} tokens/s  "
            f"({figures['wall_s']:.1f} s, x{figures['speedup_vs_sequential']:.2f}, "
            f"{figures['same_text_as_sequential']}/{len(items)} same text as sequential)"
        )
    print(
        f"  best batched/sequential ratio: x{result['best_speedup_vs_sequential']:.2f} ({best_batched}; target >= 2)"
    )
    print(
        f"  BERTScore over {len(candidates)} pairs: {bertscore_s:.3f} s (scorer load {scorer_load_s:.1f} s), "
        f"mean F1 {result['bertscore']['mean_f1']}"
    )
    print(f"  load average before {result['load_average_before']}, after {result['load_average_after']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
