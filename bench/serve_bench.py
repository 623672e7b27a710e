"""Serving benchmark: the PEFT/NF4 engine, the vLLM backend and llama.cpp on the embedded bases, one run.

Each backend runs in a fresh process (clean start-up time and RSS) with the committed adapters,
and every answer is exactly `--tokens` long (min = max new tokens, greedy). Four probes: `peft`,
`vllm` (its CPU engines computing LoRA per adapter slot, `arena/serving/vllm_cpu_lora.py`, the default),
`vllm-stock-lora` (the same engines with vLLM's own CPU LoRA ops) and `llamacpp` (the 4-bit GGUFs
with GGUF LoRAs, `arena/serving/llamacpp_backend.py`). For every token count (default 64 and 128 a side):

1. start-up: `start_backend` until every contestant is served, and RSS of the serving process tree;
2. one battle: SmolLM2 + its adapter vs the SmolLM2 base, wall time (median of `--repeats`), and
   its ratio to a memory-bandwidth bound (weights read per decode step x tokens / the bandwidth of a
   large numpy copy);
3. 8 concurrent battles (16 sequences, same pair): total tokens/s, p95 time to first token from
   the click, slowest battle, sides voided;
4. contestants on different bases (SmolLM2 adapter vs Gemma-3 base): gap between first tokens;
5. the longest gap between streamed updates a real browser saw (the app's UI served from the probe
   process, headless Chromium, a MutationObserver on both answers).

The JSON records the CPU's instruction sets, the measured bandwidth and the load average (the
machine may be shared). Targets (issue #25, 2 quiet cores, 128 tokens): llama.cpp one battle
<= 2.0 s and <= 0.6x vLLM's; start <= 10 s; RSS <= 1.5 GB; 8 battles >= 1.0x vLLM's tokens/s with
no side voided; every backend's longest update gap < 1 s.

AVX2 code paths on an AVX-512 CPU (`--isa avx2`): no AVX2-only machine was at hand, so this mode runs
every probe on the kernels such a CPU gets: torch's AVX2 kernels (ATEN_CPU_CAPABILITY), oneDNN capped
at AVX2 (ONEDNN_MAX_CPU_ISA), vLLM's `_C_AVX2` build (`bench/isa_proxy/sitecustomize.py` tells
its run-time check in every process that there is no AVX-512) and a llama.cpp built for AVX2
(`--llama-cpp-dir`, a `pip install --target` of llama-cpp-python with GGML_NATIVE=OFF). The JSON records what each probe really ran on (torch's capability, the
vLLM kernel library its engine processes mapped, llama.cpp's system info) and refuses to label a
probe AVX2 that used AVX-512. It is a proxy: the same cores and caches, fewer vector units.

    python bench/serve_bench.py                             # ~15 min on 2 cores; JSON in bench/results/
    python bench/serve_bench.py --tokens 128 --probes llamacpp vllm --no-browser
    CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --no-cache-dir --no-deps --target /tmp/llama-avx2 llama-cpp-python==0.3.36
    python bench/serve_bench.py --isa avx2 --llama-cpp-dir /tmp/llama-avx2 --tokens 128
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTION = "What is the first-line treatment for uncomplicated hypertension?"
QUESTIONS = [
    QUESTION,
    "What are the early signs of sepsis in adults?",
    "How is iron-deficiency anaemia diagnosed?",
    "When should a child with a fever see a doctor?",
    "What are the side effects of metformin?",
    "How is community-acquired pneumonia treated?",
    "What are the symptoms of hypothyroidism?",
    "How can type 2 diabetes be prevented?",
]


def pick(names: list[str], model: str, adapter: bool) -> str:
    wanted = "LoRA" if adapter else "· base ·"
    return next(n for n in names if model in n and wanted in n)


PROBES = ("peft", "vllm", "vllm-stock-lora", "llamacpp")
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512_vnni",
             "avx512_bf16", "amx_tile", "asimd", "sve")  # fmt: skip


def cpu_isa() -> dict[str, object]:
    """The CPU's model name and which of the instruction sets that matter to the kernels it has."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags: set[str] = set()
    model = ""
    for line in info.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features") and not flags:
            flags = set(value.split())
        if key.strip() == "model name" and not model:
            model = value.strip()
    return {"model": model, "cores": os.cpu_count(), "has": [f for f in ISA_FLAGS if f in flags]}


def memory_bandwidth_gb_s(megabytes: int = 512, repeats: int = 5) -> float:
    """Copy bandwidth (read + write bytes / s) of a large numpy copy, best of `repeats`."""
    import numpy as np

    source = np.ones(megabytes * 2**20 // 8)
    target = np.empty_like(source)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - started)
    return round(2 * source.nbytes / best / 1e9, 2)


def weights_read_per_step_mb(kind: str, memory_a_mb: float, memory_b_mb: float) -> float:
    """MB of weights one decode step of a same-base battle reads: llama.cpp decodes each side on
    its own context, so both sides' weights are read; vLLM and PEFT batch both rows into one pass
    over the base (the adapters are a few MB either way)."""
    return memory_a_mb + memory_b_mb if kind == "llamacpp" else max(memory_a_mb, memory_b_mb)


def backend_options(kind: str, backend_options_type: type, vllm_settings: type) -> object:
    return backend_options_type(
        kind="vllm" if kind.startswith("vllm") else kind,
        adapters_dir=ROOT / "adapters",
        vllm=vllm_settings(cpu_lora_ops="vllm" if kind == "vllm-stock-lora" else "row_mask"),
    )


def measure(kind: str, backend, names: list[str], tokens: int, battles: int, repeats: int) -> dict:
    """One battle, `battles` concurrent battles and a different-base battle at `tokens` a side."""
    from arena.serving.backends import stream_many
    from arena.serving.common import GenerationSettings

    adapter, base = pick(names, "SmolLM2", True), pick(names, "SmolLM2", False)
    other_base = pick(names, "Gemma-3", False)
    settings = GenerationSettings(max_new_tokens=tokens, min_new_tokens=tokens)
    ones = [stream_many(backend, [(QUESTION, adapter, base)], settings)[0] for _ in range(repeats)]
    one_times = [one.finished_at - one.requested_at for one in ones]
    one, one_s = ones[0], statistics.median(one_times)

    many = stream_many(
        backend, [(QUESTIONS[i % len(QUESTIONS)], adapter, base) for i in range(battles)], settings
    )
    wall = max(r.finished_at for r in many) - min(r.requested_at for r in many)
    # A side the backend gave up on (the PEFT engine's stall timeout voids a side queued with no
    # output for 120 s) has no telemetry: it adds no tokens and counts as voided.
    sides = [s for r in many for s in (r.final.a, r.final.b)]
    answered = [s.telemetry for s in sides if s.telemetry is not None and not s.error]
    total_tokens = sum(t.output_tokens for t in answered)
    first_tokens = sorted(t.first_token_s for t in answered) or [float("nan")]
    p95 = first_tokens[min(len(first_tokens) - 1, round(0.95 * (len(first_tokens) - 1)))]

    mixed = stream_many(backend, [(QUESTION, adapter, other_base)], settings)[0].final
    gap = abs(mixed.a.telemetry.first_token_s - mixed.b.telemetry.first_token_s)
    step_mb = weights_read_per_step_mb(
        kind, one.final.a.telemetry.memory_mb or 0, one.final.b.telemetry.memory_mb or 0
    )
    return {
        "one_battle_s": round(one_s, 2),
        "one_battle_runs_s": [round(t, 2) for t in one_times],
        "one_battle_tokens": one.final.a.telemetry.output_tokens + one.final.b.telemetry.output_tokens,
        "weights_read_per_step_mb": round(step_mb, 1),
        "many_wall_s": round(wall, 2),
        "many_tokens_per_s": round(total_tokens / wall, 2),
        "many_tokens": total_tokens,
        "many_voided_sides": len(sides) - len(answered),
        "many_p95_first_token_s": round(p95, 3),
        "many_median_first_token_s": round(statistics.median(first_tokens), 3),
        "many_slowest_battle_s": round(max(r.finished_at - r.requested_at for r in many), 2),
        "different_bases_first_token_gap_s": round(gap, 3),
        "different_bases_first_token_s": [mixed.a.telemetry.first_token_s, mixed.b.telemetry.first_token_s],
    }


# Stamps every change of either answer on the page (performance.now(), milliseconds).
PAGE_OBSERVER = """() => { window.__updates = []; const stamp = () => window.__updates.push(performance.now());
  for (const id of ['answer-a', 'answer-b']) new MutationObserver(stamp).observe(
    document.getElementById(id), {subtree: true, childList: true, characterData: true}); }"""


def serve_stamped_ui(backend, tokens: int, prefix: str):
    """The app's own UI for `backend` served from this process on a free port (as `python app.py`
    serves it, backend and server threads side by side), every answer `tokens` long, the service's
    yields stamped with `time.monotonic()` into the list returned: (url, demo, yields, votes folder)."""
    import socket
    import tempfile

    from arena.service import ArenaService
    from arena.serving.common import GenerationSettings
    from arena.store.battles import ArenaStore
    from arena.ui import build_ui
    from finetune.data import load_dataset_source

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    service = ArenaService(
        backend, ArenaStore(folder / "votes.db"), load_dataset_source("bundled").records,
        settings=GenerationSettings(max_new_tokens=tokens, min_new_tokens=tokens), seed=5,
    )  # fmt: skip
    yields: list[float] = []
    stream_battle = service.stream_battle

    def stamped_stream(*args: object, **kwargs: object):
        for progress in stream_battle(*args, **kwargs):
            yields.append(time.monotonic())
            yield progress

    service.stream_battle = stamped_stream
    demo = build_ui(service)
    demo.queue(default_concurrency_limit=backend.concurrent_battles).launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True
    )
    return f"http://127.0.0.1:{port}", demo, yields, folder


def open_arena_page(playwright, chromium: str | None, url: str):
    """Headless Chromium (no sandbox, no GPU) with the arena's page at `url` loaded: (browser, page)."""
    browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
    page = browser.new_page()
    page.goto(url, wait_until="load")
    return browser, page


def type_question(page, index: int) -> None:
    """Battle `index`'s question typed (after "New battle" for every battle but the first), with
    PAGE_OBSERVER stamping the answers' changes from now on; the caller clicks Ask."""
    from playwright.sync_api import expect

    if index:
        page.click("#new-battle")
        expect(page.locator("#status")).to_contain_text("New battle", timeout=30_000)
    page.wait_for_selector("#answer-a", timeout=60_000)  # Gradio renders after "load"
    page.evaluate(PAGE_OBSERVER)
    page.fill("#question textarea", QUESTIONS[index % len(QUESTIONS)])


def browser_stream_gaps(backend, tokens: int, battles: int = 2) -> dict[str, float] | None:
    """The longest gap between streamed updates a real browser saw, over `battles` battles.

    The app's own UI is served from this process (as `python app.py` serves it, backend threads
    and server threads side by side); headless Chromium, on the same cores, asks, and a
    MutationObserver stamps every change of either answer. The service's own yields are stamped
    too: a page gap beside steady yields arose in delivery or in the browser. None when Playwright
    or Chromium is missing."""
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        return None
    if chromium is None:
        return None
    # the service's yields stamped: a page gap with steady yields lies in delivery or the browser
    url, demo, yields, _ = serve_stamped_ui(backend, tokens, "serve-bench-")
    gaps, firsts, service_gaps = [], [], []
    try:
        with sync_playwright() as playwright:
            browser, page = open_arena_page(playwright, chromium, url)
            for index in range(battles):
                type_question(page, index)
                clicked = page.evaluate("() => performance.now()")
                yields.clear()
                page.click("#ask")
                expect(page.locator("#vote-model-a")).to_be_enabled(timeout=600_000)
                stamps = page.evaluate("() => window.__updates")
                service_gaps.append(max((b - a for a, b in itertools.pairwise(yields)), default=0))
                if stamps:
                    firsts.append((stamps[0] - clicked) / 1000)
                    gaps.append(max((b - a for a, b in itertools.pairwise(stamps)), default=0) / 1000)
            browser.close()
    finally:
        demo.close()
    return {
        "browser_longest_update_gap_s": round(max(gaps), 3) if gaps else float("nan"),
        "browser_longest_update_gap_per_battle_s": [round(g, 3) for g in gaps],
        "browser_first_update_s": [round(f, 3) for f in firsts],
        "service_longest_yield_gap_per_battle_s": [round(g, 3) for g in service_gaps],
    }


ISA_PROXY = ROOT / "bench" / "isa_proxy"
AVX2_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MEDARENA_BENCH_ISA": "avx2"}


def kernels_in_use(kind: str) -> dict[str, object]:
    """What this probe's process tree really computes with (AVX2 proxy runs check it)."""
    import psutil
    import torch

    used: dict[str, object] = {"torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}
    if kind == "llamacpp":
        import llama_cpp

        used["llama_cpp"] = llama_cpp.llama_print_system_info().decode().strip()
        used["llama_cpp_module"] = str(Path(llama_cpp.__file__).parent)
    if kind.startswith("vllm"):
        libraries = set()
        for process in [psutil.Process(), *psutil.Process().children(recursive=True)]:
            try:
                libraries |= {Path(m.path).name for m in process.memory_maps() if "/vllm/_C" in m.path}
            except psutil.Error:
                continue
        used["vllm_kernel_libraries"] = sorted(libraries)
    return used


def avx512_in_use(used: dict[str, object]) -> list[str]:
    """The parts of `kernels_in_use` that still run AVX-512 code."""
    found = []
    if str(used.get("torch_cpu_capability", "")).upper().startswith("AVX512"):
        found.append(f"torch {used['torch_cpu_capability']}")
    if "AVX512 = 1" in str(used.get("llama_cpp", "")):
        found.append("llama.cpp built with AVX-512")
    if any(name.startswith("_C.") or "AVX512" in name for name in used.get("vllm_kernel_libraries", [])):
        found.append(f"vLLM kernels {used['vllm_kernel_libraries']}")
    return found


def probe(kind: str, token_counts: list[int], battles: int, repeats: int, browser: bool) -> dict:
    """Everything for one backend, measured in this (fresh) process."""
    from arena.serving.backends import BackendOptions, start_backend, stream_many
    from arena.serving.common import GenerationSettings
    from arena.serving.vllm_config import VLLMSettings, process_tree_rss_mb

    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    backend = start_backend(backend_options(kind, BackendOptions, VLLMSettings))
    startup_s = time.perf_counter() - started
    rss_started = process_tree_rss_mb()
    names = backend.contestant_names()
    warm = GenerationSettings(max_new_tokens=4, min_new_tokens=4)
    adapter, base = pick(names, "SmolLM2", True), pick(names, "SmolLM2", False)
    stream_many(
        backend, [("warm-up", adapter, base), ("warm-up", adapter, pick(names, "Gemma-3", False))], warm
    )
    result: dict[str, object] = {"startup_s": round(startup_s, 2), "contestants": len(names)}
    for tokens in token_counts:
        result[f"tokens_{tokens}"] = measure(kind, backend, names, tokens, battles, repeats)
    result["rss_mb_after_start"] = round(rss_started, 1)
    result["rss_mb"] = round(process_tree_rss_mb(), 1)
    if browser:
        try:
            result["stream"] = browser_stream_gaps(backend, max(token_counts))
        except Exception as error:  # the other figures stand without it
            result["stream"] = {"failed": f"{type(error).__name__}: {str(error).splitlines()[0]}"}
    if kind == "llamacpp":
        import llama_cpp

        result["llama_cpp_system_info"] = llama_cpp.llama_print_system_info().decode().strip()
        result["threads"] = backend.settings.cpu_threads()
    result["kernels"] = kernels_in_use(kind)
    if os.environ.get("MEDARENA_BENCH_ISA") == "avx2" and (leftover := avx512_in_use(result["kernels"])):
        raise SystemExit(f"--isa avx2, but this probe ran AVX-512 code: {'; '.join(leftover)}")
    # The machine is shared: the 1-minute load average before and after this backend's probe.
    result["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    backend.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tokens", type=int, nargs="+", default=[64, 128], help="new tokens per answer (min = max)"
    )
    parser.add_argument("--battles", type=int, default=8, help="concurrent battles")
    parser.add_argument("--repeats", type=int, default=3, help="one-battle runs (the median is reported)")
    parser.add_argument("--probes", nargs="+", choices=PROBES, default=list(PROBES))
    parser.add_argument("--no-browser", action="store_true", help="skip the real-browser stream gap")
    parser.add_argument("--out", type=Path, help="default: bench/results/serve_bench[_avx2_proxy].json")
    parser.add_argument(
        "--isa",
        choices=("native", "avx2"),
        default="native",
        help="avx2: every probe on AVX2 kernels (a proxy for an AVX2-only CPU; see above)",
    )
    parser.add_argument(
        "--llama-cpp-dir",
        type=Path,
        help="a llama-cpp-python installed with --target (--isa avx2: one built for AVX2)",
    )
    parser.add_argument("--probe", choices=PROBES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        result = probe(args.probe, args.tokens, args.battles, args.repeats, not args.no_browser)
        print("RESULT " + json.dumps(result), flush=True)
        return 0

    args.out = args.out or ROOT / "bench" / "results" / (
        "serve_bench.json" if args.isa == "native" else f"serve_bench_{args.isa}_proxy.json"
    )
    environment = dict(os.environ)
    if args.isa == "avx2":
        environment.update(AVX2_ENV)
    # bench/isa_proxy/sitecustomize.py tells every process of the probe (vLLM spawns its engines)
    # that the CPU has no AVX-512; --llama-cpp-dir puts an AVX2 build of llama.cpp first.
    first = [
        *([ISA_PROXY] if args.isa == "avx2" else []),
        *([args.llama_cpp_dir.resolve()] if args.llama_cpp_dir else []),
    ]
    if first:
        environment["PYTHONPATH"] = os.pathsep.join(
            [*map(str, first), *filter(None, [environment.get("PYTHONPATH")])]
        )
    machine = {
        "cpu": cpu_isa(),
        "kernels": args.isa if args.isa == "native" else f"{args.isa} proxy on this CPU (--isa {args.isa})",
        "memory_bandwidth_gb_s": memory_bandwidth_gb_s(),
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
    }
    print("machine", machine, flush=True)
    results: dict[str, dict] = {}
    for kind in args.probes:
        command = [sys.executable, __file__, "--probe", kind, "--tokens", *map(str, args.tokens),
                   "--battles", str(args.battles), "--repeats", str(args.repeats)]  # fmt: skip
        if args.no_browser:
            command.append("--no-browser")
        run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3600, env=environment)
        lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
        if run.returncode != 0 or not lines:
            print(f"{kind} probe failed:\n{run.stderr[-3000:]}", file=sys.stderr)
            results[kind] = {"failed": (run.stderr.strip().splitlines() or ["no output"])[-1]}
            continue
        results[kind] = json.loads(lines[-1][len("RESULT ") :])
        print(kind, results[kind], flush=True)

    ratios = summarize(results, args.tokens, args.battles, machine["memory_bandwidth_gb_s"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"tokens": args.tokens, "battles": args.battles, "machine": machine, **results, "ratios": ratios},
            indent=2,
        )
    )
    return 0


def summarize(results: dict[str, dict], token_counts: list[int], battles: int, bandwidth_gb_s: float) -> dict:
    """Print every backend's figures side by side and return the ratios (vs PEFT and vs vLLM)."""
    served = [k for k in PROBES if k in results and "failed" not in results[k]]
    ratios: dict[str, float] = {}

    def ratio(a: float, b: float) -> float:
        return round(a / b, 2) if b else float("nan")

    for kind in served:
        r = results[kind]
        stream = r.get("stream") or {}
        print(
            f"{kind:16} start {r['startup_s']} s  RSS {r['rss_mb']} MB  "
            f"longest browser update gap {stream.get('browser_longest_update_gap_s', 'n/a')} s "
            f"(service yields: {stream.get('service_longest_yield_gap_per_battle_s', 'n/a')} s)"
        )
    for tokens in token_counts:
        key = f"tokens_{tokens}"
        print(f"\n{tokens} tokens a side:")
        for kind in served:
            m = results[kind][key]
            bound_s = tokens * m["weights_read_per_step_mb"] * 2**20 / (bandwidth_gb_s * 1e9)
            m["one_battle_bandwidth_bound_s"] = round(bound_s, 3)
            m["one_battle_over_bandwidth_bound"] = ratio(m["one_battle_s"], bound_s)
            print(
                f"  {kind:16} one battle {m['one_battle_s']} s ({m['one_battle_over_bandwidth_bound']}x the "
                f"bandwidth bound {bound_s:.2f} s)  {battles} battles {m['many_tokens_per_s']} tok/s, "
                f"p95 first token {m['many_p95_first_token_s']} s, voided {m['many_voided_sides']}/{2 * battles}  "
                f"different bases gap {m['different_bases_first_token_gap_s']} s"
            )
        for kind in served:
            for reference in ("peft", "vllm"):
                if kind == reference or reference not in served:
                    continue
                m, ref = results[kind][key], results[reference][key]
                ratios[f"{key}_one_battle_{kind}_over_{reference}"] = ratio(
                    m["one_battle_s"], ref["one_battle_s"]
                )
                ratios[f"{key}_many_tokens_per_s_{kind}_over_{reference}"] = ratio(
                    m["many_tokens_per_s"], ref["many_tokens_per_s"]
                )
    for kind in served:
        for reference in ("peft", "vllm"):
            if kind != reference and reference in served:
                ratios[f"startup_{kind}_over_{reference}"] = ratio(
                    results[kind]["startup_s"], results[reference]["startup_s"]
                )
                ratios[f"rss_{kind}_over_{reference}"] = ratio(
                    results[kind]["rss_mb"], results[reference]["rss_mb"]
                )
    if "llamacpp" in served and "vllm" in served:
        big = f"tokens_{max(token_counts)}"
        one = ratios.get(f"{big}_one_battle_llamacpp_over_vllm", float("nan"))
        many = ratios.get(f"{big}_many_tokens_per_s_llamacpp_over_vllm", float("nan"))
        llama = results["llamacpp"]
        print(
            f"\ntargets at {max(token_counts)} tokens (issue #25): one battle <= 2.0 s and <= 0.6x vLLM: "
            f"{llama[big]['one_battle_s']} s, {one}x; start <= 10 s: {llama['startup_s']} s; RSS <= 1536 MB: "
            f"{llama['rss_mb']} MB; 8 battles >= 1.0x vLLM tok/s with none voided: {many}x, "
            f"{llama[big]['many_voided_sides']} voided"
        )
    print(
        f"memory bandwidth (numpy copy, read + write): {bandwidth_gb_s} GB/s; the bound is a battle's "
        "weight reads per decode step x tokens / bandwidth"
    )
    return ratios


if __name__ == "__main__":
    sys.exit(main())
