"""The comparison report: eval_report.md (tables, base-vs-adapter deltas), .csv (latest rows), .png (bars).

    from arena.eval.report import write_report
    write_report(store.eval_results(), Path("results"))

Run as: python -m arena.evaluate --report --out results/
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from arena.eval.data import EvaluationError
from arena.eval.results import (
    CHART_METRICS,
    FREE_TEXT_METRICS,
    LOGLIK_METRICS,
    MCQ_METRICS,
    METRIC_LABELS,
    SPEED_DIGITS,
    SPEED_METRICS,
    DeltaRow,
    ReportRow,
    delta_rows,
    latest_rows,
    report_rows,
)
from arena.eval.studies_report import write_studies
from finetune.paths import project_paths
from finetune.scores import BOOTSTRAP_ROUNDS, BOOTSTRAP_SEED

REPORT_FILES = ("eval_report.md", "eval_report.csv", "eval_report.png")


def _cell(row: Mapping[str, Any] | None, digits: int = 3) -> str:
    if row is None:
        return ""
    text = f"{row['value']:.{digits}f}"
    if row.get("ci_low") is not None and row.get("ci_high") is not None:
        text += f" [{row['ci_low']:.{digits}f}, {row['ci_high']:.{digits}f}]"
    return text


def _settings_text(settings: Mapping[str, float]) -> str:
    if not settings:
        return ""
    tokens = int(settings.get("max_new_tokens", 0))
    temperature = settings.get("temperature", 0.0)
    how = (
        "greedy"
        if temperature == 0
        else f"T={temperature:g}, top-p={settings.get('top_p', 1.0):g}, seed={int(settings.get('seed', 0))}"
    )
    return f"{how}, {tokens} tokens"


def _markdown_table(header: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in body]
    return lines


def render_markdown(
    table: Sequence[ReportRow], deltas: Sequence[DeltaRow], scoring_models: Sequence[str]
) -> str:
    """eval_report.md: one table per set kind (latest result, CIs, speed, settings), then the deltas."""
    lines = [
        "# MedArena automatic evaluation",
        "",
        "Latest result per contestant, data set, split and metric; intervals are 95% percentile bootstrap "
        f"({BOOTSTRAP_ROUNDS} rounds, seed {BOOTSTRAP_SEED}). Speed is over the answers generated in the run "
        "that measured it.",
    ]
    if scoring_models:
        lines.append(f"Scoring models: {', '.join(scoring_models)}.")
    for kind, kind_metrics in (
        ("Free-text sets", FREE_TEXT_METRICS),
        ("Multiple-choice sets", MCQ_METRICS + LOGLIK_METRICS),
    ):
        rows = [r for r in table if any(m in r.metrics for m in kind_metrics)]
        if not rows:
            continue
        shown = [m for m in kind_metrics if any(m in r.metrics for r in rows)]
        speed = [m for m in SPEED_METRICS if any(m in r.metrics for r in rows)]
        header = ["Model", "Data set", "Split", "n", *(METRIC_LABELS[m] for m in shown + speed), "Settings"]
        body = [
            [
                r.contestant,
                r.dataset,
                r.split,
                str(r.n),
                *(_cell(r.metrics.get(m)) for m in shown),
                *(_cell(r.metrics.get(m), SPEED_DIGITS[m]) for m in speed),
                _settings_text(r.settings),
            ]
            for r in rows
        ]
        lines += ["", f"## {kind}", "", *_markdown_table(header, body)]
    lines += _delta_section(deltas)
    return "\n".join(lines) + "\n"


def _delta_section(deltas: Sequence[DeltaRow]) -> list[str]:
    """The "Fine-tuned minus base" section: one table per set kind, and a note where settings differ."""
    lines = ["", "## Fine-tuned minus base"]
    if not deltas:
        lines += [
            "",
            "No pair yet: evaluate a model with `--adapter none` and with an adapter on the same data set and split.",
        ]
    for kind, kind_metrics in (
        ("Free-text sets", FREE_TEXT_METRICS),
        ("Multiple-choice sets", MCQ_METRICS + LOGLIK_METRICS),
    ):
        rows = [d for d in deltas if any(m in d.deltas for m in kind_metrics)]
        if not rows:
            continue
        shown = [m for m in kind_metrics if any(m in d.deltas for d in rows)]
        header = ["Model", "Adapter", "Data set", "Split", "n", *(f"Δ {METRIC_LABELS[m]}" for m in shown)]
        body = [
            [
                d.adapter.model_key,
                d.adapter.adapter_run or "",
                d.adapter.dataset,
                d.adapter.split,
                str(d.adapter.n),
                *(_delta_text(d, m) for m in shown),
            ]
            for d in rows
        ]
        lines += [
            "",
            f"{kind}: adapter minus plain base on the same records (same data set hash); where both sides "
            "were scored question by question, the 95% paired bootstrap interval follows (* excludes 0).",
            "",
        ]
        lines += _markdown_table(header, body)
        for d in rows:
            if not d.same_settings:
                lines.append(
                    f"\nNote: {d.adapter.contestant} on {d.adapter.dataset} used {_settings_text(d.adapter.settings)}, "
                    f"the base {_settings_text(d.base.settings)}; the delta mixes settings."
                )
    return lines


def report_figure(table: Sequence[ReportRow]) -> Any:
    """Grouped bars per contestant: BERTScore F1, embedding F1, ROUGE-L, MCQ accuracy, with CI whiskers."""
    from matplotlib.figure import Figure

    contestants = list(dict.fromkeys(r.contestant for r in table))
    series = sorted(
        {(m, r.dataset, r.split) for r in table for m in CHART_METRICS if m in r.metrics},
        key=lambda item: (CHART_METRICS.index(item[0]), item[1], item[2]),
    )
    figure = Figure(figsize=(max(6.0, 2.2 * len(contestants) + 2), 4.8), layout="constrained")
    axes = figure.subplots()
    if not series:
        axes.text(0.5, 0.5, "no quality metrics stored yet", ha="center", va="center")
        axes.set_axis_off()
        return figure
    width = 0.8 / len(series)
    for position, (metric, dataset, split) in enumerate(series):
        xs, heights, below, above = [], [], [], []
        for x, contestant in enumerate(contestants):
            match = next(
                (r for r in table if (r.contestant, r.dataset, r.split) == (contestant, dataset, split)), None
            )
            if match is None or metric not in match.metrics:
                continue
            row = match.metrics[metric]
            value = float(row["value"])
            low = row["ci_low"] if row["ci_low"] is not None else value
            high = row["ci_high"] if row["ci_high"] is not None else value
            xs.append(x - 0.4 + width * (position + 0.5))
            heights.append(value)
            # A macro-F1 point estimate can fall outside its percentile interval; whiskers never go negative.
            below.append(max(0.0, value - low))
            above.append(max(0.0, high - value))
        axes.bar(
            xs,
            heights,
            width,
            yerr=[below, above],
            capsize=3,
            label=f"{METRIC_LABELS[metric]} · {dataset} ({split})",
        )
    axes.set_xticks(
        range(len(contestants)), labels=[name.replace(" · ", "\n") for name in contestants], fontsize=8
    )
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("score (95% CI)")
    axes.set_title("MedArena automatic metrics")
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return figure


def _delta_text(delta: DeltaRow, metric: str) -> str:
    """adapter − base; with its paired bootstrap interval when stored (* when it excludes zero)."""
    if metric not in delta.deltas:
        return ""
    stored = delta.paired.get(metric)
    if stored is None or stored.get("ci_low") is None or stored.get("ci_high") is None:
        return f"{delta.deltas[metric]:+.3f}"
    low, high = float(stored["ci_low"]), float(stored["ci_high"])
    mark = " *" if low > 0 or high < 0 else ""
    return f"{float(stored['value']):+.3f} [{low:+.3f}, {high:+.3f}]{mark}"


def write_report(
    rows: Sequence[Mapping[str, Any]], out_dir: Path, adapters_dir: Path | None = None
) -> list[Path]:
    """eval_report.md (tables + deltas), eval_report.csv (latest rows), eval_report.png (bar chart), and
    the studies' table (studies.md/.csv, studies_<metric>.png; arena/eval/studies_report.py)."""
    if not rows:
        raise EvaluationError(
            "there are no evaluation results in this database yet; run `python -m arena.evaluate --model KEY --data SOURCE` first"
        )
    table = report_rows(rows)
    latest = sorted(latest_rows(rows), key=lambda r: (r["dataset"], r["split"], r["contestant"], r["metric"]))
    scoring_models = sorted({r["scoring_model"] for r in latest if r.get("scoring_model")})
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown, csv_path, png = (out_dir / name for name in REPORT_FILES)
    markdown.write_text(
        render_markdown(table, delta_rows(report_rows(rows, by_hash=True)), scoring_models), encoding="utf-8"
    )
    columns = [
        "contestant", "model_key", "adapter_run", "dataset", "dataset_hash", "split", "n", "metric",
        "value", "ci_low", "ci_high", "scoring_model", "git_commit", "created_at", "run_id",
    ]  # fmt: skip
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(latest)
    report_figure(table).savefig(png, dpi=120)
    adapters = adapters_dir or project_paths().adapters_dir  # run.json figures for the studies' table
    return [markdown, csv_path, png, *write_studies(rows, out_dir, adapters)]
