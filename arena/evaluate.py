"""Automatic evaluation: answer a data set with arena contestants, score it, store it beside the votes.

Results go to the `eval_results` table of the arena's own SQLite file (the one place the arena reads);
every answer goes to the `eval_cache` table first, so an interrupted run resumes and a repeated run
generates nothing. Answers come from the serving backend the arena uses (`--backend`, default
$MEDARENA_BACKEND or auto, exactly as app.py chooses), and every row records the served weights
(`weights`: `gguf-q4_1` on llama.cpp, `nf4` on the PEFT engine, `bf16`/`awq` on vLLM...): the board
shows a metric only beside the contestant served on those weights now. Answers use the arena's fixed generation settings (greedy, 128 new tokens) unless
`--max-new-tokens` says otherwise; the settings are stored as `gen.*` rows next to the metrics.

    python -m arena.evaluate --model smollm2-135m --data bundled                 # plain base, test split
    python -m arena.evaluate --model smollm2-135m --adapter latest --data bundled --data bundled-mcq
    python -m arena.evaluate --model smollm2-135m --adapter 20250101-120000 \\
        --data ../shared/data/medquad/medquad.jsonl --split test --limit 100
    python -m arena.evaluate --all --data bundled     # every contestant the arena shows
    python -m arena.evaluate --all --data bundled --backend vllm   # as `python app.py --backend vllm` serves
    python -m arena.evaluate --report --out results/  # eval_report.md/.csv/.png with base-vs-LoRA deltas,
                                                      # and the studies' table (studies.md/.csv/_<metric>.png)

Options: `--adapter RUN|latest|none` (default none), `--split test|validation|train|all` (default test
of the deterministic 80/10/10 split, so adapters are not scored on their training records),
`--limit N` (first N records of the split), `--db PATH` (default $MEDARENA_VOTES_DB or votes.db),
`--adapters-dir adapters`, `--batch-size 8`, `--max-new-tokens N`, `--mcq-scoring letter|loglik|both`
(loglik needs the PEFT engine's logits), `--backend auto|peft|vllm|llamacpp`. `--data` may be repeated.

Metrics. Free-text sets: BERTScore P/R/F1, embedding cosine and sentence-matched P/R/F1, ROUGE-1/2/L,
BLEU, exact match, token F1. Multiple-choice sets (`--mcq-scoring letter|loglik|both`, default letter):
accuracy, macro precision/recall/F1, unreadable_rate of the letters read from generated answers, and/or
`mcq_ll_*` from the option log-likelihood argmax (lm-evaluation-harness's method; arena/eval/mcq_loglik.py).
Each has a 95% percentile bootstrap interval (1000 rounds, seed 0). For an adapter, `paired_delta.*` rows
hold adapter − base on the same questions with a paired bootstrap interval (arena/eval/extras.py). Speed, over the answers generated in this run: ttft_s and
latency_s (medians per answer; an answer's latency is its batch's wall time), tokens_per_s (all output
tokens / generation wall time) and peak_rss_mb or peak_vram_mb; a run served wholly from the cache
measures no speed, and the report keeps showing the last measured one.

Bad input (unknown model or adapter, no usable records, a data set without reference answers, a scoring
model that cannot be loaded offline) prints one sentence on stderr, exits with status 2 and stores no
result rows.

This module is only the command line (parse -> run -> print). The work lives in: `arena.eval.data`
(load and split a data set), `arena.eval.runner` (cached answers, `run_evaluation(EvalRequest)`),
`arena.eval.scoring` (metrics over answers), `arena.eval.results` (pure readers the leaderboard uses)
and `arena.eval.report` (Markdown/CSV/PNG).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from arena.eval.data import SPLITS, EvaluationError
from arena.eval.extras import MCQ_SCORINGS
from arena.eval.report import write_report
from arena.eval.results import SETTING_PREFIX
from arena.eval.runner import (
    EVAL_BACKENDS,
    EngineStarter,
    EvalRequest,
    ScoredSet,
    run_evaluation,
    start_eval_backend,
)
from arena.eval.scoring_models import ScoringModelUnavailable
from arena.eval.studies_report import studies_markdown
from arena.serving.common import GenerationSettings
from arena.store.battles import ArenaStore, InvalidRecord, default_db_path
from finetune.data import DataError
from finetune.loading import BaseUnavailableError
from finetune.paths import project_paths
from finetune.registry import UnknownModelError
from finetune.scores import MetricInputError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def parse_args(argv: Sequence[str] | None, environ: Mapping[str, str] | None = None) -> argparse.Namespace:
    """The command line as documented above; `--data` is required unless `--report`."""
    import os

    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="python -m arena.evaluate", description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", metavar="KEY", help="registry key of the base to evaluate")
    which.add_argument("--all", action="store_true", help="every contestant the arena would show")
    which.add_argument(
        "--report", action="store_true", help="write eval_report.md/.csv/.png from the database"
    )
    parser.add_argument(
        "--adapter", default="none", metavar="RUN|latest|none", help="adapter run (default none)"
    )
    parser.add_argument(
        "--data",
        action="append",
        metavar="SOURCE",
        help="bundled, bundled-mcq, a .jsonl/.csv path or a hub set (repeatable)",
    )
    parser.add_argument("--split", default="test", choices=SPLITS, help="which split to score (default test)")
    parser.add_argument("--limit", type=_positive_int, help="score only the first N records of the split")
    parser.add_argument(
        "--db", type=Path, help="SQLite file (default $MEDARENA_VOTES_DB or the checkout's votes.db)"
    )
    parser.add_argument(
        "--adapters-dir",
        type=Path,
        help="adapter root (default $MEDARENA_ADAPTERS_DIR or the checkout's adapters/)",
    )
    parser.add_argument("--batch-size", type=_positive_int, default=8)
    parser.add_argument(
        "--max-new-tokens", type=_positive_int, help=f"default {GenerationSettings().max_new_tokens}"
    )
    parser.add_argument(
        "--mcq-scoring",
        choices=MCQ_SCORINGS,
        default="letter",
        help="multiple-choice sets: the letter read from a generated answer (default), the option "
        "log-likelihood argmax as lm-evaluation-harness scores it (nothing generated), or both",
    )
    parser.add_argument(
        "--backend",
        choices=EVAL_BACKENDS,
        default=env.get("MEDARENA_BACKEND", "auto"),
        help="the serving backend to answer with, chosen as app.py chooses it (default $MEDARENA_BACKEND "
        "or auto): what is scored is what the arena serves",
    )
    parser.add_argument("--out", type=Path, default=Path("results"), help="report folder (default results/)")
    args = parser.parse_args(argv)
    if not args.report and not args.data:
        parser.error("name the data to score with --data SOURCE")
    return args


def request_from_args(args: argparse.Namespace) -> EvalRequest:
    """The typed request the parsed flags describe."""
    return EvalRequest(
        data=tuple(args.data),
        model=args.model,
        adapter=args.adapter,
        split=args.split,
        limit=args.limit,
        adapters_dir=args.adapters_dir,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        show_progress=True,
        mcq_scoring=args.mcq_scoring,
        backend=args.backend,
    )


def _print_scored(scored: ScoredSet) -> None:
    eval_set, generated = scored.eval_set, scored.generated
    print(
        f"\n{scored.contestant} on {eval_set.label} ({eval_set.split}, n={len(eval_set.records)}): "
        f"generated {generated} new answer{'' if generated == 1 else 's'}, {scored.cached} from cache"
    )
    for value in scored.values:
        if value.metric.startswith(SETTING_PREFIX):
            continue
        interval = (
            f"[{value.ci_low:.3f}, {value.ci_high:.3f}]"
            if value.ci_low is not None and value.ci_high is not None
            else ""
        )
        print(f"  {value.metric:<22} {value.value:>9.3f}  {interval}")


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    start_engine: EngineStarter = start_eval_backend,
) -> int:
    """CLI entry point. `environ` (default os.environ) and `start_engine` (BackendOptions -> backend)
    are parameters for callers and tests."""
    args = parse_args(argv, environ)
    args.adapters_dir = args.adapters_dir or project_paths(environ).adapters_dir  # resolved once, here
    db_path = args.db or default_db_path(environ)
    opened: list[ArenaStore] = []

    def open_store() -> ArenaStore:
        if not opened:
            opened.append(ArenaStore(db_path))
        return opened[0]

    try:
        if args.report:
            if not Path(db_path).exists():
                raise EvaluationError(f"there is no database at {db_path}; run an evaluation first")
            results = open_store().eval_results()
            paths = write_report(results, args.out, args.adapters_dir)
            print(studies_markdown(results, args.adapters_dir))
            for path in paths:
                print(f"wrote {path}")
            return 0
        run = run_evaluation(
            request_from_args(args),
            store=open_store,
            environ=environ,
            start_engine=start_engine,
            notify=lambda note: print(f"note: {note}", file=sys.stderr),
        )
        for scored in run.scored:
            _print_scored(scored)
        store = open_store()
        store.add_eval_results(run.rows)  # one transaction: every row of the run, or none
        print(f"\nstored {len(run.rows)} result rows (run {run.run_id if run.rows else '-'}) in {store.path}")
        return 0
    except (
        UnknownModelError,
        BaseUnavailableError,
        DataError,
        EvaluationError,
        ScoringModelUnavailable,
        MetricInputError,
        InvalidRecord,
    ) as error:
        message = " ".join(str(error).split())
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; answers generated so far are cached, no result rows were stored", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
