"""The arena's inference engine: resident 4-bit bases with every adapter hot-swapped by name.

One base per base model stays in memory; each adapter under `adapters/` is loaded onto it once
at start-up. A battle whose two contestants share a base is answered in ONE batched forward
pass per token: a mixed-adapter batch in which each row gets its own adapter, or none for the
plain base (`ResidentBase.route_rows`; same logits as PEFT's `adapter_names=[...]` routing, which
the tests use as the reference, without its per-layer batch split); contestants on different bases run concurrently on CUDA and one after the other on CPU.
Tokens stream to the caller as they come. No Gradio and no database here.

All torch work (loading and generation) runs on the engine's own compute thread(s). On CPU that
is one thread: PyTorch's OpenMP pool belongs to the OS thread that uses it, and decoding on a
second thread while another thread's pool exists measured ~40% slower on 2 cores (SmolLM2, two
rows: 95-100 ms per token vs 60-70 ms with every torch call on one thread).

    python -c "from arena.engine import ArenaEngine; e = ArenaEngine.start(); print(e.contestant_names())"
"""

from __future__ import annotations

import queue
import resource
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

from arena.adapters import (
    BASE_ADAPTER,
    Contestant,
    discover_adapters,
    one_line,
    select_adapters,
)
from finetune.gpu import free_vram_mb, plan_vram
from finetune.loading import BaseUnavailableError, LoadedBase, availability, cuda_available, load_serving_base
from finetune.paths import project_paths
from finetune.prompt import render_prompt
from finetune.registry import END_OF_TURN, MODELS, ModelSpec, chosen_models


@dataclass(frozen=True)
class GenerationSettings:
    """Identical for both sides of every battle and for every evaluated answer."""

    max_new_tokens: int = 128
    temperature: float = 0.0  # 0 means greedy decoding
    top_p: float = 1.0
    # Tiny greedy models loop on a phrase; a mild penalty, the same for every contestant, stops that.
    repetition_penalty: float = 1.15
    seed: int = 0
    # Benches set it to max_new_tokens so every backend generates equal token counts.
    min_new_tokens: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.max_new_tokens <= 4096:
            raise ValueError("max_new_tokens must be in [1, 4096]")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError("temperature must be >= 0 and top_p in (0, 1]")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ValueError("min_new_tokens must be in [0, max_new_tokens]")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Telemetry:
    """One side's figures. Times run from the clinician's click (`requested_at`) when the caller
    passes it, so a side queued behind the other shows the wait it really had."""

    ttft_s: float  # from the start of this side's generation
    latency_s: float
    output_tokens: int
    tokens_per_s: float
    peak_memory_mb: float  # the process's peak (kept for older readers; not what the UI shows)
    memory_kind: str  # "rss" on CPU, "vram" on CUDA
    adapter_switch_ms: float
    batched_with_other_side: bool
    device: str
    # The shared backend contract (arena/backend.py): first token measured from the clinician's
    # click, and the bytes this contestant's base + adapter weights take (None where unknown).
    first_token_s: float | None = None
    memory_mb: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SideState:
    text: str = ""
    done: bool = False
    error: str | None = None
    telemetry: Telemetry | None = None


@dataclass(frozen=True)
class PairUpdate:
    """A snapshot of both answers while they stream."""

    a: SideState
    b: SideState

    @property
    def finished(self) -> bool:
        return self.a.done and self.b.done


@dataclass(frozen=True)
class GeneratedAnswer:
    text: str
    output_tokens: int
    ttft_s: float
    latency_s: float


@dataclass
class ResidentBase:
    """A loaded base with its adapters; the lock serialises generation on this model."""

    loaded: LoadedBase
    model: Any  # PeftModel when adapters exist, else the plain model
    adapters: dict[str, Contestant] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    lora_layers: list[Any] = field(default_factory=list)  # collected once, for switch_adapter
    memory_mb: dict[str, float] = field(default_factory=dict)  # adapter name -> base + adapter weights

    @property
    def has_adapters(self) -> bool:
        return bool(self.adapters)

    @property
    def active_adapter(self) -> str | None:
        """The adapter single-adapter batches currently get (PEFT's record, kept by switch_adapter)."""
        return self.model.active_adapter if self.has_adapters else None

    def switch_adapter(self, adapter_name: str) -> None:
        """Make one resident adapter the active one, in microseconds; call it holding the lock.

        PEFT's `set_adapter` walks every module and toggles `requires_grad` on every adapter
        (~10 ms for SmolLM2's 210 LoRA layers). Generation runs under inference mode, so only the
        active name matters: it is written on the layers collected at start-up. PEFT keeps it in
        `_active_adapter`; tests/test_engine.py checks the logits match PEFT's own routing, so a
        PEFT release that moves it fails there rather than serving the wrong adapter.
        """
        for layer in self.lora_layers:
            layer._active_adapter = [adapter_name]
        # PeftModel and its LoraModel each keep a record of the active name, as set_adapter does.
        self.model.active_adapter = adapter_name
        self.model.base_model.active_adapter = adapter_name

    @contextmanager
    def route_rows(self, adapter_names: list[str]) -> Iterator[None]:
        """Serve a mixed batch, each row with its own adapter (or none), for one generate call.

        PEFT's `adapter_names=` routing splits the batch inside every LoRA layer at every token
        (~0.1 ms a layer on CPU: 22 ms of a 68 ms SmolLM2 step). Here every adapter in the batch
        is active at once and each layer's scaling for adapter `a` becomes a per-row column: its
        scaling on a's rows, 0 on the others. A row then gets exactly base + its own LoRA delta,
        with no indexing; the rank-r LoRA products for the other rows are the small price.
        tests/test_engine.py checks the logits match PEFT's routing. Call it holding the lock.
        """
        import torch

        used = [name for name in dict.fromkeys(adapter_names) if name != BASE_ADAPTER]
        device = self.loaded.model.device
        masks = {
            name: torch.tensor([float(row == name) for row in adapter_names], device=device).view(-1, 1, 1)
            for name in used
        }
        saved = []
        for layer in self.lora_layers:
            saved.append(
                (layer, layer._active_adapter, {n: layer.scaling[n] for n in used if n in layer.scaling})
            )
            layer._active_adapter = used
            for name in used:
                if name in layer.scaling:
                    layer.scaling[name] = masks[name] * layer.scaling[name]
        try:
            yield
        finally:
            for layer, active, scaling in saved:
                layer._active_adapter = active
                layer.scaling.update(scaling)


COMPUTE_THREAD = "medarena-torch"
# The longest a battle waits for its next token before it is given up (and voided by the service):
# far above a CPU step (~0.1 s) or a cold CUDA kernel, far below "forever".
STALL_TIMEOUT_S = 120.0


class GenerationCancelled(RuntimeError):
    """The caller stopped reading a stream (new battle, closed tab); its generation stops here."""


def weights_memory_mb(model: Any, adapter_names: Sequence[str]) -> dict[str, float]:
    """MB of weights each contestant on a resident base uses: the base's own tensors (4-bit packed
    weights with their quantisation constants) plus that adapter's LoRA tensors."""
    base = 0
    per_adapter = dict.fromkeys(adapter_names, 0)
    seen: set[int] = set()
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        size = tensor.numel() * tensor.element_size()
        state = getattr(tensor, "quant_state", None)
        if state is not None and getattr(state, "absmax", None) is not None:
            size += state.absmax.numel() * state.absmax.element_size()
        owner = next((a for a in adapter_names if f".{a}." in name or name.endswith(f".{a}")), None)
        if owner is None:
            base += size
        else:
            per_adapter[owner] += size
    return {
        BASE_ADAPTER: round(base / 2**20, 1),
        **{name: round((base + extra) / 2**20, 1) for name, extra in per_adapter.items()},
    }


def compute_pool() -> ThreadPoolExecutor:
    """The thread(s) every torch call of an engine runs on: one on CPU, two on CUDA (one per side)."""
    import torch

    return ThreadPoolExecutor(
        max_workers=2 if torch.cuda.is_available() else 1, thread_name_prefix=COMPUTE_THREAD
    )


class ContestantUnavailable(LookupError):
    """A contestant name the engine does not serve."""


C = TypeVar("C")


class ContestantLookup(Generic[C]):
    """Name -> contestant lookup shared by every backend; subclasses fill `_contestants`."""

    _contestants: dict[str, C]

    def contestant_names(self) -> list[str]:
        return list(self._contestants)

    def contestants(self) -> list[C]:
        return list(self._contestants.values())

    def contestant(self, name: str) -> C:
        try:
            return self._contestants[name]
        except KeyError:
            raise ContestantUnavailable(f"contestant {name!r} is not served in this arena") from None


# --- telemetry helpers -----------------------------------------------------------------------


def peak_memory_mb(device: str) -> tuple[float, str]:
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20, "vram"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss"


def stop_token_ids(loaded: LoadedBase) -> list[int]:
    tokenizer = loaded.tokenizer
    ids = {tokenizer.eos_token_id}
    configured = getattr(loaded.model.generation_config, "eos_token_id", None)
    ids.update(configured if isinstance(configured, list) else [configured])
    marker = END_OF_TURN[loaded.spec.chat_template]
    marker_id = tokenizer.convert_tokens_to_ids(marker)
    if isinstance(marker_id, int) and marker_id != tokenizer.unk_token_id:
        ids.add(marker_id)
    return sorted(i for i in ids if isinstance(i, int))


class _RowStreamer:
    """A transformers streamer for a batch: per row, decoded text, token count and first-token time."""

    def __init__(self, tokenizer: Any, rows: int, stop_ids: list[int], on_token: Callable[[], None]):
        self.tokenizer = tokenizer
        self.stop_ids = set(stop_ids)
        self.tokens: list[list[int]] = [[] for _ in range(rows)]
        self.finished = [False] * rows
        self.first_token_at: list[float | None] = [None] * rows
        self.prompt_seen = False
        self.on_token = on_token

    def put(self, value: Any) -> None:
        if not self.prompt_seen:  # generate() first hands over the prompt
            self.prompt_seen = True
            return
        now = time.perf_counter()
        for row, token in enumerate(value.reshape(len(self.tokens), -1)[:, -1].tolist()):
            if self.finished[row]:
                continue
            if self.first_token_at[row] is None:
                self.first_token_at[row] = now
            if token in self.stop_ids:
                self.finished[row] = True
            else:
                self.tokens[row].append(token)
        self.on_token()

    def end(self) -> None:
        self.finished = [True] * len(self.finished)

    def text(self, row: int) -> str:
        return self.tokenizer.decode(self.tokens[row], skip_special_tokens=True).strip()


# --- the engine --------------------------------------------------------------------------------


class ArenaEngine(ContestantLookup[Contestant]):
    """Serves contestants by name; thread-safe (one lock per resident base)."""

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
                    spec.key, spec.display_name, info.run_id, info.path, loaded.quantization
                )
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
                contestants.append(Contestant(spec.key, spec.display_name, None, None, loaded.quantization))
            bases[spec.key] = resident
        return bases, contestants, warnings

    # --- lookup ---

    def base_for(self, name: str) -> ResidentBase:
        return self._bases[self.contestant(name).model_key]

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

        def run(side_rows: dict[str, int], contestants: list[Contestant]) -> None:
            def publish(streamer: _RowStreamer) -> None:
                if cancelled.is_set():  # raised inside generate(), which stops it at this token
                    raise GenerationCancelled("the battle was cancelled")
                updates.put(("tokens", {side: streamer.text(row) for side, row in side_rows.items()}))

            try:  # everything, the prompt included: a failure must reach the reader, never hang it
                if cancelled.is_set():
                    raise GenerationCancelled("the battle was cancelled before it started")
                resident = self._bases[contestants[0].model_key]
                prompt = render_prompt(resident.loaded.tokenizer, question)
                streamer, started, switch_ms = self._generate(
                    resident, contestants, [prompt] * len(contestants), settings, publish
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

        jobs: list[Future[None]]
        if contestant_a.model_key == contestant_b.model_key:
            jobs = [self._compute.submit(run, {"a": 0, "b": 1}, [contestant_a, contestant_b])]
        else:  # concurrent where the pool has a thread per job (CUDA), queued on CPU
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
