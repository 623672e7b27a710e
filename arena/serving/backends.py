"""The one place that builds a serving backend (the interface they share: `arena.serving.protocol`).

Four implementations answer battles (`auto`, the app's default, picks llama.cpp on a CPU where it
is installed and starts, the fastest for one clinician there (bench/serve_bench.py); else vLLM where
it is installed and starts, else the PEFT engine):

- `peft`   (`arena.serving.peft_engine.ArenaEngine`): resident NF4 bases, adapters hot-swapped in PEFT, one
  compute thread. The 4-bit CPU path and the numerical reference.
- `vllm`   (`arena.serving.vllm_backend.VLLMBackend`): one in-process `AsyncLLM` per base; every adapter
  is a `LoRARequest`, and both sides of every concurrent battle share continuous batches.
- `llamacpp` (`arena.serving.llamacpp_backend.LlamaCppBackend`): every base its 4-bit GGUF, every adapter
  a GGUF LoRA on its own context over the shared weights; compiled for the host CPU.
- `remote` (`arena.serving.remote_backend.RemoteBackend`): any OpenAI-compatible server (a `vllm serve`
  cluster, llama.cpp's server, Ollama), contestants by URL and model name.

    python app.py --backend vllm
    python app.py --backend llamacpp
    python app.py --backend remote --remote http://10.0.0.5:8000/v1=demo,HuggingFaceTB/SmolLM2-135M-Instruct
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from arena.serving.common import GenerationSettings
from arena.serving.llamacpp_settings import LlamaCppSettings
from arena.serving.protocol import BACKENDS, ArenaBackend, PairUpdate
from arena.serving.vllm_config import VLLMSettings
from finetune.gpu import cuda_available
from finetune.paths import project_paths

# "auto": on a CPU llama.cpp where it is installed and starts; else vLLM when it is installed and
# starts; else PEFT (which is fastest where: bench/serve_bench.py, README "Serving backends").
BackendChoice = Literal["auto", "peft", "vllm", "llamacpp", "remote"]
BACKEND_CHOICES: tuple[BackendChoice, ...] = ("auto", *BACKENDS)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendOptions:
    """Everything app.py (or a bench) chooses about serving, validated once."""

    kind: BackendChoice = "auto"
    adapters_dir: Path = field(default_factory=lambda: project_paths().adapters_dir)
    model_keys: tuple[str, ...] | None = None
    adapter_selection: str | tuple[str, ...] = "latest"
    include_plain_bases: bool = True  # False: only the selected adapters (arena.evaluate of one adapter)
    # auto falls back from vLLM to PEFT when vLLM serves fewer than this many contestants: 2 for a
    # battle; 1 for arena.evaluate of one contestant, which must be scored where the arena serves it.
    min_served: int = 2
    remote: tuple[str, ...] = ()  # "URL=model[,model...]" specs, for kind="remote"
    vllm: VLLMSettings = field(default_factory=VLLMSettings)  # engine settings, for kind="vllm"
    llamacpp: LlamaCppSettings = field(default_factory=LlamaCppSettings)  # for kind="llamacpp"

    def __post_init__(self) -> None:
        if self.kind not in BACKEND_CHOICES:
            raise ValueError(f"unknown backend {self.kind!r}; valid: {', '.join(BACKEND_CHOICES)}")
        if self.kind == "remote" and not self.remote:
            raise ValueError("the remote backend needs at least one --remote URL=model[,model...]")


def start_backend(options: BackendOptions) -> ArenaBackend:
    """Build the backend `options.kind` names (imports its library only then)."""
    if options.kind == "remote":
        from arena.serving.remote_backend import RemoteBackend, parse_remote_specs

        return RemoteBackend.start(parse_remote_specs(options.remote))
    if options.kind == "auto":
        return start_fastest(
            options,
            llamacpp_installed=importlib.util.find_spec("llama_cpp") is not None,
            on_gpu=cuda_available(),
        )
    starters = {"vllm": start_vllm, "llamacpp": start_llamacpp, "peft": start_peft}
    return starters[options.kind](options)


def _engine_arguments(options: BackendOptions) -> dict[str, Any]:
    selection = options.adapter_selection
    return {
        "adapters_dir": options.adapters_dir,
        "model_keys": list(options.model_keys) if options.model_keys else None,
        "adapter_selection": selection if isinstance(selection, str) else list(selection),
        "include_plain_bases": options.include_plain_bases,
    }


def start_vllm(options: BackendOptions) -> ArenaBackend:
    """vLLM's multi-LoRA engine, one `AsyncLLM` per base."""
    from arena.serving.vllm_backend import VLLMBackend

    return VLLMBackend.start(**_engine_arguments(options), settings=options.vllm)


def start_llamacpp(options: BackendOptions) -> ArenaBackend:
    """llama.cpp on the GGUF bases, adapters as GGUF LoRAs."""
    from arena.serving.llamacpp_backend import LlamaCppBackend

    return LlamaCppBackend.start(**_engine_arguments(options), settings=options.llamacpp)


def start_vllm_or_peft(options: BackendOptions) -> ArenaBackend:
    """The choice between vLLM and the PEFT engine (`start_auto`), with vLLM's presence looked up."""
    return start_auto(options, vllm_installed=importlib.util.find_spec("vllm") is not None)


# Why auto prefers llama.cpp on a CPU, printed at start (figures: bench/results/serve_bench.json).
LLAMACPP_REASON = (
    "llama.cpp serves the 4-bit GGUF bases compiled for this CPU: the fastest backend here for one "
    "clinician's battle and the quickest to start (bench/serve_bench.py)"
)


def first_line(error: Exception) -> str:
    """Why a backend failed to start, in one line: its message's first line, else its type."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def start_fastest(
    options: BackendOptions,
    *,
    llamacpp_installed: bool,
    on_gpu: bool,
    llamacpp_starter: Callable[[BackendOptions], ArenaBackend] = start_llamacpp,
    fallback: Callable[[BackendOptions], ArenaBackend] = start_vllm_or_peft,
) -> ArenaBackend:
    """`auto`: llama.cpp on a CPU where it is installed and starts, else vLLM or PEFT (`start_auto`).

    On a GPU vLLM serves (its CUDA kernels outrun a CPU engine). A failed llama.cpp start is a
    start-up note; a missing llama.cpp is not. The choice and why are logged at start.
    """
    if on_gpu or not llamacpp_installed:
        log.info("auto: %s", "a GPU is present" if on_gpu else "llama-cpp-python is not installed")
        return fallback(options)
    try:
        backend = llamacpp_starter(options)
    except Exception as error:  # any failure to start llama.cpp: vLLM or PEFT still serve the arena
        reason = first_line(error)
    else:
        # llama.cpp serves a seed model only where its GGUF is at hand: too few contestants must
        # not leave an arena (or an evaluation) that refuses while vLLM or PEFT could serve them.
        reason = too_few_served(backend, options.min_served)
        if reason is None:
            log.info("auto: serving on llama.cpp: %s", LLAMACPP_REASON)
            return backend
        backend.close()
    log.warning("llama.cpp did not start (%s): choosing between vLLM and PEFT", reason)
    backend = fallback(options)
    backend.warnings.insert(0, f"serving on the {backend.kind} backend: llama.cpp did not start ({reason})")
    return backend


def too_few_served(backend: ArenaBackend, min_served: int) -> str | None:
    """Why `backend` serves too few contestants to be kept (naming the bases it skipped), or None."""
    served = len(backend.contestant_names())
    if served >= min_served:
        return None
    skipped = [(w.strip().splitlines() or [""])[0] for w in backend.warnings]
    needed = "a battle needs 2" if min_served == 2 else f"{min_served} asked for"
    reason = f"it served {served} contestant{'' if served == 1 else 's'}, {needed}"
    return reason + (f": {'; '.join(skipped)}" if skipped else "")


def start_peft(options: BackendOptions) -> ArenaBackend:
    """The PEFT/NF4 engine."""
    from arena.serving.peft_engine import ArenaEngine

    return ArenaEngine.start(**_engine_arguments(options))


def start_auto(
    options: BackendOptions,
    *,
    vllm_installed: bool,
    vllm_starter: Callable[[BackendOptions], ArenaBackend] = start_vllm,
    peft_starter: Callable[[BackendOptions], ArenaBackend] = start_peft,
) -> ArenaBackend:
    """vLLM where it is installed, the PEFT engine otherwise or when vLLM fails to start or
    starts fewer than `options.min_served` contestants (every base it skipped is named in the
    start-up note).

    A failed vLLM start is a start-up note (the arena still serves); a missing vLLM is not, since a
    CPU Space (requirements.txt) leaves it out on purpose.
    """
    if not vllm_installed:
        log.info("vLLM is not installed: serving on the PEFT engine")
        return peft_starter(options)
    try:
        started = vllm_starter(options)
    except Exception as error:  # any failure to start vLLM: the PEFT engine still serves the arena
        reason = first_line(error)
    else:
        # A battle needs two contestants: vLLM skipping bases it cannot serve must not leave an
        # arena that refuses every battle while PEFT could serve them.
        reason = too_few_served(started, options.min_served)
        if reason is None:
            return started
        started.close()
    log.warning("vLLM did not start (%s): serving on the PEFT engine", reason)
    backend = peft_starter(options)
    backend.warnings.insert(0, f"serving on the PEFT engine: vLLM did not start ({reason})")
    return backend


@dataclass(frozen=True)
class BattleResult:
    """One finished battle of `stream_many`, with when its updates came (for benches)."""

    index: int
    final: PairUpdate
    requested_at: float
    finished_at: float


def stream_many(
    backend: ArenaBackend,
    battles: Sequence[tuple[str, str, str]],
    settings: GenerationSettings,
) -> list[BattleResult]:
    """Run many (question, name_a, name_b) battles at once, as concurrent clinicians would: one
    thread per battle, all clicked at the same moment. The PEFT engine queues them on its compute
    thread; vLLM and remote servers batch them continuously."""
    results: list[BattleResult | None] = [None] * len(battles)
    errors: list[BaseException] = []
    clicked = time.perf_counter()

    def run(index: int, question: str, name_a: str, name_b: str) -> None:
        try:
            last = deque(
                backend.stream_pair(question, name_a, name_b, settings, requested_at=clicked), maxlen=1
            )
            final = last[0]
            results[index] = BattleResult(index, final, clicked, time.perf_counter())
        except BaseException as error:  # surfaced to the caller below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i, *battle)) for i, battle in enumerate(battles)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [result for result in results if result is not None]
