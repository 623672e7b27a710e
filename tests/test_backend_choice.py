"""Which backend `python app.py` serves on: the `auto` default and its fallback (wiring only).

The starters are stand-ins here because what is tested is the choice between them; the real
engines behind them are tested in test_engine.py, test_vllm_backend.py (where `auto` starts the
real vLLM engine) and test_browser.py.

Run: ``python -m pytest tests/test_backend_choice.py -q``
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from app import parse_args
from arena.serving.backends import BACKEND_CHOICES, BackendOptions, start_auto, start_fastest


@dataclass
class StartedStandIn:
    kind: str
    warnings: list[str] = field(default_factory=list)
    contestants: list[str] = field(default_factory=lambda: ["base", "adapter"])
    closed: bool = False

    def contestant_names(self) -> list[str]:
        return self.contestants

    def close(self) -> None:
        self.closed = True


def starter(kind: str, started: list[str]):
    def start(options: BackendOptions) -> StartedStandIn:
        started.append(kind)
        return StartedStandIn(kind)

    return start


@pytest.mark.parametrize(
    ("vllm_installed", "serving"),
    [(True, "vllm"), (False, "peft")],  # no vLLM (a CPU Space) is no fault: no start-up note
)
def test_auto_serves_on_vllm_where_installed_else_on_peft(vllm_installed: bool, serving: str) -> None:
    started: list[str] = []
    backend = start_auto(
        BackendOptions(), vllm_installed=vllm_installed,
        vllm_starter=starter("vllm", started), peft_starter=starter("peft", started),
    )  # fmt: skip
    assert (backend.kind, backend.warnings, started) == (serving, [], [serving])


def test_auto_falls_back_to_peft_with_a_one_line_start_up_note_when_vllm_fails() -> None:
    started: list[str] = []

    def failing_vllm(options: BackendOptions) -> StartedStandIn:
        started.append("vllm")
        raise RuntimeError("Engine core initialization failed. See root cause above.\nTraceback ...")

    backend = start_auto(
        BackendOptions(), vllm_installed=True, vllm_starter=failing_vllm,
        peft_starter=starter("peft", started),
    )  # fmt: skip
    assert started == ["vllm", "peft"]
    assert backend.kind == "peft"
    assert backend.warnings == [
        "serving on the PEFT engine: vLLM did not start (Engine core initialization failed. See root cause above.)"
    ]


@pytest.mark.parametrize("served", [0, 1])
def test_auto_falls_back_to_peft_when_vllm_starts_fewer_than_two_contestants(served: int) -> None:
    """vLLM skips each base it cannot serve and still 'starts'; an arena of 0 or 1 refuses every battle."""
    started: list[str] = []
    skipped = [
        "skipped gemma3-270m: vLLM could not start /cache/gemma3-270m: ValueError: no GGUF support\ndetail",
        "skipped qwen3-4b: not downloaded",
    ]
    vllm = StartedStandIn("vllm", warnings=list(skipped), contestants=["smollm2-135m"][:served])

    def vllm_starter(options: BackendOptions) -> StartedStandIn:
        started.append("vllm")
        return vllm

    backend = start_auto(
        BackendOptions(), vllm_installed=True, vllm_starter=vllm_starter,
        peft_starter=starter("peft", started),
    )  # fmt: skip
    assert (backend.kind, started, vllm.closed) == ("peft", ["vllm", "peft"], True)
    noun = "contestant" if served == 1 else "contestants"
    assert backend.warnings == [
        f"serving on the PEFT engine: vLLM did not start (it served {served} {noun}, a battle needs 2: "
        "skipped gemma3-270m: vLLM could not start /cache/gemma3-270m: ValueError: no GGUF support; "
        "skipped qwen3-4b: not downloaded)"
    ]


def test_unknown_backends_fail_listing_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid: auto, peft, vllm, llamacpp, remote"):
        BackendOptions(kind="tpu")  # type: ignore[arg-type]
    assert BACKEND_CHOICES == ("auto", "peft", "vllm", "llamacpp", "remote")


@pytest.mark.parametrize(
    ("llamacpp_installed", "on_gpu", "serving"),
    [(True, False, "llamacpp"), (False, False, "vllm-or-peft"), (True, True, "vllm-or-peft")],
)
def test_auto_serves_on_llamacpp_on_a_cpu_where_installed(
    llamacpp_installed: bool, on_gpu: bool, serving: str, caplog: pytest.LogCaptureFixture
) -> None:
    started: list[str] = []
    with caplog.at_level("INFO", logger="arena.serving.backends"):
        backend = start_fastest(
            BackendOptions(), llamacpp_installed=llamacpp_installed, on_gpu=on_gpu,
            llamacpp_starter=starter("llamacpp", started), fallback=starter("vllm-or-peft", started),
        )  # fmt: skip
    assert (backend.kind, backend.warnings, started) == (serving, [], [serving])
    why = (
        "fastest backend here for one clinician"
        if serving == "llamacpp"
        else ("GPU" if on_gpu else "not installed")
    )
    assert why in caplog.text  # the choice is explained at start


def test_auto_falls_back_with_a_one_line_note_when_llamacpp_fails() -> None:
    started: list[str] = []

    def failing(options: BackendOptions) -> StartedStandIn:
        started.append("llamacpp")
        raise RuntimeError("llama.cpp could not load model.gguf\nmore detail")

    backend = start_fastest(
        BackendOptions(), llamacpp_installed=True, on_gpu=False, llamacpp_starter=failing,
        fallback=starter("peft", started),
    )  # fmt: skip
    assert started == ["llamacpp", "peft"]
    assert backend.warnings == [
        "serving on the peft backend: llama.cpp did not start (llama.cpp could not load model.gguf)"
    ]


@pytest.mark.parametrize(("served", "min_served"), [(0, 1), (1, 2)])
def test_auto_falls_back_when_llamacpp_serves_too_few(served: int, min_served: int) -> None:
    """A seed model's GGUF not at hand: llama.cpp starts without it, and auto must not keep an
    engine that refuses the battle (or the evaluation) while vLLM or PEFT could serve it."""
    started: list[str] = []
    llama = StartedStandIn(
        "llamacpp", warnings=["skipped phi3: Phi-3-mini-4k-instruct-q4.gguf is not in the Hugging Face cache"],
        contestants=["smollm2-135m/base"][:served],
    )  # fmt: skip

    def llamacpp_starter(options: BackendOptions) -> StartedStandIn:
        started.append("llamacpp")
        return llama

    backend = start_fastest(
        BackendOptions(min_served=min_served), llamacpp_installed=True, on_gpu=False,
        llamacpp_starter=llamacpp_starter, fallback=starter("peft", started),
    )  # fmt: skip
    assert (backend.kind, started, llama.closed) == ("peft", ["llamacpp", "peft"], True)
    needed = "a battle needs 2" if min_served == 2 else "1 asked for"
    noun = "contestant" if served == 1 else "contestants"
    assert backend.warnings == [
        f"serving on the peft backend: llama.cpp did not start (it served {served} {noun}, {needed}: "
        "skipped phi3: Phi-3-mini-4k-instruct-q4.gguf is not in the Hugging Face cache)"
    ]


def test_the_app_defaults_to_auto_and_reads_medarena_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDARENA_BACKEND", raising=False)
    assert parse_args([]).backend == "auto"
    monkeypatch.setenv("MEDARENA_BACKEND", "peft")
    assert parse_args([]).backend == "peft"
    with pytest.raises(SystemExit):
        parse_args(["--backend", "tpu"])
