"""The llama.cpp backend: every base its 4-bit GGUF as shipped, every adapter a GGUF LoRA.

llama.cpp is compiled for the machine it runs on (AVX2, AVX-512, NEON), so this backend serves at
the hardware's pace on any CPU, from the 4-bit weights the arena promises, in one process.

- Bases: the embedded GGUF (SmolLM2 Q4_1, Gemma-3-270M Q4_K_M), or for a seed model the GGUF file
  its registry entry names (`ModelSpec.gguf`, from the Hugging Face cache), loaded once.
- Adapters: converted once to GGUF LoRA (`arena.serving.gguf_lora`, cached by content hash and converter
  version) and attached with `llama_adapter_lora_init` / `llama_set_adapters_lora`. llama.cpp sets
  adapters per context, so each contestant gets its own context (its own KV cache) on the shared
  model weights: contestants on one base share those weights.
- Batching: one decode thread per contestant ("lane"). Every concurrent answer of that contestant
  is a sequence id in its context and decodes in the same `llama_decode` batch; both sides of a
  battle are on two lanes that decode at the same time. The cores are split between the lanes
  that have answers (`LlamaCppSettings.threads`, default: this process's cores): a lane counts from
  the moment an answer is submitted until its last one ends, so on 2 cores the two sides of a
  battle decode with one thread each and never 3 threads on 2 cores (OpenMP barriers spinning).
- Prompt cells: a lane keeps the KV cells of the last prompt it prefilled as one extra sequence;
  a new answer copies the cells of the tokens its prompt starts with (the system prompt and chat
  template: 31 of SmolLM2's ~47 prompt tokens; a follow-up's conversation) and prefills the rest.
- Where the time goes (perf, 8 concurrent battles, 2 cores): ggml's Q4_1 x Q8_1 dot products
  (no repacked GEMM kernel for Q4_1 on x86) and attention; Python sampling and detokenizing
  take 0.15-0.5 ms a token, 2-5% of the CPU time.
- Prompts: the project's own chat template code (`finetune.prompt.render_prompt`) over the GGUF's
  template, or the registry's where the GGUF has none (Gemma-3-270M), so every backend feeds the
  same prompt; tokens by llama.cpp's tokenizer of the same GGUF.
- Decode threads run at a lower priority (`decode_nice`), so the app's server thread always gets
  the CPU when a streamed update is due (issue #25 item 4: updates stalled for 13 s on 2 cores).

    python app.py --backend llamacpp
    python -c "from arena.serving.llamacpp_backend import LlamaCppBackend as B; b = B.start(); print(b.contestant_names()); b.close()"
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib
import os
import queue
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from arena.adapters import Contestant, discover_adapters, one_line, select_adapters
from arena.serving.common import (
    STALL_TIMEOUT_S,
    ContestantLookup,
    GeneratedAnswer,
    GenerationSettings,
    PairUpdate,
    lower_thread_priority,
)
from arena.serving.gguf_lora import DIGEST_KEY, AdapterConversionError, BaseArchitecture, converted_lora
from arena.serving.llamacpp_settings import LlamaCppSettings
from arena.serving.protocol import BackendKind, SideEvent, merge_sides, side_telemetry
from finetune.loading import BaseUnavailableError, default_cache_dir, embedded_gguf_path, unavailable_reason
from finetune.prompt import render_prompt, side_view
from finetune.registry import CHAT_TEMPLATES, END_OF_TURN, MODELS, ModelSpec, chosen_models

QUANTIZATION = "gguf"  # the label's quantisation part; the GGUF's own type is in `_Base.file_type`
WEIGHTS_PREFIX = "gguf-"  # `Contestant.weights` is this plus the GGUF's file type: "gguf-q4_1"


# --- prompt rendering ------------------------------------------------------------------------


class GGUFChatTemplate:
    """The `apply_chat_template` render_prompt calls, over a GGUF's (or the registry's) Jinja
    template, rendered as transformers renders it (sandboxed, trim/lstrip blocks, loop controls)."""

    def __init__(self, template: str, bos_token: str, eos_token: str):
        from jinja2.ext import loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str) -> None:
            from jinja2.exceptions import TemplateError

            raise TemplateError(message)

        environment = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
        )
        environment.globals["raise_exception"] = raise_exception
        self.source = template  # the Jinja text, which names the prompt in evaluation cache keys
        self._template = environment.from_string(template)
        self._specials = {"bos_token": bos_token, "eos_token": eos_token}

    def apply_chat_template(
        self, messages: list[dict[str, str]], *, tokenize: bool, add_generation_prompt: bool, **kwargs: Any
    ) -> str:
        assert not tokenize, "llama.cpp tokenizes; this renders text only"
        return self._template.render(
            messages=messages, add_generation_prompt=add_generation_prompt, **self._specials, **kwargs
        )


# --- bases and lanes -------------------------------------------------------------------------


def _meta(model: Any, key: str) -> str | None:
    import llama_cpp

    buffer = ctypes.create_string_buffer(1 << 16)
    size = llama_cpp.llama_model_meta_val_str(model, key.encode(), buffer, len(buffer))
    if size < 0:
        return None
    if size >= len(buffer):  # a chat template longer than the first try
        buffer = ctypes.create_string_buffer(size + 1)
        llama_cpp.llama_model_meta_val_str(model, key.encode(), buffer, len(buffer))
    return buffer.value.decode("utf-8", errors="replace")


def file_type_name(code: int | None, constants: dict[str, Any]) -> str:
    """The GGUF's `general.file_type` as llama.cpp names it ("q4_1", "q4_k_m", "f16"), from the
    library's own LLAMA_FTYPE_* constants; "unknown" where the file records none."""
    names = {
        value: name.removeprefix("LLAMA_FTYPE_").removeprefix("MOSTLY_").removeprefix("ALL_").lower()
        for name, value in constants.items()
        if name.startswith("LLAMA_FTYPE_") and isinstance(value, int) and name != "LLAMA_FTYPE_GUESSED"
    }
    return names.get(code, f"type{code}") if code is not None else "unknown"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def assembled_gguf(spec: ModelSpec, work_dir: Path) -> Path:
    """An embedded GGUF shipped in parts, assembled once into `work_dir` and checked when reused.

    Assembled in a staging folder and renamed into place, never rewritten where it lies: another
    process may have the file memory-mapped (llama.cpp maps its weights)."""
    assert spec.embedded is not None
    target = work_dir / spec.embedded.filename
    expected = getattr(importlib.import_module(spec.embedded.module), "EXPECTED_SHA256", None)
    if target.exists() and (expected is None or _sha256(target) == expected):
        return target
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix=f".{spec.key}-") as staging:
        os.replace(embedded_gguf_path(spec, Path(staging)), target)
    return target


def gguf_source(spec: ModelSpec, work_dir: Path) -> Path:
    """The base's GGUF: the embedded package's, else the registry's hub GGUF from the local cache."""
    if spec.embedded is not None:
        return (
            assembled_gguf(spec, work_dir) if spec.embedded.assemble else embedded_gguf_path(spec, work_dir)
        )
    if spec.gguf is not None:
        return spec.gguf.local_path()
    raise BaseUnavailableError(
        f"{unavailable_reason(spec)} (no GGUF is named for {spec.key} in the registry)"
    )


@dataclass
class _Base:
    """One loaded GGUF model; its weights are shared by every contestant's context."""

    spec: ModelSpec
    path: Path
    model: Any  # llama_model_p
    vocab: Any  # llama_vocab_p
    template: GGUFChatTemplate
    stop_ids: frozenset[int]
    n_vocab: int
    weights_bytes: int
    architecture: BaseArchitecture
    file_type: str  # the GGUF's weight type, e.g. "q4_1" (`file_type_name`)

    def tokenize(self, text: str) -> list[int]:
        """Token ids as the other backends feed them: specials parsed, none added."""
        import llama_cpp

        data = text.encode("utf-8")
        capacity = len(data) + 16
        tokens = (llama_cpp.llama_token * capacity)()
        count = llama_cpp.llama_tokenize(self.vocab, data, len(data), tokens, capacity, False, True)
        if count < 0:
            raise ValueError("the prompt could not be tokenized")
        return list(tokens[:count])

    def detokenize(self, ids: Sequence[int]) -> str:
        """Answer text without special tokens (as `skip_special_tokens=True` decodes it)."""
        import llama_cpp

        if not ids:
            return ""
        tokens = (llama_cpp.llama_token * len(ids))(*ids)
        capacity = 8 * len(ids) + 64
        buffer = ctypes.create_string_buffer(capacity)
        size = llama_cpp.llama_detokenize(self.vocab, tokens, len(ids), buffer, capacity, False, False)
        if size < 0:
            buffer = ctypes.create_string_buffer(-size + 1)
            size = llama_cpp.llama_detokenize(self.vocab, tokens, len(ids), buffer, -size + 1, False, False)
        return buffer.raw[:size].decode("utf-8", errors="ignore")

    def token_text(self, token: int) -> str:
        import llama_cpp

        return (llama_cpp.llama_vocab_get_text(self.vocab, token) or b"").decode("utf-8", errors="replace")


def load_base(spec: ModelSpec, work_dir: Path) -> _Base:
    """Load one GGUF base (weights memory-mapped) with its template and stop tokens."""
    import llama_cpp

    path = gguf_source(spec, work_dir)
    params = llama_cpp.llama_model_default_params()
    params.n_gpu_layers = 0
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
    if not model:
        raise BaseUnavailableError(f"llama.cpp could not load {path.name} for {spec.key}")
    vocab = llama_cpp.llama_model_get_vocab(model)
    arch = _meta(model, "general.architecture") or ""
    heads = int(_meta(model, f"{arch}.attention.head_count") or 0)
    heads_kv = int(_meta(model, f"{arch}.attention.head_count_kv") or heads)

    def text(token: int) -> str:
        return (llama_cpp.llama_vocab_get_text(vocab, token) or b"").decode("utf-8", errors="replace")

    bos, eos = llama_cpp.llama_vocab_bos(vocab), llama_cpp.llama_vocab_eos(vocab)
    template = GGUFChatTemplate(
        _meta(model, "tokenizer.chat_template") or CHAT_TEMPLATES[spec.chat_template],
        text(bos) if bos >= 0 else "",
        text(eos) if eos >= 0 else "",
    )
    base = _Base(
        spec=spec,
        path=path,
        model=model,
        vocab=vocab,
        template=template,
        stop_ids=frozenset(),
        n_vocab=llama_cpp.llama_vocab_n_tokens(vocab),
        weights_bytes=int(llama_cpp.llama_model_size(model)),
        architecture=BaseArchitecture(arch, heads, heads_kv),
        file_type=file_type_name(
            int(code) if (code := _meta(model, "general.file_type")) is not None else None, vars(llama_cpp)
        ),
    )
    marker = base.tokenize(END_OF_TURN[spec.chat_template])
    base.stop_ids = frozenset({eos, *(marker if len(marker) == 1 else [])} - {-1})
    return base


@dataclass
class _Request:
    """One answer being generated on a lane."""

    side: str
    prompt: list[int]
    settings: GenerationSettings
    events: queue.Queue[SideEvent]
    requested_at: float | None
    batched: bool
    cancelled: threading.Event = field(default_factory=threading.Event)
    generated: list[int] = field(default_factory=list)
    seq_id: int = -1
    position: int = 0  # tokens of this sequence in the KV cache
    reused: int = 0  # prompt tokens whose KV cells were copied from the lane's kept prompt
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    rng: Any = None


class _ThreadBudget:
    """Splits the CPU threads between the lanes that have answers to decode.

    A lane counts as busy from the moment an answer is submitted to it until its last answer
    ends, not only while it is inside `llama_decode`: counting the lanes inside the call gave a
    lane that entered while the other was sampling (or not yet started) all the threads, so 3
    threads ran on 2 cores and ggml's OpenMP workers spun at their barriers (a quarter of the
    CPU time of 8 concurrent battles, by `perf`)."""

    def __init__(self, total: int):
        self.total = total
        self._busy: set[int] = set()
        self._lock = threading.Lock()

    def threads(self, lane: int, busy: bool) -> int:
        """Mark `lane` busy or idle; the threads a busy lane decodes with now."""
        with self._lock:
            (self._busy.add if busy else self._busy.discard)(lane)
            return max(1, self.total // max(1, len(self._busy)))


class _Lane:
    """One contestant: a context on its base's weights, its adapter set, and a decode thread."""

    def __init__(
        self, base: _Base, adapter: Any, settings: LlamaCppSettings, budget: _ThreadBudget, label: str
    ):
        import llama_cpp

        self.base = base
        self.settings = settings
        self.budget = budget
        self.memory_mb = 0.0  # set by the backend: base weights + this contestant's adapter
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = settings.context_tokens
        params.n_batch = settings.context_tokens
        params.n_ubatch = settings.batch_tokens
        params.n_seq_max = settings.sequences + 1  # and one sequence that keeps the last prompt
        params.kv_unified = True  # one cache shared by the sequences: a long prompt may use more
        params.n_threads = params.n_threads_batch = self._threads = settings.cpu_threads()
        params.no_perf = True
        self.context = llama_cpp.llama_init_from_model(base.model, params)
        if not self.context:
            raise BaseUnavailableError(f"llama.cpp could not create a context for {label}")
        if adapter is not None:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(1.0)
            if llama_cpp.llama_set_adapters_lora(self.context, adapters, 1, scales) != 0:
                llama_cpp.llama_free(self.context)
                raise AdapterConversionError("llama.cpp did not attach it to a context")
        self.memory = llama_cpp.llama_get_memory(self.context)
        self.batch = llama_cpp.llama_batch_init(settings.context_tokens, 0, 1)
        # The KV cache of the last prompt prefilled, kept as sequence `prefix_seq`: a new answer
        # copies the cells of the tokens its prompt shares with it (the system prompt and chat
        # template, two thirds of a question's prompt; a follow-up's whole conversation so far)
        # and prefills only the rest.
        self.prefix_seq = settings.sequences
        self._prefix: list[int] = []
        self._pending: queue.Queue[_Request] = queue.Queue()
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"medarena-llamacpp-{label[:40]}", daemon=True)
        self._thread.start()

    def submit(self, request: _Request) -> None:
        """Queue one answer; it joins the next decode step that has room for it. The lane counts
        as busy from now, so a lane starting a battle does not take the other side's threads."""
        self.budget.threads(id(self), busy=True)
        self._pending.put(request)
        self._wake.set()

    def close(self) -> None:
        import llama_cpp

        self._closed = True
        self._wake.set()
        self._thread.join(timeout=30)
        if not self._thread.is_alive():
            llama_cpp.llama_batch_free(self.batch)
            llama_cpp.llama_free(self.context)

    # --- the decode thread ---

    def _run(self) -> None:
        lower_thread_priority(self.settings.decode_nice)  # ggml's workers inherit it
        active: dict[int, _Request] = {}
        waiting: list[_Request] = []
        while not self._closed:
            while True:
                try:
                    waiting.append(self._pending.get_nowait())
                except queue.Empty:
                    break
            self._admit(active, waiting)
            for seq_id, request in list(active.items()):
                if request.cancelled.is_set():
                    self._release(active, seq_id)
            if not active:
                if not waiting and self._pending.empty():
                    self.budget.threads(id(self), busy=False)
                self._wake.wait(timeout=1.0)
                self._wake.clear()
                continue
            try:
                self._step(active)
            except Exception as error:  # a failed decode voids these answers, never the app
                message = one_line(f"{type(error).__name__}: {error}")
                self._forget_prefix()  # the failed step may have left its cells half written
                for seq_id, request in list(active.items()):
                    request.events.put(("error", request.side, message))
                    self._release(active, seq_id)

    def _admit(self, active: dict[int, _Request], waiting: list[_Request]) -> None:
        """Give waiting answers a sequence id while the KV cache holds every admitted answer whole."""
        import numpy as np

        reserved = len(self._prefix) + sum(len(r.prompt) + r.settings.max_new_tokens for r in active.values())
        for request in list(waiting):
            need = len(request.prompt) + request.settings.max_new_tokens
            if request.cancelled.is_set():
                waiting.remove(request)
                continue
            if need > self.settings.context_tokens:
                waiting.remove(request)
                request.events.put(
                    (
                        "error",
                        request.side,
                        f"the question is too long for this arena ({need} tokens with the answer)",
                    )
                )
                continue
            free = [s for s in range(self.settings.sequences) if s not in active]
            if not free or reserved + need > self.settings.context_tokens:
                break  # first come, first served: later answers wait for this one
            waiting.remove(request)
            request.seq_id = free[0]
            request.position = request.reused = self._reuse_prefix(request)
            request.rng = np.random.default_rng(request.settings.seed)
            reserved += need
            active[request.seq_id] = request

    def _reuse_prefix(self, request: _Request) -> int:
        """Copy the kept prompt's cells for the tokens `request.prompt` starts with into its
        sequence (the last prompt token is always decoded: its logits give the first token);
        the count of prompt tokens already in the cache."""
        import llama_cpp

        shared = 0
        for kept, token in zip(self._prefix, request.prompt[:-1], strict=False):
            if kept != token:
                break
            shared += 1
        if shared:
            llama_cpp.llama_memory_seq_cp(self.memory, self.prefix_seq, request.seq_id, 0, shared)
        return shared

    def _forget_prefix(self) -> None:
        import llama_cpp

        llama_cpp.llama_memory_seq_rm(self.memory, self.prefix_seq, -1, -1)
        self._prefix = []

    def _keep_prefix(self, request: _Request) -> None:
        """Keep `request`'s prompt, just prefilled, as the prefix later prompts copy from."""
        import llama_cpp

        self._forget_prefix()
        llama_cpp.llama_memory_seq_cp(self.memory, request.seq_id, self.prefix_seq, 0, len(request.prompt))
        self._prefix = list(request.prompt)

    def _release(self, active: dict[int, _Request], seq_id: int) -> None:
        import llama_cpp

        llama_cpp.llama_memory_seq_rm(self.memory, seq_id, -1, -1)
        del active[seq_id]

    def _step(self, active: dict[int, _Request]) -> None:
        """One llama_decode: every new answer's prompt and every running answer's last token."""
        import llama_cpp

        batch, count, outputs, prefilled = self.batch, 0, [], None
        for request in active.values():
            if request.position < len(request.prompt):  # its prompt, less the cells copied from the prefix
                tokens, prefilled = request.prompt[request.position :], request
            else:
                tokens = request.generated[-1:]
            for offset, token in enumerate(tokens):
                batch.token[count] = token
                batch.pos[count] = request.position + offset
                batch.n_seq_id[count] = 1
                batch.seq_id[count][0] = request.seq_id
                batch.logits[count] = offset == len(tokens) - 1
                count += 1
            request.position += len(tokens)
            outputs.append((count - 1, request))
        batch.n_tokens = count
        threads = self.budget.threads(id(self), busy=True)
        if threads != self._threads:
            llama_cpp.llama_set_n_threads(self.context, threads, threads)
            self._threads = threads
        status = llama_cpp.llama_decode(self.context, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode returned {status}")
        if prefilled is not None:
            self._keep_prefix(prefilled)
        now = time.perf_counter()
        for index, request in outputs:
            logits = llama_cpp.llama_get_logits_ith(self.context, index)
            token = self._sample(request, logits)
            if request.first_token_at is None:
                request.first_token_at = now
            finished = token in self.base.stop_ids
            if not finished:
                request.generated.append(token)
            finished = finished or len(request.generated) >= request.settings.max_new_tokens
            text = self.base.detokenize(request.generated).strip()
            if finished:
                self._finish(request, text, now)
                self._release(active, request.seq_id)
            else:
                request.events.put(("text", request.side, text))

    def _sample(self, request: _Request, logits_pointer: Any) -> int:
        """The next token as the PEFT engine picks it: repetition penalty over prompt and answer,
        stop tokens barred until min_new_tokens, then greedy or temperature + top-p sampling."""
        import numpy as np

        settings = request.settings
        logits = np.ctypeslib.as_array(logits_pointer, shape=(self.base.n_vocab,)).astype(np.float32)
        if settings.repetition_penalty != 1.0:
            seen = np.unique(np.fromiter((*request.prompt, *request.generated), dtype=np.int64))
            scores = logits[seen]
            logits[seen] = np.where(
                scores < 0, scores * settings.repetition_penalty, scores / settings.repetition_penalty
            )
        if len(request.generated) < settings.min_new_tokens:
            logits[list(self.base.stop_ids)] = -np.inf
        if settings.temperature == 0:
            return int(np.argmax(logits))
        scaled = logits / settings.temperature
        order = np.argsort(-scaled)
        probabilities = np.exp(scaled[order] - scaled[order[0]])
        probabilities /= probabilities.sum()
        keep = int(np.searchsorted(np.cumsum(probabilities), settings.top_p) + 1)
        kept = probabilities[:keep] / probabilities[:keep].sum()
        return int(order[request.rng.choice(keep, p=kept)])

    def _finish(self, request: _Request, text: str, now: float) -> None:
        telemetry = side_telemetry(
            requested_at=request.requested_at,
            started=request.started,
            first_token_at=request.first_token_at,
            ended=now,
            output_tokens=len(request.generated),
            memory_mb=self.memory_mb,
            peak_memory_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            batched=request.batched,
            device="cpu",
        )
        request.events.put(("done", request.side, (text, telemetry)))


# --- the backend -----------------------------------------------------------------------------


class LlamaCppBackend(ContestantLookup[Contestant]):
    """The `ArenaBackend` on llama.cpp (llama-cpp-python's low-level bindings)."""

    kind: ClassVar[BackendKind] = "llamacpp"
    supports_follow_ups: ClassVar[bool] = True  # renders each side's view of a Conversation

    def __init__(self, settings: LlamaCppSettings):
        self.settings = settings
        self.warnings: list[str] = []
        self._bases: dict[str, _Base] = {}
        self._lanes: dict[str, _Lane] = {}
        self._contestants: dict[str, Contestant] = {}
        self._adapters: list[Any] = []
        self._budget = _ThreadBudget(settings.cpu_threads())
        self.concurrent_battles = settings.sequences  # a battle takes one sequence on each of two lanes
        self.startup_s = 0.0

    @classmethod
    def start(
        cls,
        *,
        adapters_dir: Path | None = None,
        model_keys: Sequence[str] | None = None,
        adapter_selection: str | Sequence[str] = "latest",
        include_plain_bases: bool = True,
        cache_dir: Path | None = None,
        settings: LlamaCppSettings | None = None,
    ) -> LlamaCppBackend:
        """Load each base's GGUF once and give every contestant a context; a broken adapter is
        refused with a one-sentence warning and the arena goes on."""
        try:
            import llama_cpp
        except ImportError as error:
            raise BaseUnavailableError(
                "the llamacpp backend needs llama-cpp-python: run `bash setup.sh` (it builds it for this "
                f"CPU) or `pip install -e '.[llamacpp]'` ({error})"
            ) from error
        from finetune.paths import project_paths

        _errors_only_logging()
        llama_cpp.llama_backend_init()
        started = time.perf_counter()
        backend = cls(settings or LlamaCppSettings())
        try:
            backend._load(
                adapters_dir or project_paths().adapters_dir,
                model_keys,
                adapter_selection,
                include_plain_bases,
                cache_dir or default_cache_dir(),
            )
        except BaseException:
            backend.close()
            raise
        backend.startup_s = time.perf_counter() - started
        return backend

    def _load(
        self,
        adapters_dir: Path,
        model_keys: Sequence[str] | None,
        adapter_selection: str | Sequence[str],
        include_plain_bases: bool,
        cache_dir: Path,
    ) -> None:
        specs = chosen_models(model_keys) or [s for s in MODELS if gguf_available(s)]
        adapters, warnings = discover_adapters(adapters_dir)
        self.warnings.extend(warnings)
        chosen = select_adapters(adapters, adapter_selection)
        for spec in specs:
            try:
                base = load_base(spec, cache_dir / "gguf")
            except BaseUnavailableError as error:
                self.warnings.append(one_line(f"skipped {spec.key}: {error}"))
                continue
            self._bases[spec.key] = base
            weights = WEIGHTS_PREFIX + base.file_type  # what evaluation results record
            for info in (a for a in chosen if a.model_key == spec.key):
                contestant = Contestant(
                    spec.key, spec.display_name, info.run_id, info.path, QUANTIZATION, weights
                )
                try:
                    adapter, adapter_bytes = self._load_adapter(base, info.path, cache_dir)
                    lane = _Lane(base, adapter, self.settings, self._budget, contestant.name)
                except (AdapterConversionError, BaseUnavailableError) as error:
                    self.warnings.append(one_line(f"refused adapter {spec.key}/{info.run_id}: {error}"))
                    continue
                lane.memory_mb = (base.weights_bytes + adapter_bytes) / 2**20
                self._lanes[contestant.name] = lane
                self._contestants[contestant.name] = contestant
            if include_plain_bases:
                plain = Contestant(spec.key, spec.display_name, None, None, QUANTIZATION, weights)
                lane = _Lane(base, None, self.settings, self._budget, plain.name)
                lane.memory_mb = base.weights_bytes / 2**20
                self._lanes[plain.name] = lane
                self._contestants[plain.name] = plain

    def _load_adapter(self, base: _Base, adapter_dir: Path, cache_dir: Path) -> tuple[Any, int]:
        """Convert (once) and load an adapter onto `base`; refuse it with one sentence if it does not fit."""
        import llama_cpp

        path, digest = converted_lora(adapter_dir, base.architecture, cache_dir)
        adapter = llama_cpp.llama_adapter_lora_init(base.model, str(path).encode())
        if not adapter:
            raise AdapterConversionError(
                f"llama.cpp would not attach it to {base.path.name} (its tensors do not match this base's shapes)"
            )
        buffer = ctypes.create_string_buffer(128)
        llama_cpp.llama_adapter_meta_val_str(adapter, DIGEST_KEY.encode(), buffer, len(buffer))
        if buffer.value.decode() != digest:  # provenance: the cached file is this adapter's conversion
            llama_cpp.llama_adapter_lora_free(adapter)
            path.unlink(missing_ok=True)
            raise AdapterConversionError(
                "its cached conversion did not match its files; restart to convert again"
            )
        self._adapters.append(adapter)
        return adapter, path.stat().st_size

    # --- lookup ---

    def memory_mb(self, name: str) -> float:
        """The MB this contestant's base weights plus its adapter weights take."""
        return self._lanes[self.contestant(name).name].memory_mb

    def prompt_ids(self, name: str, question: str, options: Mapping[str, str] | None = None) -> list[int]:
        """The token ids fed for `question` (with a multiple-choice question's `options`): the
        project's prompt over the base's chat template."""
        base = self._bases[self.contestant(name).model_key]
        return base.tokenize(render_prompt(base.template, question, options))

    def chat_template(self, name: str) -> str:
        """The chat template `name`'s prompts are rendered with (evaluation cache keys name it)."""
        return self._bases[self.contestant(name).model_key].template.source

    def serving_device(self, name: str) -> str:
        """Where `name` runs: llama.cpp serves on the CPU."""
        self.contestant(name)
        return "cpu"

    # --- generation ---

    def _submit(
        self,
        side: str,
        name: str,
        question: str,
        settings: GenerationSettings,
        requested_at: float | None,
        batched: bool,
        events: queue.Queue[SideEvent],
    ) -> _Request:
        prompt = self.prompt_ids(name, side_view(question, side))
        request = _Request(side, prompt, settings, events, requested_at, batched)
        self._lanes[name].submit(request)
        return request

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
        """Both sides at once on their two lanes; a side silent for `stall_timeout_s` ends in error."""
        contestant_a, contestant_b = self.contestant(name_a), self.contestant(name_b)
        batched = contestant_a.model_key == contestant_b.model_key
        events: queue.Queue[SideEvent] = queue.Queue()
        requests = [
            self._submit(side, name, question, settings, requested_at, batched, events)
            for side, name in (("a", name_a), ("b", name_b))
        ]

        def cancel() -> None:
            for request in requests:
                request.cancelled.set()

        yield from merge_sides(events, cancel, stall_timeout_s=stall_timeout_s)

    def answer_ids(self, name: str, question: str, settings: GenerationSettings) -> list[int]:
        """One answer's generated token ids (tests compare them with the PEFT engine's)."""
        events: queue.Queue[SideEvent] = queue.Queue()
        request = self._submit("a", name, question, settings, None, False, events)
        while True:
            kind, _, payload = events.get(timeout=STALL_TIMEOUT_S)
            if kind == "error":
                raise RuntimeError(payload)
            if kind == "done":
                return list(request.generated)

    def generate_answers(
        self,
        name: str,
        items: Sequence[tuple[str, Mapping[str, str] | None]],
        settings: GenerationSettings,
        *,
        batch_size: int = 8,
    ) -> list[GeneratedAnswer]:
        """Answer many (question, options) items with one contestant (`arena.evaluate`): `batch_size`
        sequences at a time on its lane, decoded in one batch as concurrent battles are."""
        lane = self._lanes[self.contestant(name).name]
        answers: list[GeneratedAnswer] = []
        for start in range(0, len(items), batch_size):
            events: queue.Queue[SideEvent] = queue.Queue()
            requests = [
                _Request(str(row), self.prompt_ids(name, question, options), settings, events, None, False)
                for row, (question, options) in enumerate(items[start : start + batch_size])
            ]
            for request in requests:
                lane.submit(request)
            done: dict[str, tuple[str, Any]] = {}
            try:
                while len(done) < len(requests):
                    kind, row, payload = events.get(timeout=STALL_TIMEOUT_S)
                    if kind == "error":
                        raise RuntimeError(f"llama.cpp could not answer for {name}: {payload}")
                    if kind == "done":
                        done[row] = payload
            finally:
                for request in requests:
                    request.cancelled.set()  # a failure or an interrupt stops the rest of the batch
            for request in requests:
                text, telemetry = done[request.side]
                answers.append(
                    GeneratedAnswer(text, telemetry.output_tokens, telemetry.ttft_s, telemetry.latency_s)
                )
        return answers

    def compute(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Torch work (BERTScore) runs on the caller's thread: llama.cpp has its own threads."""
        return function(*args, **kwargs)

    def close(self) -> None:
        """Stop every lane, free the contexts, adapters and models."""
        import llama_cpp

        for lane in self._lanes.values():
            lane.close()
        self._lanes.clear()
        for adapter in self._adapters:
            llama_cpp.llama_adapter_lora_free(adapter)
        self._adapters.clear()
        for base in self._bases.values():
            llama_cpp.llama_model_free(base.model)
        self._bases.clear()


@functools.cache
def _errors_only_logging() -> Any:
    """Route llama.cpp's log to stderr for errors only (its load chatter runs to hundreds of lines).
    Cached: the callback must stay referenced for as long as llama.cpp may call it."""
    import llama_cpp

    @llama_cpp.llama_log_callback
    def errors_only(level: int, text: bytes, user_data: Any) -> None:
        if level == 3:  # GGML_LOG_LEVEL_ERROR
            sys.stderr.write(text.decode("utf-8", errors="replace"))

    llama_cpp.llama_log_set(errors_only, ctypes.c_void_p(0))
    return errors_only


def gguf_available(spec: ModelSpec) -> bool:
    """Whether `spec` has a GGUF here: an installed embedded package, or its hub GGUF cached."""
    if spec.embedded is not None:
        return spec.embedded.is_installed()
    return spec.gguf is not None and spec.gguf.is_cached()


def llamacpp_installed() -> bool:
    """Whether llama-cpp-python is importable (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None
