"""MedArena: blind side-by-side battles between medical LLMs, rated by clinicians.

    python app.py                                   # embedded offline default on http://127.0.0.1:7860
    python app.py --backend peft                    # the PEFT/NF4 engine even where vLLM is installed
    python app.py --host 0.0.0.0 --port 7860 --share
    python app.py --models smollm2-135m gemma3-270m --adapters adapters --adapter-selection all
    python app.py --backend vllm                    # vLLM's multi-LoRA engine, or fail (no fallback)
    python app.py --backend llamacpp                # llama.cpp on the 4-bit GGUFs, or fail (no fallback)
    python app.py --backend remote --remote http://10.0.0.5:8000/v1=smollm2,demo   # OpenAI-compatible servers

Host, port, share and answer length also come from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT /
MEDARENA_SHARE / MEDARENA_MAX_NEW_TOKENS; the vote database from MEDARENA_VOTES_DB, or
a Postgres server shared by several replicas from MEDARENA_VOTES_URL / --votes-url. On a Hugging Face
Space (SPACE_ID set) votes go to /data/votes.db when persistent storage is mounted, and to the dataset
MEDARENA_VOTES_DATASET (with HF_TOKEN) when that is set; see arena/space/sync.py and the README's
"Hugging Face Space" section.
The backend comes from MEDARENA_BACKEND (default auto: on a CPU llama.cpp where it is installed and
starts; else vLLM where it is installed and starts, else the PEFT engine), remote contestants from MEDARENA_REMOTE (space-separated URL=models).
At start, the board's automatic metrics missing for the served weights are measured in the background
(arena/eval/auto_metrics.py; --no-auto-metrics or MEDARENA_AUTO_METRICS=0 turns that off).
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import signal
import sys
from pathlib import Path

from arena.follow_ups import FollowUpSettings
from arena.judgement import add_judgement_flags, judgement_from_args
from arena.pacing import CPU_ANSWER_BUDGET, CPU_ANSWER_BUDGETS, GPU_ANSWER_BUDGET, default_answer_budget
from arena.service import ArenaService, ReferenceScorer
from arena.serving.backends import BACKEND_CHOICES, BackendOptions, start_backend
from arena.serving.common import GenerationSettings
from arena.serving.protocol import ArenaBackend
from arena.space.sync import SPACE_ENV, open_vote_storage
from finetune.data import load_dataset_source
from finetune.paths import project_paths
from finetune.registry import UnknownModelError, chosen_models


def _cuda_available() -> bool:
    """Whether the answers will be generated on a CUDA GPU (False where torch is not installed)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The app's flags, with defaults from MEDARENA_* environment variables."""
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=env.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=int(env.get("GRADIO_SERVER_PORT", env.get("PORT", "7860")))
    )
    parser.add_argument("--share", action="store_true", default=env.get("MEDARENA_SHARE", "") == "1")
    parser.add_argument(
        "--db", type=Path, default=None, help="vote database (default: $MEDARENA_VOTES_DB or ./votes.db)"
    )
    parser.add_argument(
        "--votes-url",
        default=None,
        help="postgresql://... vote store shared by app replicas (default: $MEDARENA_VOTES_URL; else SQLite)",
    )
    parser.add_argument(
        "--adapters",
        type=Path,
        default=project_paths().adapters_dir,
        help="adapter root folder (default $MEDARENA_ADAPTERS_DIR or the checkout's adapters/)",
    )
    parser.add_argument(
        "--adapter-selection", default="latest", help="latest, all, or comma-separated model/run-id"
    )
    parser.add_argument(
        "--models",
        nargs="*",
        default=None,
        help="registry keys, space- or comma-separated (default: $MEDARENA_MODELS, else every base available here)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default=env.get("MEDARENA_BACKEND", "auto"),
        help="auto (default): llamacpp on a CPU where installed, else vllm where installed, else peft; "
        "llamacpp: 4-bit GGUF bases + GGUF LoRAs; peft: NF4 bases + PEFT; vllm: vLLM multi-LoRA engine; "
        "remote: OpenAI-compatible servers",
    )
    parser.add_argument(
        "--remote",
        nargs="*",
        default=env.get("MEDARENA_REMOTE", "").split(),
        metavar="URL=MODEL[,MODEL]",
        help="remote contestants, e.g. http://host:8000/v1=smollm2,demo (with --backend remote)",
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help=f"answer budget in new tokens (default {GPU_ANSWER_BUDGET} on a GPU; on a CPU "
        + ", ".join(f"{budget} on {kind}" for kind, budget in CPU_ANSWER_BUDGETS.items())
        + f", else {CPU_ANSWER_BUDGET}: about a 10 s battle; MEDARENA_MAX_NEW_TOKENS)",
    )
    parser.add_argument(
        "--no-reference-scoring", action="store_true", help="skip BERTScore of bank answers at battle time"
    )
    parser.add_argument(
        "--no-auto-metrics",
        dest="auto_metrics",
        action="store_false",
        default=env.get("MEDARENA_AUTO_METRICS", "1") != "0",
        help="do not measure the board's missing automatic metrics on the served weights at start "
        "(MEDARENA_AUTO_METRICS=0)",
    )
    add_judgement_flags(parser, env)
    args = parser.parse_args(argv)
    if args.max_new_tokens is None and env.get("MEDARENA_MAX_NEW_TOKENS"):
        args.max_new_tokens = int(env["MEDARENA_MAX_NEW_TOKENS"])  # else: the serving backend's default
    try:  # unknown keys fail here, listing the valid ones, before any model loads
        chosen = chosen_models([k for arg in args.models for k in arg.split(",")] if args.models else None)
    except UnknownModelError as error:
        parser.error(str(error))
    args.models = [spec.key for spec in chosen] if chosen else None
    return args


def reference_scorer(engine: ArenaBackend) -> ReferenceScorer | None:
    """BERTScore F1 against the bank's reference answer, for the metric-human agreement figure.

    The scorer is loaded and run where the backend runs torch work (the PEFT engine's compute thread).
    """
    from arena.eval.metrics import bertscore
    from arena.eval.scoring_models import ScoringModelUnavailable, load_bert_scorer, resolve_scoring_model

    try:
        scorer = engine.compute(load_bert_scorer, resolve_scoring_model())
    except ScoringModelUnavailable as error:
        logging.warning("battle-time BERTScore is off: %s", error)
        return None
    return lambda answers, references: engine.compute(bertscore, answers, references, scorer).f1


def build_service(args: argparse.Namespace) -> ArenaService:
    """Open the vote storage, start the chosen backend and wrap both in an ArenaService."""
    selection = (
        args.adapter_selection
        if args.adapter_selection in {"latest", "all"}
        else args.adapter_selection.split(",")
    )
    notices: list[str] = []
    if os.environ.get(SPACE_ENV):
        from arena.space.embedded import fetch_missing_embedded

        notices.extend(fetch_missing_embedded())
    # Votes: /data on a Space with persistent storage, restored from and pushed to a dataset if configured.
    storage = open_vote_storage(os.environ, db_path=args.db, votes_url=args.votes_url)
    atexit.register(storage.close)  # last push of the votes when the Space stops
    engine = start_backend(
        BackendOptions(
            kind=args.backend,
            adapters_dir=args.adapters,
            model_keys=tuple(args.models) if args.models else None,
            adapter_selection=selection if isinstance(selection, str) else tuple(selection),
            remote=tuple(args.remote or ()),
        )
    )
    bank = load_dataset_source("bundled").records
    return ArenaService(
        engine,
        storage.store,
        bank,
        settings=GenerationSettings(
            max_new_tokens=args.max_new_tokens or default_answer_budget(_cuda_available(), engine.kind)
        ),
        reference_scorer=None if args.no_reference_scoring else reference_scorer(engine),
        notices=[*storage.warnings, *notices],
        judgement=judgement_from_args(args, storage.store, bank, os.environ),
        follow_ups=FollowUpSettings(max_turns=int(args.max_follow_ups)),
    )


def main(argv: list[str] | None = None) -> int:
    """Start the arena: parse flags, build the service and UI, serve until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    # A Space stops its container with SIGTERM: exit normally so atexit pushes the last votes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from arena.ui import build_ui

    try:
        service = build_service(args)
    except (ValueError, RuntimeError) as error:  # a bad flag or an unavailable backend: one sentence
        print(f"MedArena could not start: {error}", file=sys.stderr)
        return 2
    atexit.register(service.close)  # stop the heartbeat: another arena on this database may void our battles
    if args.auto_metrics:
        service.start_auto_metrics()  # in the background; the board says so while it runs
    for warning in service.warnings:
        logging.warning(warning)
    engine = service.engine
    print(
        f"MedArena: {len(engine.contestant_names())} contestants on the {engine.kind} backend; "
        f"votes in {service.store.location}",
        flush=True,
    )
    demo = build_ui(service)
    demo.queue(default_concurrency_limit=engine.concurrent_battles).launch(
        server_name=args.host, server_port=args.port, share=args.share
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
