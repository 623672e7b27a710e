"""What every serving backend shares, and the PEFT engine's building blocks.

Shared (the vLLM and remote backends import them too): `GenerationSettings`, `Telemetry`, `SideState`,
`PairUpdate`, `GeneratedAnswer`, `GenerationCancelled`, `ContestantLookup`, the compute pool and
`peak_memory_mb`. The PEFT engine's parts: `ResidentBase` (one resident base with its adapters and
per-row LoRA routing), `weights_memory_mb`, `stop_token_ids` and the row streamer. `arena.serving.peft_engine`
assembles them into `ArenaEngine`; every module imports these names from here, none through the
engine (no re-exports).

Run as: python -m pytest tests/test_engine.py -q
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar

from arena.adapters import (
    BASE_ADAPTER,
    Contestant,
)
from finetune.loading import LoadedBase
from finetune.registry import END_OF_TURN


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
        """The settings as a plain dict (stored with each battle)."""
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
    # The shared backend contract (arena/serving/backends.py): first token measured from the clinician's
    # click, and the bytes this contestant's base + adapter weights take (None where unknown).
    first_token_s: float | None = None
    memory_mb: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The telemetry as a plain dict (stored with each answer)."""
        return asdict(self)


@dataclass
class SideState:
    """One side's answer so far and whether it has finished."""

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
        """Whether both sides have ended."""
        return self.a.done and self.b.done


@dataclass(frozen=True)
class GeneratedAnswer:
    """One evaluation answer with its token count and timings."""

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
        """Whether any adapter is attached to this base."""
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


# Decoding threads run this much nicer than the app's own (Linux niceness is per thread, and the
# threads and processes a thread starts inherit it): on 2 cores a busy decoder otherwise starves the
# server thread that sends streamed updates (issue #25 item 4: 13 s without an update on vLLM). Nice
# 10 was tried against vLLM's remaining browser gap and did not close it on quiet cores (README,
# Benchmarks: streaming), while it slows decoding more beside other work: 5 stays.
DECODE_NICE = 5


def _lower_priority(thread_id: int, nice: int) -> None:
    """Make one thread (Linux: a thread id is a PRIO_PROCESS id) `nice` steps nicer; best effort."""
    if nice > 0 and hasattr(os, "setpriority"):
        with suppress(OSError):  # a thread that already exited
            current = os.getpriority(os.PRIO_PROCESS, thread_id)
            os.setpriority(os.PRIO_PROCESS, thread_id, min(19, current + nice))


def lower_thread_priority(nice: int = DECODE_NICE) -> None:
    """Make the calling thread (and what it starts from now on) `nice` steps nicer; best effort."""
    _lower_priority(threading.get_native_id(), nice)


@contextmanager
def lower_new_children_priority(nice: int = DECODE_NICE) -> Iterator[None]:
    """Every thread of the child processes started inside the block runs `nice` steps nicer:
    vLLM's engine processes, whose busy CPU workers otherwise starve the app's server thread. Only
    the engines are niced: the thread in this process that relays their tokens keeps its priority
    (niced too, it waited behind the workers and the browser saw 4.6 s without an update)."""
    import psutil

    before = {child.pid for child in psutil.Process().children(recursive=True)}
    yield
    for child in psutil.Process().children(recursive=True):
        if child.pid in before:
            continue
        try:
            threads = child.threads()
        except psutil.Error:  # a helper process that already exited
            continue
        for thread in threads:
            _lower_priority(thread.id, nice)


def compute_pool(thread_name_prefix: str = COMPUTE_THREAD, workers: int | None = None) -> ThreadPoolExecutor:
    """The thread(s) every torch call of an engine runs on: one on CPU, two on CUDA (one per side),
    at `DECODE_NICE` (torch's OpenMP team, started by the thread, inherits it)."""
    import torch

    return ThreadPoolExecutor(
        max_workers=workers or (2 if torch.cuda.is_available() else 1),
        thread_name_prefix=thread_name_prefix,
        initializer=lower_thread_priority,
    )


class TakeTurns:
    """Decode loops that share one CPU take turns, one token each, in a fixed order.

    A battle between contestants on two different bases cannot share a forward pass. On a CPU with
    one compute thread they used to run one after the other, and the common display pace
    (`arena.pacing`) held the first side back until the second had words: the browser saw nothing
    for a whole answer (4.4 s at 128 tokens on 2 cores, issue #25 item 4). Taking turns keeps both
    sides moving together, with one decoder computing at any moment; the battle takes ~20% longer
    (two OpenMP teams alive while it runs: 14.1-14.8 s vs 12.0 s at 128 tokens, 2 loaded cores).

    A party calls `wait(party)` before its first step and `step(party)` after each token; `leave`
    (always, in a `finally`) lets the others run on alone. `cancelled` (when set) ends every wait.
    """

    def __init__(self, parties: Sequence[str], cancelled: threading.Event | None = None):
        self._waiting = list(parties)  # in turn order; the first one goes first
        self._condition = threading.Condition()
        self._cancelled = cancelled or threading.Event()

    def wait(self, party: str) -> None:
        """Block until it is `party`'s turn (or the battle is cancelled: GenerationCancelled)."""
        with self._condition:
            while self._waiting and self._waiting[0] != party:
                if self._cancelled.is_set():
                    raise GenerationCancelled("the battle was cancelled")
                self._condition.wait(timeout=0.1)  # re-checks `cancelled`, which nobody notifies

    def step(self, party: str) -> None:
        """`party` made a step: the next party goes, then `party` waits for its turn again."""
        with self._condition:
            if self._waiting and self._waiting[0] == party:
                self._waiting.append(self._waiting.pop(0))
                self._condition.notify_all()
        self.wait(party)

    def leave(self, party: str) -> None:
        """`party` is done (finished, failed or cancelled): it takes no more turns."""
        with self._condition:
            if party in self._waiting:
                self._waiting.remove(party)
                self._condition.notify_all()


class ContestantUnavailable(LookupError):
    """A contestant name the engine does not serve."""


C = TypeVar("C")


class ContestantLookup(Generic[C]):
    """Name -> contestant lookup shared by every backend; subclasses fill `_contestants`."""

    _contestants: dict[str, C]

    def contestant_names(self) -> list[str]:
        """Every served contestant's name, in serving order."""
        return list(self._contestants)

    def contestants(self) -> list[C]:
        """Every served contestant."""
        return list(self._contestants.values())

    def contestant_id(self, name: str) -> str:
        """The stable id votes and results are stored under (`<model key>/<run id or base>`)."""
        return self.contestant(name).id  # type: ignore[attr-defined]

    def contestant_weights(self, name: str) -> str:
        """The served weights' tag (`Contestant.weights`: "nf4", "bf16", "gguf-q4_1"; "" if unknown)."""
        return self.contestant(name).weights  # type: ignore[attr-defined]

    def contestant(self, name: str) -> C:
        """The contestant with this name, or ContestantUnavailable."""
        try:
            return self._contestants[name]
        except KeyError:
            raise ContestantUnavailable(f"contestant {name!r} is not served in this arena") from None


# --- telemetry helpers -----------------------------------------------------------------------


def peak_memory_mb(device: str) -> tuple[float, str]:
    """Peak memory of this process so far: VRAM on CUDA, else RSS, with which one it is."""
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20, "vram"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss"


def stop_token_ids(loaded: LoadedBase) -> list[int]:
    """The token ids that end an answer: eos and the family's end-of-turn token."""
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
