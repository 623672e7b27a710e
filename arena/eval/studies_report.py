"""The source studies' comparison table: one row per contestant and data set, training figures beside scores.

Columns: model, parameters, quantisation, trainable parameters, train time, peak training memory,
training tokens/s, and the initial, final, minimum and mean training loss and the validation loss
(read from the adapter's `run.json`, checked to belong to that model and run),
serving tokens/s (measured by the evaluation), MCQ accuracy / macro P / R / F1 with 95% CIs (the option
log-likelihood scores when stored, else the letters read from answers; the "MCQ by" column says which),
BERTScore F1, embedding F1, ROUGE-L and BLEU with CIs, and adapter − base on the headline metric with
its paired bootstrap interval ("*" when it excludes zero). Encoder baselines (BioBERT with a
multiple-choice head, `python -m finetune --model biobert --task mcq`) get a row from their run's
test-split scores, computed with the same accuracy/P/R/F1 and intervals. One figure per metric: bars per contestant
with CI whiskers.

Run as:
    python -m arena.evaluate --report --out results/   # prints this table; writes studies.md/.csv and studies_<metric>.png
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arena.eval.results import METRIC_LABELS, DeltaRow, ReportRow, delta_rows, report_rows
from finetune.artifacts import loss_summary
from finetune.registry import ENCODERS, REGISTRY

STUDY_FILES = ("studies.md", "studies.csv")
# (column, metric when the log-likelihood scores exist, metric otherwise)
MCQ_COLUMNS = (
    ("Acc", "mcq_ll_accuracy", "mcq_accuracy"),
    ("P", "mcq_ll_precision_macro", "mcq_precision_macro"),
    ("R", "mcq_ll_recall_macro", "mcq_recall_macro"),
    ("F1", "mcq_ll_f1_macro", "mcq_f1_macro"),
)
FREE_TEXT_COLUMNS = ("bertscore_f1", "embedding_f1", "rougeL", "bleu")
HEADLINE = ("bertscore_f1", "mcq_ll_accuracy", "mcq_accuracy")  # the delta column's metric, first found
FIGURE_METRICS = (
    "mcq_ll_accuracy", "mcq_accuracy", "mcq_ll_f1_macro", "mcq_f1_macro",
    "bertscore_f1", "embedding_f1", "rougeL", "bleu",
)  # fmt: skip


@dataclass(frozen=True)
class StudyRow:
    """One contestant on one data set and split, with its training provenance."""

    row: ReportRow
    run: Mapping[str, Any] | None  # the adapter's run.json (None for a plain base)
    parameters: int | None
    quantisation: str
    mcq_by: str  # "log-likelihood", "letter" or ""
    delta: DeltaRow | None

    def metric(self, name: str) -> dict[str, Any] | None:
        """The stored result for metric `name`, or None."""
        return self.row.metrics.get(name)


def read_run(adapters_dir: Path, model_key: str, run_id: str) -> dict[str, Any] | None:
    """The adapter's run.json, or None when it is missing, unreadable or names another model/run."""
    path = adapters_dir / model_key / run_id / "run.json"
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if run.get("model_key") != model_key or str(run.get("run_id")) != run_id:
        return None  # provenance check: a copied folder must not lend its figures to another run
    return run


def _any_run(adapters_dir: Path, model_key: str) -> dict[str, Any] | None:
    folder = adapters_dir / model_key
    if not folder.is_dir():
        return None
    for run_dir in sorted(folder.iterdir(), reverse=True):
        run = read_run(adapters_dir, model_key, run_dir.name)
        if run is not None:
            return run
    return None


def encoder_result_rows(adapters_dir: Path) -> list[dict[str, Any]]:
    """Result rows for the encoder baselines' runs (the test split each scored when it finished), in
    the evaluation store's row shape, so they join the table beside the decoders' stored results."""
    rows = []
    for spec in ENCODERS:
        folder = adapters_dir / spec.key
        runs = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        for run_id in runs:
            run = read_run(adapters_dir, spec.key, run_id)
            test = (run or {}).get("test")
            if not run or not isinstance(test, dict):
                continue
            contestant = f"{spec.display_name} · MCQ head · {run_id}"
            rows += [
                {
                    "contestant": contestant,
                    "model_key": spec.key,
                    "adapter_run": run_id,
                    "dataset": run["data"]["source"],
                    "dataset_hash": run["data"]["content_hash"],
                    "split": "test",
                    "n": test["n"],
                    "metric": metric,
                    "value": stored["value"],
                    "ci_low": stored["ci_low"],
                    "ci_high": stored["ci_high"],
                    "created_at": run.get("ended_at"),
                    "id": 0,
                }
                for metric, stored in test["metrics"].items()
            ]
    return rows


def study_rows(results: Iterable[Mapping[str, Any]], adapters_dir: Path) -> list[StudyRow]:
    """One studies-table row per contestant and data set, with its run's training figures."""
    rows = [*results, *encoder_result_rows(adapters_dir)]
    pairs = {
        (d.adapter.contestant, d.adapter.dataset, d.adapter.split): d
        for d in delta_rows(report_rows(rows, by_hash=True))
    }
    study = []
    for row in report_rows(rows):
        run = read_run(adapters_dir, row.model_key, row.adapter_run) if row.adapter_run else None
        reference = run or _any_run(adapters_dir, row.model_key)
        # The registry's count: run.json's total_parameters counts a 4-bit model's packed weights
        # (bitsandbytes stores two NF4 values per element), about half the model's real size.
        spec = REGISTRY.get(row.model_key)
        parameters = spec.params_b * 1e9 if spec else reference.get("total_parameters") if reference else None
        quantisation = (
            str(run.get("quantization") or run.get("quant") or "")
            if run
            else row.contestant.rsplit(" · ", 1)[-1]
        )
        mcq_by = (
            "multiple-choice head"
            if run and run.get("task") == "mcq"
            else "log-likelihood"
            if "mcq_ll_accuracy" in row.metrics
            else "letter"
            if "mcq_accuracy" in row.metrics
            else ""
        )
        study.append(
            StudyRow(
                row,
                run,
                parameters,
                quantisation,
                mcq_by,
                pairs.get((row.contestant, row.dataset, row.split)),
            )
        )
    return study


def _cell(stored: Mapping[str, Any] | None, digits: int = 3) -> str:
    if stored is None:
        return ""
    text = f"{float(stored['value']):.{digits}f}"
    if stored.get("ci_low") is not None and stored.get("ci_high") is not None:
        text += f" [{float(stored['ci_low']):.{digits}f}, {float(stored['ci_high']):.{digits}f}]"
    return text


def _millions(value: Any) -> str:
    return f"{int(value) / 1e6:.1f}M" if isinstance(value, int | float) else ""


def _delta_cell(study: StudyRow) -> str:
    delta = study.delta
    if delta is None:
        return ""
    for metric in HEADLINE:
        if metric in delta.paired:
            stored = delta.paired[metric]
            low, high = float(stored["ci_low"]), float(stored["ci_high"])
            mark = " *" if low > 0 or high < 0 else ""
            return f"{METRIC_LABELS[metric]} {float(stored['value']):+.3f} [{low:+.3f}, {high:+.3f}]{mark}"
        if metric in delta.deltas:
            return f"{METRIC_LABELS[metric]} {delta.deltas[metric]:+.3f} (unpaired)"
    return ""


def _loss_cells(run: Mapping[str, Any]) -> list[str]:
    """Initial, final, minimum and mean training loss (from the history) and the validation loss."""
    if not run:
        return [""] * 5
    summary = loss_summary(run.get("losses") or [])
    values = [*summary.values(), run.get("validation_loss")]
    return [f"{float(v):.3f}" if v is not None else "" for v in values]


HEADER = [
    "Model", "Data set", "n", "Params", "Quant", "Trainable", "Train s", "Peak train MB", "Train tok/s",
    "Loss initial", "Loss final", "Loss min", "Loss mean", "Val loss", "Serve tok/s", "MCQ by", "Acc", "P", "R", "F1", "BERTScore F1", "Embedding F1", "ROUGE-L", "BLEU",
    "Δ vs base (paired 95% CI)",
]  # fmt: skip


def table_cells(study: StudyRow) -> list[str]:
    """A study row as the cells of HEADER."""
    run = study.run or {}
    memory = run.get("memory") or {}
    peak = memory.get("peak_vram_mb") or memory.get("peak_rss_mb")
    ll = study.mcq_by == "log-likelihood"
    serve = study.metric("tokens_per_s")
    return [
        study.row.contestant,
        f"{study.row.dataset} ({study.row.split})",
        str(study.row.n),
        _millions(study.parameters),
        study.quantisation,
        _millions(run.get("trainable_parameters")) if run else "",
        f"{float(run['train_seconds']):.0f}" if run.get("train_seconds") is not None else "",
        f"{float(peak):.0f}" if peak is not None else "",
        f"{float(run['train_tokens_per_second']):.1f}"
        if run.get("train_tokens_per_second") is not None
        else "",
        *_loss_cells(run),
        f"{float(serve['value']):.1f}" if serve else "",
        study.mcq_by,
        *(
            _cell(study.metric(ll_metric if ll else letter_metric))
            for _, ll_metric, letter_metric in MCQ_COLUMNS
        ),
        *(_cell(study.metric(metric)) for metric in FREE_TEXT_COLUMNS),
        _delta_cell(study),
    ]


def studies_markdown(results: Iterable[Mapping[str, Any]], adapters_dir: Path) -> str:
    """The studies' table as Markdown."""
    study = study_rows(results, adapters_dir)
    lines = [
        "## The studies' table",
        "",
        "One row per contestant and data set; training figures from each adapter's run.json; 95% bootstrap "
        "intervals; Δ is adapter − base on the same questions with a paired bootstrap interval (* excludes 0).",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---" for _ in HEADER) + "|",
    ]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in table_cells(s)) + " |" for s in study]
    return "\n".join(lines) + "\n"


def studies_figures(study: Sequence[StudyRow], out_dir: Path) -> list[Path]:
    """studies_<metric>.png: one bar per contestant and data set, with CI whiskers; only metrics stored."""
    from matplotlib.figure import Figure

    written = []
    for metric in FIGURE_METRICS:
        bars = [(s, s.metric(metric)) for s in study if s.metric(metric) is not None]
        if not bars:
            continue
        figure = Figure(figsize=(max(5.0, 1.3 * len(bars) + 2), 4.2), layout="constrained")
        axes = figure.subplots()
        values = [float(stored["value"]) for _, stored in bars]
        lows = [
            max(0.0, v - float(stored["ci_low"] if stored["ci_low"] is not None else v))
            for v, (_, stored) in zip(values, bars, strict=True)
        ]
        highs = [
            max(0.0, float(stored["ci_high"] if stored["ci_high"] is not None else v) - v)
            for v, (_, stored) in zip(values, bars, strict=True)
        ]
        axes.bar(range(len(bars)), values, yerr=[lows, highs], capsize=3)
        labels = [f"{s.row.contestant}\n{s.row.dataset}".replace(" · ", "\n") for s, _ in bars]
        axes.set_xticks(range(len(bars)), labels=labels, fontsize=7)
        axes.set_ylabel(f"{METRIC_LABELS[metric]} (95% CI)")
        axes.set_title(METRIC_LABELS[metric])
        path = out_dir / f"studies_{metric}.png"
        figure.savefig(path, dpi=110)
        written.append(path)
    return written


def write_studies(results: Sequence[Mapping[str, Any]], out_dir: Path, adapters_dir: Path) -> list[Path]:
    """studies.md, studies.csv and one studies_<metric>.png per stored metric."""
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown, csv_path = (out_dir / name for name in STUDY_FILES)
    markdown.write_text(studies_markdown(results, adapters_dir), encoding="utf-8")
    study = study_rows(results, adapters_dir)
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(table_cells(s) for s in study)
    return [markdown, csv_path, *studies_figures(study, out_dir)]
