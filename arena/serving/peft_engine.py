"""The arena's inference engine: resident 4-bit bases with every adapter hot-swapped by name.

One base per base model stays in memory; each adapter under `adapters/` is loaded onto it once
at start-up. A battle whose two contestants share a base is answered in ONE batched forward
pass per token: a mixed-adapter batch in which each row gets its own adapter, or none for the
plain base (`ResidentBase.route_rows`; same logits as PEFT's `adapter_names=[...]` routing, which
the tests use as the reference, without its per-layer batch split); contestants on different
bases run concurrently on CUDA and take turns token by token on a CPU (`TakeTurns`: both sides
stream together; one decoder computes at a time).
Tokens stream to the caller as they come. No Gradio and no database here.

All torch work (loading and generation) runs on the engine's own compute thread(s). On CPU that
is one thread: PyTorch's OpenMP pool belongs to the OS thread that uses it, and decoding on a
second thread while another thread's pool exists measured ~40% slower on 2 cores (SmolLM2, two
rows: 95-100 ms per token vs 60-70 ms with every torch call on one thread).

    python -c "from arena.serving.peft_engine import ArenaEngine; e = ArenaEngine.start(); print(e.contestant_names())"
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from arena.adapters import (
    BASE_ADAPTER,
    Contestant,
    discover_adapters,
    one_line,
    select_adapters,
)
from arena.serving.common import (
    COMPUTE_THREAD,
    STALL_TIMEOUT_S,
    ContestantLookup,
    GeneratedAnswer,
    GenerationCancelled,
    GenerationSettings,
    PairUpdate,
    ResidentBase,
    SideState,
    TakeTurns,
    Telemetry,
    _RowStreamer,
    compute_pool,
    peak_memory_mb,
    stop_token_ids,
    weights_memory_mb,
)
from finetune.gpu import free_vram_mb, plan_vram
from finetune.loading import BaseUnavailableError, LoadedBase, availability, cuda_available, load_serving_base
from finetune.paths import project_paths
from finetune.prompt import render_prompt, side_view
from finetune.registry import MODELS, ModelSpec, chosen_models

if TYPE_CHECKING:  # arena.serving.backends imports this module
    from arena.serving.protocol import BackendKind

# --- the engine --------------------------------------------------------------------------------


class ArenaEngine(ContestantLookup[Contestant]):
    """Serves contestants by name; thread-safe (one lock per resident base)."""

    kind: ClassVar[BackendKind] = "peft"
    # One compute thread decodes every battle in turn: more at once only lengthens everyone's wait.
    concurrent_battles = 4
    supports_follow_ups: ClassVar[bool] = True  # renders each side's view of a Conversation (finetune.prompt)

    def __init__(
        self,
        bases: dict[str, ResidentBase],
        contestants: list[Contestant],
        warnings: list[str],
        compute: ThreadPoolExecutor | None = None,
    ):
        self._bases = bases
        self._contestants = {c.name: c for c in contestants}
        self.warnings = [one_line(w) for w in warnings]
        self._compute = compute or compute_pool()

    def compute(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run torch work on the engine's compute thread and wait for it (see the module docstring).

        Other torch users in the process (the battle-time BERTScore scorer) go through here too.
        """
        if threading.current_thread().name.startswith(COMPUTE_THREAD):
            return function(*args, **kwargs)  # already on it: submitting would wait on itself
        return self._compute.submit(function, *args, **kwargs).result()

    @classmethod
    def start(
        cls,
        *,
        adapters_dir: Path | None = None,  # None: finetune.paths (MEDARENA_ADAPTERS_DIR, else the checkout's)
        model_keys: Sequence[str] | None = None,
        adapter_selection: str | Sequence[str] = "latest",
        include_plain_bases: bool = True,
        cache_dir: Path | None = None,
        loader: Callable[..., LoadedBase] = load_serving_base,
        vram_free_mb: Callable[[], float | None] = free_vram_mb,
    ) -> ArenaEngine:
        """Load each chosen base once and put each selected adapter on it.

        Models: `model_keys`, else $MEDARENA_MODELS, else every base available here. On CUDA only
        what fits the free VRAM loads; the rest, and any base that runs out of memory while
        loading, is reported in one warning line each.
        """
        compute = compute_pool()
        bases, contestants, warnings = compute.submit(
            cls._load,
            adapters_dir=adapters_dir or project_paths().adapters_dir,
            model_keys=model_keys,
            adapter_selection=adapter_selection,
            include_plain_bases=include_plain_bases,
            cache_dir=cache_dir,
            loader=loader,
            vram_free_mb=vram_free_mb,
        ).result()
        return cls(bases, contestants, warnings, compute)

    @staticmethod
    def _load(
        *,
        adapters_dir: Path,
        model_keys: Sequence[str] | None,
        adapter_selection: str | Sequence[str],
        include_plain_bases: bool,
        cache_dir: Path | None,
        loader: Callable[..., LoadedBase],
        vram_free_mb: Callable[[], float | None],
    ) -> tuple[dict[str, ResidentBase], list[Contestant], list[str]]:
        import torch
        from peft import PeftModel

        specs: list[ModelSpec] = chosen_models(model_keys) or [
            s for s in MODELS if availability(s, cache_dir)[0]
        ]
        adapters, warnings = discover_adapters(adapters_dir)
        chosen = select_adapters(adapters, adapter_selection)
        free_mb = vram_free_mb() if cuda_available() else None
        if free_mb is not None:  # 14 seed models are ~45 GB: load what fits, say what does not
            specs, left_out = plan_vram(specs, free_mb)
            warnings.extend(left_out)
        bases: dict[str, ResidentBase] = {}
        contestants: list[Contestant] = []
        for spec in specs:
            try:
                loaded = loader(spec, cache_dir=cache_dir)
            except BaseUnavailableError as error:
                warnings.append(f"skipped {spec.key}: {error}")
                continue
            except torch.OutOfMemoryError as error:  # one model too many must not stop the arena
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                first_line = str(error).strip().splitlines()[0] if str(error).strip() else "no detail"
                warnings.append(f"skipped {spec.key}: out of memory while loading ({first_line})")
                continue
            loaded.tokenizer.padding_side = "left"  # batched generation continues from the right edge
            loaded.model.eval()
            resident = ResidentBase(loaded=loaded, model=loaded.model)
            for info in (a for a in chosen if a.model_key == spec.key):
                contestant = Contestant(
                    spec.key, spec.display_name, info.run_id, info.path, loaded.quantization,
                    weights=loaded.quantization,  # the loader's tag: nf4, int8, fp32, bf16 or fp16
                )  # fmt: skip
                try:
                    if isinstance(resident.model, PeftModel):
                        resident.model.load_adapter(str(info.path), adapter_name=contestant.adapter_name)
                    else:
                        resident.model = PeftModel.from_pretrained(
                            resident.model, str(info.path), adapter_name=contestant.adapter_name
                        )
                except Exception as error:  # a corrupt adapter must not stop the arena
                    warnings.append(
                        f"skipped adapter {spec.key}/{info.run_id}: {type(error).__name__}: {error}"
                    )
                    continue
                resident.adapters[contestant.adapter_name] = contestant
                contestants.append(contestant)
            if resident.has_adapters:
                from peft.tuners.tuners_utils import BaseTunerLayer

                resident.lora_layers = [m for m in resident.model.modules() if isinstance(m, BaseTunerLayer)]
            resident.memory_mb = weights_memory_mb(resident.model, list(resident.adapters))
            if include_plain_bases:
                contestants.append(
                    Contestant(
                        spec.key, spec.display_name, None, None, loaded.quantization, loaded.quantization
                    )
                )
            bases[spec.key] = resident
        return bases, contestants, warnings

    # --- lookup ---

    def base_for(self, name: str) -> ResidentBase:
        """The resident base the contestant `name` runs on."""
        return self._bases[self.contestant(name).model_key]

    def chat_template(self, name: str) -> str | None:
        """The chat template `name`'s prompts are rendered with (evaluation cache keys name it)."""
        return self.base_for(name).loaded.tokenizer.chat_template

    def serving_device(self, name: str) -> str:
        """Where `name`'s base runs: "cuda" or "cpu"."""
        return self.base_for(name).loaded.device

    # --- generation ---

    def _generate(
        self,
        resident: ResidentBase,
        contestants: list[Contestant],
        prompts: list[str],
        settings: GenerationSettings,
        on_token: Callable[[_RowStreamer], None] = lambda streamer: None,
    ) -> tuple[_RowStreamer, float, float]:
        """One batched generate; returns the streamer, start time and adapter-switch milliseconds."""
        import torch

        loaded = resident.loaded
        encoded = loaded.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        encoded = {k: v.to(loaded.model.device) for k, v in encoded.items()}
        stop_ids = stop_token_ids(loaded)
        streamer = _RowStreamer(loaded.tokenizer, len(prompts), stop_ids, lambda: on_token(streamer))
        kwargs: dict[str, Any] = {
            "max_new_tokens": settings.max_new_tokens,
            "eos_token_id": stop_ids,
            "pad_token_id": loaded.tokenizer.pad_token_id,
            "streamer": streamer,
            "repetition_penalty": settings.repetition_penalty,
            "min_new_tokens": settings.min_new_tokens,
        }
        if settings.temperature > 0:
            kwargs.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p)
            torch.manual_seed(settings.seed)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with resident.lock, torch.inference_mode(), ExitStack() as routing:
            switch_started = time.perf_counter()
            names = [c.adapter_name for c in contestants]
            if resident.has_adapters:
                if len(set(names)) == 1 and names[0] != BASE_ADAPTER:
                    # One adapter for every row: activate it. Routing by name would cost ~0.1 ms per
                    # LoRA layer per token (PEFT splits the batch in every layer): +40% on SmolLM2.
                    if resident.active_adapter != names[0]:
                        resident.switch_adapter(names[0])
                elif set(names) == {BASE_ADAPTER}:
                    kwargs["adapter_names"] = names  # plain-base rows only: PEFT skips every LoRA
                else:
                    routing.enter_context(resident.route_rows(names))  # mixed rows, one pass
            switch_ms = (time.perf_counter() - switch_started) * 1000
            if loaded.device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            started = time.perf_counter()
            resident.model.generate(**encoded, **kwargs)
        return streamer, started, switch_ms

    def _telemetry(
        self,
        streamer: _RowStreamer,
        row: int,
        started: float,
        ended: float,
        switch_ms: float,
        batched: bool,
        device: str,
        *,
        requested_at: float | None,
        memory_mb: float,
    ) -> Telemetry:
        first = streamer.first_token_at[row] or ended
        tokens = len(streamer.tokens[row])
        origin = started if requested_at is None else requested_at
        generating = ended - started
        peak, kind = peak_memory_mb(device)
        return Telemetry(
            ttft_s=round(first - started, 4),
            latency_s=round(ended - origin, 4),
            output_tokens=tokens,
            tokens_per_s=round(tokens / generating, 2) if generating > 0 else 0.0,
            peak_memory_mb=round(peak, 1),
            memory_kind=kind,
            adapter_switch_ms=round(switch_ms, 4),
            batched_with_other_side=batched,
            device=device,
            first_token_s=round(first - origin, 4),
            memory_mb=memory_mb,
        )

    def stream_pair(
        self,
        question: str,
        name_a: str,
        name_b: str,
        settings: GenerationSettings,
        requested_at: float | None = None,
        *,
        stall_timeout_s: float = STALL_TIMEOUT_S,
    ) -> Iterator[PairUpdate]:
        """Answer one question with two contestants, yielding snapshots as tokens arrive.

        `requested_at` is `time.perf_counter()` at the clinician's click; first-token and total times
        run from it. Every wait is bounded by `stall_timeout_s`: a side with no output for that long
        ends with an error. Closing the generator (a new battle, a closed tab) stops the generation.
        """
        contestant_a, contestant_b = self.contestant(name_a), self.contestant(name_b)
        updates: queue.Queue[tuple[str, Any]] = queue.Queue()
        sides = {"a": SideState(), "b": SideState()}
        cancelled = threading.Event()

        def run(
            side_rows: dict[str, int], contestants: list[Contestant], turns: TakeTurns | None = None
        ) -> None:
            party = "".join(side_rows)

            def publish(streamer: _RowStreamer) -> None:
                if cancelled.is_set():  # raised inside generate(), which stops it at this token
                    raise GenerationCancelled("the battle was cancelled")
                updates.put(("tokens", {side: streamer.text(row) for side, row in side_rows.items()}))
                if turns is not None:
                    turns.step(party)  # the other side decodes its next token meanwhile

            try:  # everything, the prompt included: a failure must reach the reader, never hang it
                if cancelled.is_set():
                    raise GenerationCancelled("the battle was cancelled before it started")
                if turns is not None:
                    turns.wait(party)
                resident = self._bases[contestants[0].model_key]
                # each side's own view: a follow-up carries that side's earlier answers
                prompts = [
                    render_prompt(resident.loaded.tokenizer, side_view(question, side))
                    for side in sorted(side_rows, key=side_rows.__getitem__)
                ]
                streamer, started, switch_ms = self._generate(
                    resident, contestants, prompts, settings, publish
                )
                ended = time.perf_counter()
                batched = len(contestants) > 1
                for side, row in side_rows.items():
                    telemetry = self._telemetry(
                        streamer, row, started, ended, switch_ms, batched, resident.loaded.device,
                        requested_at=requested_at,
                        memory_mb=resident.memory_mb.get(contestants[row].adapter_name, 0.0),
                    )  # fmt: skip
                    updates.put(("done", (side, streamer.text(row), telemetry)))
            except Exception as error:  # out of memory or a broken model voids the battle, not the app
                message = one_line(f"{type(error).__name__}: {error}")
                for side in side_rows:
                    updates.put(("error", (side, message)))
            finally:
                if turns is not None:
                    turns.leave(party)

        def run_taking_turns() -> None:
            # Both sides on the CPU: side b decodes on a thread of its own while side a decodes here,
            # one token each in turn, so both stream together; holding the compute thread until both
            # end keeps the next battle from decoding at the same time. The thread ends with the
            # battle, and its OpenMP team with it: while a second team lives, libgomp throttles
            # every team's spinning and same-base battles ran 2.2x slower (5.4 s -> 11.9 s).
            turns = TakeTurns(["a", "b"], cancelled)
            with compute_pool(f"{COMPUTE_THREAD}-turns", workers=1) as turn_taker:
                other = turn_taker.submit(run, {"b": 0}, [contestant_b], turns)
                run({"a": 0}, [contestant_a], turns)
                other.result()

        jobs: list[Future[None]]
        if contestant_a.model_key == contestant_b.model_key:
            jobs = [self._compute.submit(run, {"a": 0, "b": 1}, [contestant_a, contestant_b])]
        elif self.serving_device(name_a) == self.serving_device(name_b) == "cpu":
            jobs = [self._compute.submit(run_taking_turns)]
        else:  # concurrent where the pool has a thread per job (CUDA)
            jobs = [
                self._compute.submit(run, {"a": 0}, [contestant_a]),
                self._compute.submit(run, {"b": 0}, [contestant_b]),
            ]
        try:
            while not (sides["a"].done and sides["b"].done):
                try:
                    kind, payload = updates.get(timeout=stall_timeout_s)
                except queue.Empty:
                    cancelled.set()
                    message = f"TimeoutError: no output for {stall_timeout_s:g} s"
                    for side, state in sides.items():
                        if not state.done:
                            sides[side] = SideState(text=state.text, done=True, error=message)
                    yield PairUpdate(a=replace(sides["a"]), b=replace(sides["b"]))
                    return  # the stalled job is told to stop; nobody waits on it
                if kind == "tokens":
                    for side, text in payload.items():
                        if not sides[side].done:
                            sides[side].text = text
                elif kind == "done":
                    side, text, telemetry = payload
                    sides[side] = SideState(text=text, done=True, telemetry=telemetry)
                else:
                    side, message = payload
                    sides[side] = SideState(text=sides[side].text, done=True, error=message)
                yield PairUpdate(a=replace(sides["a"]), b=replace(sides["b"]))  # shallow snapshots
            for job in jobs:
                job.result(timeout=stall_timeout_s)
        finally:
            cancelled.set()  # a reader that left (GeneratorExit) stops the generation at its next token

    def generate_answers(
        self,
        name: str,
        items: Sequence[tuple[str, dict[str, str] | None]],
        settings: GenerationSettings,
        *,
        batch_size: int = 8,
        on_batch: Callable[[int], None] = lambda n: None,
    ) -> list[GeneratedAnswer]:
        """Answer many (question, options) items with one contestant, in length-sorted batches."""
        contestant = self.contestant(name)
        resident = self._bases[contestant.model_key]
        prompts = [render_prompt(resident.loaded.tokenizer, q, o) for q, o in items]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        answers: dict[int, GeneratedAnswer] = {}
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            streamer, started, _ = self.compute(
                self._generate, resident, [contestant] * len(chunk), [prompts[i] for i in chunk], settings
            )
            ended = time.perf_counter()
            for row, index in enumerate(chunk):
                first = streamer.first_token_at[row] or ended
                answers[index] = GeneratedAnswer(
                    text=streamer.text(row),
                    output_tokens=len(streamer.tokens[row]),
                    ttft_s=round(first - started, 4),
                    latency_s=round(ended - started, 4),
                )
            on_batch(len(chunk))
        return [answers[i] for i in range(len(prompts))]

    def close(self) -> None:
        """Stop the compute thread (the ArenaBackend protocol; the bases go with the object)."""
        self._compute.shutdown(wait=True)
