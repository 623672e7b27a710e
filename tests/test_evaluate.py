"""Tests for arena/evaluate.py: real smollm2-135m answers, real scorers, a real SQLite file.

Run: ``python -m pytest tests/test_evaluate.py -q`` (the model tests are marked slow). One engine is
loaded for the module and handed to ``main`` through its ``start_engine`` parameter, which also records
the `BackendOptions` main asked it to start; the bad-input tests hand in a starter that fails if a model
is ever loaded. Scoring what is served: real llama.cpp (the embedded Q4_1 SmolLM2 GGUF) and PEFT (NF4)
runs on the bundled set record their weights, and the board shows each only beside those weights.
"""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from arena.board import LEADERBOARD_COLUMNS, standing_cells
from arena.eval.results import (
    FREE_TEXT_METRICS,
    LEADERBOARD_METRICS,
    MCQ_METRICS,
    NOT_MEASURED_HERE,
    QUALITY_METRICS,
    ServedResults,
    leaderboard_metrics,
    metric_human_agreement,
    served_results,
)
from arena.evaluate import main
from arena.leaderboard import build_leaderboard
from arena.serving.backends import BackendOptions
from arena.serving.peft_engine import ArenaEngine
from arena.store.battles import ArenaStore
from arena.votes import VoteInput

ROOT = Path(__file__).resolve().parent.parent
MEDQUAD = str(ROOT.parent / "shared" / "data" / "medquad" / "medquad.jsonl")
MEDQA = str(ROOT.parent / "shared" / "data" / "medqa_usmle" / "medqa_usmle.jsonl")
MODEL = "smollm2-135m"
needs_shared_data = pytest.mark.skipif(
    not (Path(MEDQUAD).is_file() and Path(MEDQA).is_file()),
    reason="../shared/data (MedQuAD and MedQA-USMLE) is absent; the model runs score those sets",
)
# Per-answer means: the percentile bootstrap interval of a mean contains the mean.
MEAN_METRICS = (*FREE_TEXT_METRICS, "mcq_accuracy", "mcq_unreadable_rate")


@dataclass
class RecordingStarter:
    """Hands main the module's one engine and records the options main asked to start with."""

    engine: ArenaEngine
    calls: list[BackendOptions] = field(default_factory=list)

    def __call__(self, options: BackendOptions) -> ArenaEngine:
        self.calls.append(options)
        return self.engine


@dataclass(frozen=True)
class Invocation:
    code: int
    stdout: str
    run_id: str | None


def run_main(argv: list[str], **kwargs: Any) -> Invocation:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv, **kwargs)
    stored = [line for line in out.getvalue().splitlines() if line.startswith("stored ")]
    run_id = stored[0].split("(run ")[1].split(")")[0] if stored else None
    return Invocation(code, out.getvalue(), run_id)


def eval_args(db: Path, adapters: Path, adapter: str, limit: int = 10) -> list[str]:
    return [
        "--model", MODEL, "--adapter", adapter, "--data", MEDQUAD, "--data", MEDQA,
        "--split", "all", "--limit", str(limit), "--max-new-tokens", "32", "--batch-size", "10",
        "--db", str(db), "--adapters-dir", str(adapters),
    ]  # fmt: skip


def cache_count(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return connection.execute("SELECT COUNT(*) FROM eval_cache").fetchone()[0]


def rows_of(store: ArenaStore, run_id: str | None) -> list[dict[str, Any]]:
    return [row for row in store.eval_results() if row["run_id"] == run_id]


# --------------------------------------------------------------------------- real model runs


@pytest.fixture(scope="module")
def starter(tiny_adapters: Path) -> RecordingStarter:
    return RecordingStarter(ArenaEngine.start(adapters_dir=tiny_adapters, model_keys=[MODEL]))


@pytest.fixture(scope="module")
def adapter_run(tiny_adapters: Path) -> str:
    return max(path.name for path in (tiny_adapters / MODEL).iterdir() if not path.name.startswith("."))


@dataclass(frozen=True)
class Runs:
    db: Path
    store: ArenaStore
    base: Invocation
    adapter: Invocation
    base_again: Invocation
    cache_before_repeat: int
    cache_after_repeat: int
    starter_calls: list[BackendOptions]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, starter: RecordingStarter, tiny_adapters: Path) -> Runs:
    db = tmp_path_factory.mktemp("evaluate") / "votes.db"
    base = run_main(eval_args(db, tiny_adapters, "none"), start_engine=starter)
    adapter = run_main(eval_args(db, tiny_adapters, "latest"), start_engine=starter)
    before = cache_count(db)
    base_again = run_main(eval_args(db, tiny_adapters, "none"), start_engine=starter)
    return Runs(
        db, ArenaStore(db), base, adapter, base_again, before, cache_count(db), list(starter.calls[-3:])
    )


@pytest.mark.slow
@needs_shared_data
def test_main_loads_only_the_needed_contestant(runs: Runs, adapter_run: str) -> None:
    assert [run.code for run in (runs.base, runs.adapter, runs.base_again)] == [0, 0, 0]
    plain, with_adapter, _ = runs.starter_calls
    assert plain.model_keys == (MODEL,) and plain.adapter_selection == ()
    assert plain.include_plain_bases is True and plain.min_served == 1  # auto keeps one contestant's backend
    assert with_adapter.adapter_selection == (f"{MODEL}/{adapter_run}",)
    assert with_adapter.include_plain_bases is False


@pytest.mark.slow
@needs_shared_data
def test_every_metric_is_stored_with_an_interval(runs: Runs, adapter_run: str) -> None:
    for invocation, expected_adapter in ((runs.base, None), (runs.adapter, adapter_run)):
        rows = rows_of(runs.store, invocation.run_id)
        assert {row["adapter_run"] for row in rows} == {expected_adapter}
        by_dataset: dict[str, dict[str, dict[str, Any]]] = {}
        for row in rows:
            by_dataset.setdefault(row["dataset"], {})[row["metric"]] = row
        assert set(by_dataset) == {"medquad", "medqa_usmle"}
        free_text, mcq = by_dataset["medquad"], by_dataset["medqa_usmle"]
        assert set(FREE_TEXT_METRICS) <= set(free_text) and set(MCQ_METRICS) <= set(mcq)
        assert not set(MCQ_METRICS) & set(free_text) and not set(FREE_TEXT_METRICS) & set(mcq)
        for metrics_of_set, names in ((free_text, FREE_TEXT_METRICS), (mcq, MCQ_METRICS)):
            for name in names:
                row = metrics_of_set[name]
                assert row["n"] == 10 and row["split"] == "all"
                assert row["ci_low"] is not None and row["ci_high"] is not None
                assert 0.0 <= row["ci_low"] <= row["ci_high"] <= 1.0
                if name in MEAN_METRICS:
                    assert row["ci_low"] <= row["value"] <= row["ci_high"]
        assert free_text["bertscore_f1"]["scoring_model"] == "all-MiniLM-L6-v2@L6"
        assert free_text["embedding_f1"]["scoring_model"] == "all-MiniLM-L6-v2"
        for metrics_of_set in (free_text, mcq):
            assert metrics_of_set["gen.max_new_tokens"]["value"] == 32
            assert metrics_of_set["gen.temperature"]["value"] == 0  # the arena's greedy default
            assert metrics_of_set["tokens_per_s"]["value"] > 0
            assert metrics_of_set["latency_s"]["value"] >= metrics_of_set["ttft_s"]["value"] > 0
            assert metrics_of_set["peak_rss_mb"]["value"] > 0
        assert len({row["run_id"] for row in rows}) == 1 and len({row["created_at"] for row in rows}) == 1
        assert all(row["git_commit"] for row in rows)
        assert "generated 10 new answers, 0 from cache" in invocation.stdout


@pytest.mark.slow
@needs_shared_data
def test_a_repeated_run_generates_nothing_and_reproduces_every_number(runs: Runs) -> None:
    assert runs.base_again.stdout.count("generated 0 new answers, 10 from cache") == 2
    assert runs.cache_after_repeat == runs.cache_before_repeat == 40  # 2 contestants x 2 sets x 10
    first = {
        (row["dataset"], row["metric"]): (row["value"], row["ci_low"], row["ci_high"], row["dataset_hash"])
        for row in rows_of(runs.store, runs.base.run_id)
        if row["metric"] in QUALITY_METRICS
    }
    again = rows_of(runs.store, runs.base_again.run_id)
    assert {
        (row["dataset"], row["metric"]): (row["value"], row["ci_low"], row["ci_high"], row["dataset_hash"])
        for row in again
        if row["metric"] in QUALITY_METRICS
    } == first
    # Nothing was generated, so nothing was timed: the report keeps the first run's speed.
    assert not {row["metric"] for row in again} & {"ttft_s", "latency_s", "tokens_per_s", "peak_rss_mb"}


@pytest.mark.slow
@needs_shared_data
def test_a_larger_limit_generates_only_the_missing_answers(
    runs: Runs, starter: RecordingStarter, tiny_adapters: Path
) -> None:
    args = ["--model", MODEL, "--data", MEDQUAD, "--split", "all", "--limit", "11", "--max-new-tokens", "32",
            "--db", str(runs.db), "--adapters-dir", str(tiny_adapters)]  # fmt: skip
    before = cache_count(runs.db)
    invocation = run_main(args, start_engine=starter)
    assert invocation.code == 0
    assert "generated 1 new answer, 10 from cache" in invocation.stdout
    assert cache_count(runs.db) == before + 1


@pytest.mark.slow
@needs_shared_data
def test_report_writes_markdown_csv_png_and_the_base_vs_adapter_delta(
    runs: Runs, adapter_run: str, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    invocation = run_main(["--report", "--db", str(runs.db), "--out", str(out)])
    assert invocation.code == 0
    markdown = (out / "eval_report.md").read_text()
    assert (out / "eval_report.png").read_bytes().startswith(b"\x89PNG")
    assert "## Free-text sets" in markdown and "## Multiple-choice sets" in markdown
    assert "## Fine-tuned minus base" in markdown and adapter_run in markdown

    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in runs.store.eval_results():
        if row["dataset"] == "medquad" and row["n"] == 10:
            latest[(row["contestant"], row["metric"])] = row  # insertion order: the last is the latest
    base_name = next(name for name, _ in latest if "base" in name)
    adapter_name = next(name for name, _ in latest if adapter_run in name)
    delta = latest[(adapter_name, "bertscore_f1")]["value"] - latest[(base_name, "bertscore_f1")]["value"]
    assert f"{delta:+.3f}" in markdown.split("## Fine-tuned minus base")[1]

    with (out / "eval_report.csv").open(encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    assert header[:3] == ["contestant", "model_key", "adapter_run"] and "ci_high" in header


@pytest.mark.slow
@needs_shared_data
def test_leaderboard_metrics_on_the_stored_rows(runs: Runs) -> None:
    board = leaderboard_metrics(runs.store.eval_results())
    assert len(board) == 2
    for contestant, values in board.items():
        assert set(values) == set(LEADERBOARD_METRICS)
        stored = [r for r in runs.store.eval_results(contestant) if r["metric"] == "bertscore_f1"]
        assert values["bertscore_f1"] == (stored[-1]["value"], stored[-1]["ci_low"], stored[-1]["ci_high"])


# --------------------------------------------------------------------------- pure functions


def result(contestant: str, dataset: str, metric: str, value: float, created_at: str) -> dict[str, Any]:
    return {"contestant": contestant, "dataset": dataset, "split": "test", "metric": metric,
            "value": value, "ci_low": value - 0.1, "ci_high": value + 0.1, "created_at": created_at}  # fmt: skip


def test_leaderboard_prefers_the_bundled_set_then_the_latest_result() -> None:
    rows = [
        result("A", "bundled", "bertscore_f1", 0.50, "2025-01-01T00:00:00"),
        result("A", "medquad", "bertscore_f1", 0.70, "2025-01-02T00:00:00"),  # newer, but not bundled
        result("A", "bundled", "bertscore_f1", 0.55, "2025-01-03T00:00:00"),  # latest bundled wins
        result("B", "medquad", "bertscore_f1", 0.60, "2025-01-01T00:00:00"),
        result("B", "pubmedqa", "mcq_accuracy", 0.40, "2025-01-01T00:00:00"),
        result("B", "medqa_usmle", "mcq_accuracy", 0.30, "2025-01-02T00:00:00"),  # no bundled: latest
        result("B", "medqa_usmle", "rouge1", 0.20, "2025-01-02T00:00:00"),  # not a leaderboard metric
    ]
    board = leaderboard_metrics(rows)
    assert board["A"] == {"bertscore_f1": (0.55, pytest.approx(0.45), pytest.approx(0.65))}
    assert board["B"]["bertscore_f1"][0] == 0.60 and board["B"]["mcq_accuracy"][0] == 0.30
    assert "rouge1" not in board["B"]
    assert leaderboard_metrics([]) == {}


def battle(outcome: str, score_a: float | None, score_b: float | None) -> dict[str, Any]:
    return {"contestant_a": "A", "contestant_b": "B", "outcome": outcome,
            "bertscore_a": score_a, "bertscore_b": score_b}  # fmt: skip


def test_metric_human_agreement_counts_decisive_votes_with_two_different_scores() -> None:
    battles = [
        battle("model_a", 0.9, 0.5),  # agrees
        battle("model_b", 0.4, 0.6),  # agrees
        battle("model_b", 0.8, 0.2),  # disagrees
        battle("model_a", 0.7, 0.1),  # agrees
        battle("tie", 0.9, 0.1),  # not decisive
        battle("both_bad", 0.9, 0.1),  # not decisive
        battle("model_a", None, 0.3),  # no score
        battle("model_b", 0.5, 0.5),  # equal scores say nothing
    ]
    share, low, high, n = metric_human_agreement(battles)
    assert (share, n) == (0.75, 4)
    assert low is not None and high is not None and 0.0 <= low <= share <= high <= 1.0
    assert metric_human_agreement(battles) == (share, low, high, n)  # fixed bootstrap seed
    assert metric_human_agreement([battle("tie", 0.9, 0.1)]) == (None, None, None, 0)


def test_metric_human_agreement_reads_the_stores_rated_battles(tmp_path: Path) -> None:
    store = ArenaStore(tmp_path / "votes.db")
    for outcome, score_a, score_b in (("model_a", 0.8, 0.3), ("model_a", 0.2, 0.6), ("model_b", 0.1, 0.9)):
        battle_id = store.create_battle(
            "What lowers LDL cholesterol?", "A", "B", {"temperature": 0}, session_id="session-eval-1"
        )
        store.finish_battle(
            battle_id, "a", "b", {}, {}, identity_leak=False, bertscore_a=score_a, bertscore_b=score_b
        )
        store.record_vote(VoteInput(battle_id, outcome, session_id="session-eval-1"))
    rated = store.rated_battles()
    assert [(r["bertscore_a"], r["bertscore_b"]) for r in rated] == [(0.8, 0.3), (0.2, 0.6), (0.1, 0.9)]
    share, _, _, n = metric_human_agreement(rated)
    assert n == 3 and share == pytest.approx(2 / 3)


# --------------------------------------------------------------------------- scored as served


def test_a_metric_counts_only_beside_the_weights_it_was_measured_on() -> None:
    def row(contestant_id: str, weights: str | None, metric: str = "bertscore_f1") -> dict[str, Any]:
        return {**result(contestant_id, "bundled", metric, 0.5, "2026-12-01"), "contestant_id": contestant_id,
                "weights": weights}  # fmt: skip

    rows = [
        row("smollm2-135m/base", "nf4"),
        row("smollm2-135m/base", "gguf-q4_1", "rougeL"),
        row("gemma3-270m/base", "nf4"),  # served on the GGUF now: measured elsewhere only
        row("gemma3-270m/base", "gguf-q4_k_m", "gen.max_new_tokens"),  # a setting, not a board metric
        row("qwen2.5-0.5b/base", None),  # written before weights were recorded
        row("remote/demo", ""),  # a remote server's weights are unknown: nothing matches them
        row("phi/base", "nf4"),  # not served now
    ]
    served = {"smollm2-135m/base": "gguf-q4_1", "gemma3-270m/base": "gguf-q4_k_m",
              "qwen2.5-0.5b/base": "bf16", "remote/demo": ""}  # fmt: skip
    matched = served_results(rows, served)
    assert [(r["contestant_id"], r["metric"]) for r in matched.rows] == [
        ("smollm2-135m/base", "rougeL"),
        ("gemma3-270m/base", "gen.max_new_tokens"),
    ]
    assert matched.elsewhere == {"gemma3-270m/base", "qwen2.5-0.5b/base", "remote/demo"}
    assert served_results(rows, {}) == ServedResults([], frozenset())


def test_each_backend_names_its_served_weights_from_the_loader_and_the_registry() -> None:
    from arena.serving.llamacpp_backend import WEIGHTS_PREFIX, file_type_name
    from arena.serving.vllm_config import ServedModel, VLLMSettings, served_weights

    constants = {"LLAMA_FTYPE_ALL_F32": 0, "LLAMA_FTYPE_MOSTLY_F16": 1, "LLAMA_FTYPE_MOSTLY_Q4_1": 3,
                 "LLAMA_FTYPE_MOSTLY_Q4_K_M": 15, "LLAMA_FTYPE_GUESSED": 1024}  # fmt: skip
    assert [WEIGHTS_PREFIX + file_type_name(code, constants) for code in (3, 15, 1, 0)] == [
        "gguf-q4_1", "gguf-q4_k_m", "gguf-f16", "gguf-f32"
    ]  # fmt: skip
    assert file_type_name(None, constants) == "unknown" and file_type_name(99, constants) == "type99"
    cpu = VLLMSettings(dtype="float32")
    assert served_weights(ServedModel("folder", None, "cpu", "fp32 vLLM"), cpu) == "fp32"
    assert served_weights(ServedModel("hub/id", None, "cuda", "bf16 vLLM", "bfloat16"), cpu) == "bf16"
    assert served_weights(ServedModel("hub/awq", "awq", "cuda", "awq vLLM", "float16"), cpu) == "awq"


@dataclass
class KeptBackends:
    """Starts each backend main asks for with the app's own factory, and keeps it for the test."""

    started: list[Any] = field(default_factory=list)

    def __call__(self, options: BackendOptions) -> Any:
        from arena.eval.runner import start_eval_backend

        self.started.append(start_eval_backend(options))
        return self.started[-1]


@dataclass(frozen=True)
class ServedRuns:
    db: Path
    llamacpp: Invocation
    peft: Invocation
    loglik_on_llamacpp: Invocation
    backends: KeptBackends


@pytest.fixture(scope="module")
def served_runs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    db = tmp_path_factory.mktemp("served") / "votes.db"
    backends = KeptBackends()
    common = ["--model", MODEL, "--data", "bundled", "--limit", "3", "--max-new-tokens", "8",
              "--db", str(db), "--adapters-dir", str(ROOT / "adapters")]  # fmt: skip
    llamacpp = run_main([*common, "--backend", "llamacpp"], start_engine=backends)
    peft = run_main([*common, "--backend", "peft"], start_engine=backends)
    loglik = run_main(
        [*common[:2], "--data", "bundled-mcq", "--mcq-scoring", "loglik", "--db", str(db), "--backend",
         "llamacpp"], start_engine=backends,
    )  # fmt: skip
    yield ServedRuns(db, llamacpp, peft, loglik, backends)
    for backend in backends.started:
        backend.close()


@pytest.mark.slow
def test_evaluate_scores_the_served_weights_and_the_board_matches_them(served_runs: ServedRuns) -> None:
    from arena.service import ArenaService
    from finetune.data import load_dataset_source

    runs = served_runs
    assert (runs.llamacpp.code, runs.peft.code) == (0, 0), runs.llamacpp.stdout + runs.peft.stdout
    llamacpp, peft = runs.backends.started[:2]
    assert (llamacpp.kind, peft.kind) == ("llamacpp", "peft")
    store = ArenaStore(runs.db)
    weights = {
        run: {row["weights"] for row in rows_of(store, run.run_id)} for run in (runs.llamacpp, runs.peft)
    }
    assert weights == {runs.llamacpp: {"gguf-q4_1"}, runs.peft: {"nf4"}}  # the embedded Q4_1 GGUF; NF4
    with contextlib.closing(sqlite3.connect(runs.db)) as connection:
        cached = connection.execute("SELECT weights, COUNT(*) FROM eval_cache GROUP BY weights").fetchall()
    assert sorted(cached) == [("gguf-q4_1", 3), ("nf4", 3)]  # no answer is reused across weights
    # Log-likelihood scoring reads the PEFT engine's logits: refused on llama.cpp, nothing stored.
    assert runs.loglik_on_llamacpp.code == 2 and runs.loglik_on_llamacpp.run_id is None

    def bertscore(run: Invocation) -> str:
        stored = next(r for r in rows_of(store, run.run_id) if r["metric"] == "bertscore_f1")
        return f"{stored['value']:.3f} [{stored['ci_low']:.3f}, {stored['ci_high']:.3f}]"

    assert bertscore(runs.llamacpp) != bertscore(runs.peft)  # other weights, other answers, other score
    bank = load_dataset_source("bundled").records
    for backend, run in ((llamacpp, runs.llamacpp), (peft, runs.peft)):
        service = ArenaService(backend, store, bank, seed=1, bootstrap_rounds=20, heartbeat_every=None)
        base = next(row for row in service.leaderboard().rows if row.contestant_id == f"{MODEL}/base")
        cells = dict(zip(LEADERBOARD_COLUMNS, standing_cells(base), strict=True))
        assert cells["BERTScore F1"] == bertscore(run)  # the served weights' own score, never the other's
        service.close()
    # The same votes.db served on weights nobody evaluated: the cell says so.
    other = build_leaderboard([], store.eval_results(), {}, {f"{MODEL}/base": "SmolLM2 · base · bf16"},
                              rounds=20, served_weights={f"{MODEL}/base": "bf16"})  # fmt: skip
    assert other.rows[0].metrics == {} and other.rows[0].metrics_note == NOT_MEASURED_HERE
    assert standing_cells(other.rows[0])[LEADERBOARD_COLUMNS.index("BERTScore F1")] == NOT_MEASURED_HERE
    assert any("evaluated only on other weights" in note for note in other.notes)


@pytest.mark.slow
def test_evaluating_on_vllm_stores_the_weights_vllm_serves_and_its_board_shows_them(
    served_runs: ServedRuns,
) -> None:
    from arena.service import ArenaService
    from finetune.data import load_dataset_source

    pytest.importorskip("vllm", reason="vLLM is not installed")
    backends = KeptBackends()
    args = ["--model", MODEL, "--data", "bundled", "--limit", "3", "--max-new-tokens", "8",
            "--db", str(served_runs.db), "--adapters-dir", str(ROOT / "adapters"), "--backend", "vllm"]  # fmt: skip
    # main itself, not run_main: vLLM's engine start does not survive a redirected sys.stdout
    code = main(args, start_engine=backends)
    try:
        assert code == 0
        (vllm,) = backends.started
        served = vllm.contestant_weights(vllm.contestant_names()[0])
        assert vllm.kind == "vllm" and served == "bf16"  # the arena's CPU vLLM serves bf16 weights
        store = ArenaStore(served_runs.db)
        newest = store.eval_results()[-1]["run_id"]
        rows = rows_of(store, newest)
        assert newest not in {served_runs.llamacpp.run_id, served_runs.peft.run_id}
        assert {row["weights"] for row in rows} == {"bf16"} and {row["contestant_id"] for row in rows} == {
            f"{MODEL}/base"
        }  # fmt: skip
        stored = next(r for r in rows if r["metric"] == "bertscore_f1")
        service = ArenaService(
            vllm,
            store,
            load_dataset_source("bundled").records,
            seed=1,
            bootstrap_rounds=20,
            heartbeat_every=None,
        )
        (standing,) = service.leaderboard().rows
        assert standing.metrics["bertscore_f1"] == (stored["value"], stored["ci_low"], stored["ci_high"])
        service.close()
    finally:
        for backend in backends.started:
            backend.close()


# --------------------------------------------------------------------------- bad input


def refuse_to_load(options: BackendOptions) -> ArenaEngine:
    raise AssertionError(f"a model was loaded although the input was bad: {options}")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


def fake_adapter_run(adapters: Path, run_id: str) -> None:
    """An adapter folder as discover_adapters sees one: readable, finite tensors (never loaded here)."""
    import torch
    from safetensors.torch import save_file

    run_dir = adapters / MODEL / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "adapter_config.json").write_text("{}")
    save_file({"lora_A.weight": torch.zeros(2, 4)}, str(run_dir / "adapter_model.safetensors"))


BadCase = Callable[[Path], tuple[list[str], dict[str, str] | None, str]]


def unknown_model(tmp: Path) -> tuple[list[str], dict[str, str] | None, str]:
    return ["--model", "gpt-17", "--data", "bundled"], None, "unknown model 'gpt-17'"


def unknown_adapter(tmp: Path) -> tuple[list[str], dict[str, str] | None, str]:
    fake_adapter_run(tmp / "adapters", "20250101-000000")
    args = [
        "--model",
        MODEL,
        "--adapter",
        "20991231-000000",
        "--data",
        "bundled",
        "--adapters-dir",
        str(tmp / "adapters"),
    ]
    return args, None, "runs available: 20250101-000000"


def no_adapter_at_all(tmp: Path) -> tuple[list[str], dict[str, str] | None, str]:
    args = ["--model", MODEL, "--adapter", "latest", "--data", "bundled", "--adapters-dir", str(tmp / "none")]
    return args, None, "there is no adapter for smollm2-135m"


def no_usable_records(tmp: Path) -> tuple[list[str], dict[str, str] | None, str]:
    source = write_jsonl(tmp / "junk.jsonl", [{"question": "short?", "answer": "x"}, {"text": "no fields"}])
    return ["--model", MODEL, "--data", source], None, "no usable records"


def reference_free(tmp: Path) -> tuple[list[str], dict[str, str] | None, str]:
    questions = [
        {"question": f"What is the first-line treatment for condition number {i}?"} for i in range(5)
    ]
    source = write_jsonl(tmp / "questions_only.jsonl", questions)
    return ["--model", MODEL, "--data", source], None, "no reference answers"


def empty_split(tmp: Path) -> tuple[list[str], dict[str, str] | None, str]:
    source = write_jsonl(
        tmp / "one.jsonl", [{"question": "What causes scurvy in adults?", "answer": "Low vitamin C."}]
    )
    return ["--model", MODEL, "--data", source], None, "use --split all"


def scoring_model_offline(tmp: Path) -> tuple[list[str], dict[str, str] | None, str]:
    environ = {
        "MEDARENA_BERTSCORE_MODEL": "roberta-large",
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(tmp / "hub"),
    }
    return ["--model", MODEL, "--data", "bundled"], environ, "roberta-large is neither in the local"


@pytest.mark.parametrize(
    "case",
    [
        unknown_model,
        unknown_adapter,
        no_adapter_at_all,
        no_usable_records,
        reference_free,
        empty_split,
        scoring_model_offline,
    ],
)
def test_bad_input_exits_2_with_one_sentence_and_stores_nothing(
    case: BadCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "votes.db"
    args, environ, expected = case(tmp_path)
    code = main([*args, "--db", str(db)], environ=environ, start_engine=refuse_to_load)
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    assert ArenaStore(db).eval_results() == []


def test_report_on_an_empty_database_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "votes.db"
    assert main(["--report", "--db", str(db), "--out", str(tmp_path / "out")]) == 2
    assert "there is no database" in capsys.readouterr().err and not db.exists()
    ArenaStore(db)  # an existing database without evaluation results
    assert main(["--report", "--db", str(db), "--out", str(tmp_path / "out")]) == 2
    assert "no evaluation results" in capsys.readouterr().err
    assert not (tmp_path / "out" / "eval_report.md").exists()


@pytest.mark.slow  # starts a Python child process
def test_cli_exit_code_and_stderr_in_a_real_process(tmp_path: Path) -> None:
    db = tmp_path / "votes.db"
    process = subprocess.run(
        [sys.executable, "-m", "arena.evaluate", "--model", "no-such-model", "--data", "bundled", "--db", str(db)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert process.returncode == 2
    assert process.stderr.strip().splitlines() == [process.stderr.strip()]
    assert "unknown model 'no-such-model'" in process.stderr
    assert ArenaStore(db).eval_results() == []
