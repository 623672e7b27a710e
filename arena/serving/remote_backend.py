"""The remote backend: contestants served by any OpenAI-compatible server, by URL and model name.

This is how the arena grows past one machine: a vLLM cluster (`vllm serve BASE --enable-lora
--lora-modules name=path ...`, one model name per adapter), llama.cpp's `llama-server`, or
Ollama (`http://host:11434/v1`). Each side of a battle is one streamed `/chat/completions`
request; the server's own chat template renders the arena's system and user text
(`finetune.prompt.messages`), and its continuous batching serves concurrent clinicians.

    python app.py --backend remote --remote http://127.0.0.1:8000/v1=smollm2,demo
    python -c "from arena.serving.remote_backend import *; b = RemoteBackend.start(parse_remote_specs(['http://127.0.0.1:8000/v1=demo'])); print(b.contestant_names())"

Sampling fields vLLM adds to the OpenAI schema (`repetition_penalty`, `min_tokens`) are sent
too; llama.cpp and Ollama ignore fields they do not know.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from queue import Queue
from typing import Any, ClassVar
from urllib.parse import urlparse

from arena.serving.common import ContestantLookup, GenerationSettings, PairUpdate
from arena.serving.protocol import BackendKind, SideEvent, merge_sides, side_telemetry
from finetune.prompt import messages, side_view


class RemoteUnavailable(RuntimeError):
    """No remote contestant could be reached; the message says which server and why."""


@dataclass(frozen=True)
class RemoteContestant:
    url: str  # the server's OpenAI base URL, ending in /v1
    model: str  # the model name the server lists (a vLLM --lora-modules name is one)

    def __post_init__(self) -> None:
        parsed = urlparse(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"remote URL {self.url!r} must look like http://host:port/v1")
        if not self.model.strip():
            raise ValueError(f"remote contestant at {self.url} needs a model name")

    @property
    def name(self) -> str:
        """The display label: model name, "remote", server."""
        return f"{self.model} · remote · {urlparse(self.url).netloc}"

    @property
    def id(self) -> str:
        """Stable id: the served model name (no registry key or run is known for a remote model)."""
        return f"remote/{self.model}"

    @property
    def weights(self) -> str:
        """Unknown: a remote server's weights are not ours to name (no metric matches them)."""
        return ""


def parse_remote_specs(specs: Sequence[str]) -> list[RemoteContestant]:
    """'URL=model[,model...]' strings (the --remote flag) into contestants."""
    contestants: list[RemoteContestant] = []
    for spec in specs:
        url, sep, models = spec.rpartition("=")
        if not sep or not url or not models.strip():
            raise ValueError(f"--remote {spec!r}: expected URL=model[,model...]")
        contestants += [RemoteContestant(url.rstrip("/"), m.strip()) for m in models.split(",") if m.strip()]
    return contestants


def _listed_models(client: Any, url: str) -> set[str]:
    response = client.get(f"{url}/models")
    response.raise_for_status()
    return {entry["id"] for entry in response.json().get("data", [])}


class RemoteBackend(ContestantLookup[RemoteContestant]):
    """The `ArenaBackend` over HTTP: one streamed request per side, both sent at once."""

    kind: ClassVar[BackendKind] = "remote"
    concurrent_battles = 16  # the servers batch them (vLLM's continuous batching, llama.cpp's slots)
    supports_follow_ups: ClassVar[bool] = True  # sends each side's view of a Conversation as chat messages

    def __init__(self, contestants: list[RemoteContestant], warnings: list[str], timeout_s: float):
        import httpx

        self._contestants = {c.name: c for c in contestants}
        self.warnings = list(warnings)
        # Long reads: a busy server may take a while between tokens; connecting must be quick.
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=10.0))

    @classmethod
    def start(cls, contestants: Sequence[RemoteContestant], *, timeout_s: float = 300.0) -> RemoteBackend:
        """Keep the contestants whose server lists their model; refuse the rest with a warning."""
        import httpx

        warnings: list[str] = []
        listed: dict[str, set[str] | None] = {}
        with httpx.Client(timeout=10.0) as client:
            for url in dict.fromkeys(c.url for c in contestants):
                try:
                    listed[url] = _listed_models(client, url)
                except (httpx.HTTPError, ValueError) as error:
                    listed[url] = None
                    warnings.append(f"skipped server {url}: {type(error).__name__}: {error}")
        kept = []
        for contestant in contestants:
            models = listed[contestant.url]
            if models is None:
                continue
            if contestant.model not in models:
                warnings.append(
                    f"refused remote model {contestant.model!r}: {contestant.url} serves "
                    f"{', '.join(sorted(models)) or 'nothing'}"
                )
                continue
            kept.append(contestant)
        if not kept:
            raise RemoteUnavailable("no remote contestant is reachable: " + "; ".join(warnings))
        return cls(kept, warnings, timeout_s)

    @staticmethod
    def request_body(
        contestant: RemoteContestant, question: str, settings: GenerationSettings
    ) -> dict[str, Any]:
        """The /chat/completions request for one side: model, messages, sampling, streaming."""
        body: dict[str, Any] = {
            "model": contestant.model,
            "messages": messages(question),
            "max_tokens": settings.max_new_tokens,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "seed": settings.seed,
            "repetition_penalty": settings.repetition_penalty,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if settings.min_new_tokens:
            body["min_tokens"] = settings.min_new_tokens
        return body

    def _answer(
        self,
        side: str,
        contestant: RemoteContestant,
        question: str,
        settings: GenerationSettings,
        requested_at: float | None,
        events: Queue[SideEvent],
        cancelled: threading.Event,
    ) -> None:
        started = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        chunks, usage_tokens = 0, None
        try:
            with self._client.stream(
                "POST",
                f"{contestant.url}/chat/completions",
                json=self.request_body(contestant, side_view(question, side), settings),
            ) as response:
                if response.status_code >= 400:
                    detail = response.read().decode(errors="replace")[:300]
                    raise RuntimeError(f"{contestant.url} answered HTTP {response.status_code}: {detail}")
                for line in response.iter_lines():
                    if cancelled.is_set():
                        return  # closing the stream tells the server to stop
                    if not line.startswith("data:") or line.strip() == "data: [DONE]":
                        continue
                    payload = json.loads(line[5:])
                    if payload.get("usage"):
                        usage_tokens = payload["usage"].get("completion_tokens")
                    for choice in payload.get("choices") or []:
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            first = first or time.perf_counter()
                            chunks += 1
                            parts.append(delta)
                            events.put(("text", side, "".join(parts).strip()))
            ended = time.perf_counter()
            telemetry = side_telemetry(
                requested_at=requested_at,
                started=started,
                first_token_at=first,
                ended=ended,
                output_tokens=usage_tokens if usage_tokens is not None else chunks,
                memory_mb=None,  # the server's memory is not ours to see
                peak_memory_mb=0.0,
                batched=False,
                device="remote",
            )
            events.put(("done", side, ("".join(parts).strip(), telemetry)))
        except Exception as error:  # an unreachable or failing server voids the battle, not the app
            events.put(("error", side, f"{type(error).__name__}: {error}"))

    def stream_pair(
        self,
        question: str,
        name_a: str,
        name_b: str,
        settings: GenerationSettings,
        requested_at: float | None = None,
    ) -> Iterator[PairUpdate]:
        """Both sides as two concurrent streamed requests, merged into pair updates."""
        contestants = {"a": self.contestant(name_a), "b": self.contestant(name_b)}
        events: Queue[SideEvent] = Queue()
        cancelled = threading.Event()
        for side, contestant in contestants.items():
            threading.Thread(
                target=self._answer,
                args=(side, contestant, question, settings, requested_at, events, cancelled),
                name=f"medarena-remote-{side}",
                daemon=True,
            ).start()
        yield from merge_sides(events, cancelled.set)

    def compute(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run other work (the battle-time scorer) here: a remote backend has no local model."""
        return function(*args, **kwargs)

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()
