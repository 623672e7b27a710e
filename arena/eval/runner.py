"""The cached answer runner: resolve the contestant, answer every record (cache first), score, return rows.

`run_evaluation` takes a typed `EvalRequest`, prints nothing (notes go to a callback, the progress bar
only when asked) and returns the rows for the caller to store in one transaction; `python -m
arena.evaluate` is its command line. Answers come from the serving backend the arena uses
(`EvalRequest.backend`, started by `arena.serving.backends.start_backend` as app.py starts it), so what is
scored is what is served: every row and cached answer records the served weights
(`Contestant.weights`, e.g. `gguf-q4_1`, `nf4`, `bf16`), and the board matches them.

    from arena.eval.runner import EvalRequest, run_evaluation
    run = run_evaluation(EvalRequest(model="smollm2-135m", data=("bundled",), limit=5, backend="llamacpp"),
                         store=ArenaStore(path), environ=None, start_engine=start_eval_backend)

Run as: python -m arena.evaluate --model smollm2-135m --data bundled --limit 5
"""

from __future__ import annotations

import hashlib
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from tqdm import tqdm

from arena.adapters import AdapterInfo, Contestant, discover_adapters, latest_runs
from arena.eval import scoring_models
from arena.eval.data import SPLITS, EvalSet, EvaluationError, UnknownAdapterError, load_eval_set
from arena.eval.extras import MCQ_SCORINGS, McqScoring, cached_base_answers, extra_metrics, generates_answers
from arena.eval.scoring import (
    MetricValue,
    Scorers,
    SpeedFigures,
    free_text_metrics,
    load_scorers,
    mcq_quality_metrics,
    result_rows,
    setting_metrics,
    speed_metrics,
)
from arena.serving.backends import BackendChoice, BackendOptions
from arena.serving.common import GeneratedAnswer, GenerationSettings, peak_memory_mb
from arena.serving.protocol import BackendKind
from arena.store.battles import ArenaStore, eval_cache_key
from finetune.data import MCQRecord, QARecord, Record, reference_text
from finetune.loading import BaseUnavailableError, availability
from finetune.paths import project_paths
from finetune.prompt import MCQ_INSTRUCTION, PROMPT_RENDERING, SYSTEM_PROMPT, final_answer, user_text
from finetune.registry import get_model

Split = Literal["test", "validation", "train", "all"]
# The backends an evaluation can answer with (a remote server's weights are not ours to name).
EVAL_BACKENDS: tuple[BackendChoice, ...] = ("auto", "peft", "vllm", "llamacpp")


class EvalBackend(Protocol):
    """What an evaluation needs from a serving backend (the PEFT engine, vLLM, llama.cpp)."""

    kind: ClassVar[BackendKind]
    warnings: list[str]

    def contestants(self) -> list[Contestant]: ...

    def generate_answers(
        self,
        name: str,
        items: Sequence[tuple[str, dict[str, str] | None]],
        settings: GenerationSettings,
        *,
        batch_size: int = 8,
    ) -> list[GeneratedAnswer]: ...

    def chat_template(self, name: str) -> str | None: ...

    def serving_device(self, name: str) -> str: ...

    def close(self) -> None: ...


EngineStarter = Callable[[BackendOptions], EvalBackend]


def start_eval_backend(options: BackendOptions) -> EvalBackend:
    """The backend app.py starts for these options (`arena.serving.backends.start_backend`); the PEFT engine,
    vLLM and llama.cpp each implement `EvalBackend`."""
    from arena.serving.backends import start_backend

    return start_backend(options)  # type: ignore[return-value]


@dataclass(frozen=True)
class EvalRequest:
    """One evaluation: a model (with `adapter`) or every contestant (`model=None`), on one or more data sets."""

    data: tuple[str, ...]
    model: str | None = None  # None: every contestant the arena would show, latest adapter each
    adapter: str = "none"  # RUN id, "latest" or "none"; only with `model`
    split: Split = "test"
    limit: int | None = None
    adapters_dir: Path = field(default_factory=lambda: project_paths().adapters_dir)
    batch_size: int = 8
    max_new_tokens: int | None = None
    show_progress: bool = False  # a tqdm bar on stderr per contestant and data set
    # How multiple-choice sets are scored: the letter read from a generated answer, the option
    # log-likelihood argmax (lm-eval's method, nothing generated), or both.
    mcq_scoring: McqScoring = "letter"
    # The serving backend, as app.py's --backend (auto: llama.cpp on a CPU where installed, else vLLM
    # where installed, else PEFT); log-likelihood MCQ scoring needs the PEFT engine's logits.
    backend: BackendChoice = "auto"
    # Without `model`: only these stable ids of the served contestants (empty: every one); the
    # board's automatic metrics at first start measure just the contestants it lacks.
    contestants: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.data:
            raise EvaluationError("name the data to score with --data SOURCE")
        if self.backend not in EVAL_BACKENDS:
            raise EvaluationError(f"unknown backend {self.backend!r}; use one of {', '.join(EVAL_BACKENDS)}")
        if self.split not in SPLITS:
            raise EvaluationError(f"unknown split {self.split!r}; use one of {', '.join(SPLITS)}")
        if self.mcq_scoring not in MCQ_SCORINGS:
            raise EvaluationError(
                f"unknown MCQ scoring {self.mcq_scoring!r}; use one of {', '.join(MCQ_SCORINGS)}"
            )
        for name, value in (
            ("limit", self.limit),
            ("batch_size", self.batch_size),
            ("max_new_tokens", self.max_new_tokens),
        ):
            if value is not None and value < 1:
                raise EvaluationError(f"{name} must be at least 1, got {value}")

    @property
    def settings(self) -> GenerationSettings:
        """The arena's generation settings, with `max_new_tokens` overridden when given."""
        if self.max_new_tokens:
            return GenerationSettings(max_new_tokens=self.max_new_tokens)
        return GenerationSettings()


@dataclass(frozen=True)
class ScoredSet:
    """One contestant's answers to one data set and the metric values computed from them."""

    contestant: str
    eval_set: EvalSet
    generated: int
    cached: int
    values: list[MetricValue]


@dataclass(frozen=True)
class EvaluationRun:
    """What `run_evaluation` returns: the result rows (not yet stored) and what was scored."""

    run_id: str
    rows: list[dict[str, Any]]
    scored: list[ScoredSet]


# --------------------------------------------------------------------------- contestants


def resolve_adapter(model_key: str, choice: str, adapters_dir: Path) -> AdapterInfo | None:
    """`none` -> None (the plain base), `latest` -> the newest run, else the run with that id."""
    if choice == "none":
        return None
    runs = [info for info in discover_adapters(adapters_dir)[0] if info.model_key == model_key]
    if choice == "latest":
        newest = latest_runs(runs).get(model_key)
        if newest is None:
            raise UnknownAdapterError(
                f"there is no adapter for {model_key} under {adapters_dir}; train one with "
                f"`python -m finetune --model {model_key}` or use --adapter none"
            )
        return newest
    for info in runs:
        if info.run_id == choice:
            return info
    available = ", ".join(sorted(info.run_id for info in runs)) or "none"
    raise UnknownAdapterError(
        f"{model_key} has no adapter run {choice!r} under {adapters_dir}; runs available: {available}"
    )


def find_contestant(engine: EvalBackend, model_key: str, adapter_run: str | None) -> Contestant:
    """The started engine's contestant for this base and adapter run, or why the engine could not load it."""
    for contestant in engine.contestants():
        if contestant.model_key == model_key and contestant.adapter_run == adapter_run:
            return contestant
    what = f"{model_key} with adapter {adapter_run}" if adapter_run else f"the plain {model_key} base"
    detail = "; ".join(engine.warnings) or "no reason given"
    raise EvaluationError(f"the engine could not load {what} ({detail})")


def prompt_template_id(chat_template: str | None) -> str:
    """Names the prompt as the model sees it: the system text, the MCQ instruction and the chat template."""
    payload = json.dumps(
        [SYSTEM_PROMPT, MCQ_INSTRUCTION, chat_template or "", PROMPT_RENDERING], ensure_ascii=False
    )
    return "medarena-prompt-" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class AnswerSet:
    """One contestant's answers to a data set, how many were generated now and how many came from the cache."""

    answers: list[str]
    generated: int
    cached: int
    speed: SpeedFigures | None  # None when every answer came from the cache


def answer_records(
    engine: EvalBackend,
    contestant: Contestant,
    records: Sequence[Record],
    settings: GenerationSettings,
    store: ArenaStore,
    *,
    batch_size: int,
    progress_label: str | None = None,
) -> AnswerSet:
    """Every record's answer: cached ones looked up first, the rest generated in batches and cached per batch.

    A progress bar goes to stderr only when `progress_label` is given.
    """
    template_id = prompt_template_id(engine.chat_template(contestant.name))
    settings_dict = settings.to_dict()
    keys = [  # the served weights are part of the key: other weights' answers are never reused
        eval_cache_key(contestant.served_as, template_id, settings_dict, user_text(r.question, r.options))
        for r in records
    ]
    answers: dict[int, str] = {}
    for index, key in enumerate(keys):
        hit = store.cache_get(key)
        if hit is not None:
            answers[index] = hit["answer"]
    missing = sorted(
        (i for i in range(len(records)) if i not in answers),
        key=lambda i: len(user_text(records[i].question, records[i].options)),
    )
    if not missing:
        return AnswerSet([answers[i] for i in range(len(records))], 0, len(records), None)

    speed = _generate_missing(
        engine, contestant, records, missing, keys, answers, settings, store, batch_size, progress_label
    )
    return AnswerSet(
        [answers[i] for i in range(len(records))], len(missing), len(records) - len(missing), speed
    )


def _generate_missing(
    engine: EvalBackend,
    contestant: Contestant,
    records: Sequence[Record],
    missing: Sequence[int],
    keys: Sequence[str],
    answers: dict[int, str],
    settings: GenerationSettings,
    store: ArenaStore,
    batch_size: int,
    progress_label: str | None,
) -> SpeedFigures:
    """Generate the `missing` records' answers into `answers`, caching each batch; speed over this run."""
    ttfts: list[float] = []
    latencies: list[float] = []
    output_tokens = 0
    wall_s = 0.0
    peak_mb, memory_kind = 0.0, "rss"
    device = engine.serving_device(contestant.name)
    bar = tqdm(
        total=len(missing),
        desc=progress_label,
        unit="answer",
        file=sys.stderr,
        disable=progress_label is None,
    )
    with bar:
        # Batch by batch, so that each batch is in the cache before the next one starts.
        for start in range(0, len(missing), batch_size):
            chunk = missing[start : start + batch_size]
            items = [(records[i].question, records[i].options) for i in chunk]
            started = time.perf_counter()
            generated = engine.generate_answers(contestant.name, items, settings, batch_size=batch_size)
            wall_s += time.perf_counter() - started
            batch_peak, memory_kind = peak_memory_mb(device)
            peak_mb = max(peak_mb, batch_peak)
            for index, answer in zip(chunk, generated, strict=True):
                store.cache_put(
                    keys[index],
                    {
                        "contestant": contestant.name,
                        "contestant_id": contestant.id,
                        "weights": contestant.weights or None,
                        "question_id": records[index].id,
                        "answer": answer.text,
                        "output_tokens": answer.output_tokens,
                        "latency_s": answer.latency_s,
                        "ttft_s": answer.ttft_s,
                    },
                )
                answers[index] = answer.text
                ttfts.append(answer.ttft_s)
                latencies.append(answer.latency_s)
                output_tokens += answer.output_tokens
            bar.update(len(chunk))
    return SpeedFigures(
        ttft_s=statistics.median(ttfts),
        latency_s=statistics.median(latencies),
        tokens_per_s=output_tokens / wall_s if wall_s > 0 else 0.0,
        peak_memory_mb=peak_mb,
        memory_kind=memory_kind,
        answers=len(missing),
    )


def adapter_trained_on(adapter: AdapterInfo, eval_set: EvalSet) -> bool:
    """Whether the adapter's run.json names the same data source (its train split is then in `all`/`train`)."""
    try:
        run = json.loads((adapter.path / "run.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    trained_on = str(run.get("data", {}).get("source", ""))
    return bool(trained_on) and (
        trained_on == eval_set.source or Path(trained_on).resolve() == Path(eval_set.source).resolve()
    )


def run_evaluation(
    request: EvalRequest,
    *,
    store: ArenaStore | Callable[[], ArenaStore],
    environ: Mapping[str, str] | None,
    start_engine: EngineStarter,
    notify: Callable[[str], None] = lambda _note: None,
) -> EvaluationRun:
    """Check everything cheap, load the base(s), answer, score; returns the rows (stored by the caller)."""
    adapter: AdapterInfo | None = None
    if request.model:
        spec = get_model(request.model)
        available, reason = availability(spec)
        if not available:
            raise BaseUnavailableError(reason)
        adapter = resolve_adapter(spec.key, request.adapter, request.adapters_dir)
    eval_sets = [load_eval_set(source, request.split, request.limit) for source in request.data]
    needs_scorers = any(s.kind == "free_text" for s in eval_sets)
    # Resolving is cheap and says whether the scoring model exists here, before any answer is generated.
    scoring_model = scoring_models.resolve_scoring_model(env=environ) if needs_scorers else None
    if not isinstance(store, ArenaStore):
        store = store()  # opened only now, so bad arguments never leave a new votes.db behind

    engine, contestants = _start_contestants(request, adapter, eval_sets, start_engine, notify)
    if engine.kind != "peft" and any(
        s.kind == "multiple_choice" and request.mcq_scoring != "letter" for s in eval_sets
    ):
        raise EvaluationError(
            f"--mcq-scoring {request.mcq_scoring} reads option log-likelihoods from the PEFT engine, "
            f"but the {engine.kind} backend serves here; use --mcq-scoring letter or --backend peft"
        )
    for contestant in contestants:
        notify(
            f"scoring {contestant.name} on the {engine.kind} backend, weights {contestant.weights or 'unknown'}"
        )
    settings = request.settings
    answered = {
        (c.name, i): answer_records(
            engine, c, s.records, settings, store, batch_size=request.batch_size,
            progress_label=f"{c.name} · {s.label}" if request.show_progress else None,
        )
        if generates_answers(s, request.mcq_scoring)
        else AnswerSet([], 0, 0, None)
        for c in contestants
        for i, s in enumerate(eval_sets)
    }  # fmt: skip
    scorers = load_scorers(scoring_model) if scoring_model is not None else None

    run_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    created_at = datetime.now(UTC).isoformat(timespec="microseconds")
    from finetune.train import git_commit

    commit = git_commit()
    rows: list[dict[str, Any]] = []
    scored: list[ScoredSet] = []
    for contestant in contestants:
        for index, eval_set in enumerate(eval_sets):
            answer_set = answered[(contestant.name, index)]
            generated = generates_answers(eval_set, request.mcq_scoring)
            extras = _extras(request, engine, contestant, eval_set, answer_set, scorers, store, notify)
            values = [
                *(_quality_metrics(answer_set.answers, eval_set, scorers) if generated else []),
                *extras,
                *speed_metrics(answer_set.speed),
                *setting_metrics(settings, request.batch_size, len(eval_set.records)),
            ]
            scored.append(
                ScoredSet(contestant.name, eval_set, answer_set.generated, answer_set.cached, values)
            )
            rows += result_rows(
                values,
                contestant=contestant,
                eval_set=eval_set,
                run_id=run_id,
                created_at=created_at,
                git_commit=commit,
            )
    return EvaluationRun(run_id=run_id, rows=rows, scored=scored)


def _extras(
    request: EvalRequest,
    engine: EvalBackend,
    contestant: Contestant,
    eval_set: EvalSet,
    answer_set: AnswerSet,
    scorers: Scorers | None,
    store: ArenaStore,
    notify: Callable[[str], None],
) -> list[MetricValue]:
    """Log-likelihood MCQ metrics and paired base -> adapter deltas (arena/eval/extras.py)."""
    generated = generates_answers(eval_set, request.mcq_scoring)
    base_answers = None
    if generated and contestant.adapter_run is not None:
        template_id = prompt_template_id(engine.chat_template(contestant.name))
        base_answers = cached_base_answers(store, template_id, request.settings, contestant, eval_set)
    return extra_metrics(
        engine=engine, contestant=contestant, eval_set=eval_set,
        answers=answer_set.answers if generated else None, base_answers=base_answers,
        scorers=scorers, mcq_scoring=request.mcq_scoring, batch_size=request.batch_size, notify=notify,
    )  # fmt: skip


def _quality_metrics(answers: Sequence[str], eval_set: EvalSet, scorers: Scorers | None) -> list[MetricValue]:
    """Free-text or MCQ metrics of one answer set, on final answers only."""
    # A reasoning model's or medical-o1's think block is not the answer, on either side.
    finals = [final_answer(answer) for answer in answers]
    if eval_set.kind == "free_text":
        assert scorers is not None  # resolved by run_evaluation for every free-text set
        references = [reference_text(r) for r in eval_set.records if isinstance(r, QARecord)]
        return free_text_metrics(finals, references, scorers)
    mcq_records = [r for r in eval_set.records if isinstance(r, MCQRecord)]
    return mcq_quality_metrics(finals, mcq_records)


def _start_contestants(
    request: EvalRequest,
    adapter: AdapterInfo | None,
    eval_sets: Sequence[EvalSet],
    start_engine: EngineStarter,
    notify: Callable[[str], None],
) -> tuple[EvalBackend, list[Contestant]]:
    """Load only what the request needs: one contestant for `model`, else every contestant (latest
    adapters), on the backend the request names."""
    if request.model:
        engine = start_engine(
            BackendOptions(
                kind=request.backend,
                adapters_dir=request.adapters_dir,
                model_keys=(request.model,),
                adapter_selection=(f"{request.model}/{adapter.run_id}",) if adapter else (),
                include_plain_bases=adapter is None,
                min_served=1,
            )
        )
        contestants = [find_contestant(engine, request.model, adapter.run_id if adapter else None)]
        if adapter is not None:
            for eval_set in eval_sets:
                if eval_set.split in {"all", "train"} and adapter_trained_on(adapter, eval_set):
                    notify(
                        f"adapter {adapter.run_id} was trained on the train split of {eval_set.label}, "
                        f"which --split {eval_set.split} includes"
                    )
        return engine, contestants
    engine = start_engine(
        BackendOptions(kind=request.backend, adapters_dir=request.adapters_dir, adapter_selection="latest")
    )
    for warning in engine.warnings:
        notify(warning)
    contestants = [c for c in engine.contestants() if not request.contestants or c.id in request.contestants]
    if not contestants:
        raise EvaluationError("no base model can be loaded here, so there is no contestant to evaluate")
    return engine, contestants
