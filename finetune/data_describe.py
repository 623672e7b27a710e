"""What a data source holds once prepared for training: `python -m finetune.data_describe SOURCE`.

Loads, cleans and splits SOURCE exactly as `python -m finetune` does (same `clean()`, same seeded
split), then:

- prints and plots the token-length distribution of every record under each chosen model's own
  tokenizer (decoders: chat-template prompt + answer + end-of-turn, as `finetune.batching.tokenize`
  builds a training example; encoders: the longest (question, option) pair, as the MCQ head reads it),
  with how many exceed `--max-seq-length`;
- prints and plots the category mix (MedQuAD question type, MedMCQA subject, MedicationQA question
  type, ...) and the source mix (which set each record came from, for `data.mix`);
- writes the processed split as a `datasets.DatasetDict` (`dataset/`, reload with
  `datasets.load_from_disk`) and as CSV (`train.csv`, `validation.csv`, `test.csv`), beside
  `describe.json` with the cleaning report, split sizes, length statistics and the content hash
  that run.json records for the same data.

Run as:
    python -m finetune.data_describe bundled --models smollm2-135m,biobert --out results/describe-bundled
    python -m finetune.data_describe "medmcqa=exports/medmcqa.parquet" --limit 2000
    python -m finetune.data_describe "bundled:0.5,../shared/data/medquad/medquad.jsonl:0.5"   # a mix
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from finetune.batching import prepare_data
from finetune.config import ConfigError, DataSettings, FinetuneConfig
from finetune.data import DataError, LoadedData, MCQRecord, Record, Split
from finetune.registry import ENCODER_REGISTRY, UnknownModelError, get_trainable

DEFAULT_MODELS = ("smollm2-135m", "gemma3-270m", "biobert")
UNCATEGORISED = "(none)"


@dataclass(frozen=True)
class LengthStats:
    """Token lengths of every record under one tokenizer."""

    model: str
    n: int
    minimum: int
    median: float
    p90: int
    p99: int
    maximum: int
    mean: float
    over_limit: int  # records longer than the limit (training cuts their answer or drops them)


def length_stats(model: str, lengths: Sequence[int], limit: int) -> LengthStats:
    """Summary of a length list (nearest-rank percentiles)."""
    ordered = sorted(lengths)

    def rank(fraction: float) -> int:
        return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]

    return LengthStats(
        model=model,
        n=len(ordered),
        minimum=ordered[0],
        median=statistics.median(ordered),
        p90=rank(0.9),
        p99=rank(0.99),
        maximum=ordered[-1],
        mean=round(statistics.fmean(ordered), 1),
        over_limit=sum(length > limit for length in ordered),
    )


def category_mix(records: Sequence[Record]) -> dict[str, int]:
    """Records per category, most common first."""
    return dict(Counter(record.category or UNCATEGORISED for record in records).most_common())


def source_mix(records: Sequence[Record]) -> dict[str, int]:
    """Records per originating set, most common first."""
    return dict(Counter(record.source for record in records).most_common())


def token_lengths(model_key: str, records: Sequence[Record], cache_dir: Path | None) -> list[int]:
    """Each record's length in tokens as `model_key` trains on it."""
    spec = get_trainable(model_key)
    if spec.key in ENCODER_REGISTRY:
        from transformers import AutoTokenizer

        from finetune.mcq_encoder import encode, resolve_checkpoint

        mcq = [r for r in records if isinstance(r, MCQRecord)]
        if len(mcq) != len(records):
            return []  # an MCQ head reads no free text: no lengths, noted in the summary
        tokenizer = AutoTokenizer.from_pretrained(resolve_checkpoint(spec).path)
        return [max(map(len, item.features["input_ids"])) for item in encode(mcq, tokenizer, 10**6)]
    from transformers import AutoTokenizer

    from finetune.batching import end_of_turn_text, tokenize
    from finetune.loading import BaseUnavailableError, convert_embedded, finish_tokenizer

    if spec.embedded is not None:
        tokenizer = AutoTokenizer.from_pretrained(convert_embedded(spec, cache_dir))
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(spec.hf_id)
        except OSError as error:  # offline and not cached
            raise BaseUnavailableError(
                f"the {spec.key} tokenizer ({spec.hf_id}) is not available here"
            ) from error
    tokenizer = finish_tokenizer(tokenizer, spec)
    tokenized = tokenize(
        list(records),
        tokenizer,
        10**9,
        f"tokenize {model_key}",
        end_of_turn=end_of_turn_text(tokenizer, spec),
    )
    return [len(example.input_ids) for example in tokenized.examples]


def record_rows(records: Sequence[Record]) -> list[dict[str, Any]]:
    """Records as flat rows (options as JSON text), the CSV and DatasetDict layout."""
    rows = []
    for record in records:
        row = asdict(record)
        row["options"] = (
            json.dumps(record.options, ensure_ascii=False) if isinstance(record, MCQRecord) else ""
        )
        row.setdefault("focus", "")
        rows.append(
            {
                key: row.get(key, "")
                for key in ("id", "question", "options", "answer", "source", "focus", "category")
            }
        )
    return rows


def write_split(split: Split, data: LoadedData, out_dir: Path) -> list[Path]:
    """train/validation/test as CSV and as a datasets DatasetDict (dataset/) carrying the content hash."""
    import datasets

    written = []
    parts = {"train": split.train, "validation": split.validation, "test": split.test}
    for name, records in parts.items():
        path = out_dir / f"{name}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(
                handle, fieldnames=["id", "question", "options", "answer", "source", "focus", "category"]
            )
            writer.writeheader()
            writer.writerows(record_rows(records))
        written.append(path)
    info = datasets.DatasetInfo(
        description=f"MedArena processed split of {data.source}; content sha256 {data.content_hash}"
    )
    dataset = datasets.DatasetDict(
        {
            name: datasets.Dataset.from_list(record_rows(records), info=info)
            if records
            else datasets.Dataset.from_dict(
                {key: [] for key in ("id", "question", "options", "answer", "source", "focus", "category")},
                info=info,
            )
            for name, records in parts.items()
        }
    )
    dataset.save_to_disk(str(out_dir / "dataset"))
    return [*written, out_dir / "dataset"]


def plot(
    stats_lengths: dict[str, list[int]],
    categories: dict[str, int],
    sources: dict[str, int],
    limit: int,
    path: Path,
    title: str,
) -> None:
    """describe.png: token-length histograms per tokenizer, category and source mix."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(13, 4.2), layout="constrained")
    lengths_axes, category_axes, source_axes = figure.subplots(1, 3)
    for model, lengths in (item for item in stats_lengths.items() if item[1]):
        lengths_axes.hist(lengths, bins=30, alpha=0.5, label=model)
    lengths_axes.axvline(limit, color="black", linestyle="--", linewidth=1, label=f"max_seq_length {limit}")
    lengths_axes.set_xlabel("tokens per training example")
    lengths_axes.set_ylabel("records")
    lengths_axes.legend(fontsize=7)
    lengths_axes.set_title("token lengths", fontsize=10)
    shown = dict(list(categories.items())[:15])
    category_axes.barh(list(shown)[::-1], list(shown.values())[::-1])
    category_axes.tick_params(axis="y", labelsize=7)
    category_axes.set_title(f"categories (top {len(shown)} of {len(categories)})", fontsize=10)
    source_axes.barh(list(sources)[::-1], list(sources.values())[::-1])
    source_axes.tick_params(axis="y", labelsize=7)
    source_axes.set_title("sources", fontsize=10)
    figure.suptitle(title, fontsize=10)
    figure.savefig(path, dpi=110)


def describe(
    source: str,
    models: Sequence[str],
    out_dir: Path,
    *,
    limit: int | None,
    seed: int,
    max_seq_length: int,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """Load, clean, split; measure, plot and write. Returns what describe.json holds."""
    settings = (
        DataSettings(mix=source, source="mix", limit=limit, split_seed=seed)
        if _is_mix(source)
        else DataSettings(source=source, limit=limit, split_seed=seed)
    )
    data, split, mix = prepare_data(FinetuneConfig(data=settings))
    out_dir.mkdir(parents=True, exist_ok=True)
    lengths = {model: token_lengths(model, data.records, cache_dir) for model in models}
    stats = [length_stats(model, values, max_seq_length) for model, values in lengths.items() if values]
    not_measured = [model for model, values in lengths.items() if not values]
    categories, sources = category_mix(data.records), source_mix(data.records)
    plot(
        lengths,
        categories,
        sources,
        max_seq_length,
        out_dir / "describe.png",
        f"{data.source} · {len(data.records)} records",
    )
    written = write_split(split, data, out_dir)
    summary = {
        "source": data.source,
        "kind": data.kind,
        "content_hash": data.content_hash,
        "mix": mix,
        "cleaning": {"read": data.report.read, "kept": data.report.kept, "dropped": data.report.dropped},
        "split_sizes": split.sizes(),
        "split_seed": seed,
        "max_seq_length": max_seq_length,
        "token_lengths": [asdict(s) for s in stats],
        "not_measured": not_measured,  # encoders on free text (their head reads options)
        "categories": categories,
        "sources": sources,
        "files": [str(p) for p in [*written, out_dir / "describe.png"]],
    }
    (out_dir / "describe.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


def _is_mix(source: str) -> bool:
    head, sep, weight = source.rpartition(":")
    try:
        float(weight)
    except ValueError:
        return False
    return bool(sep and head)


def print_summary(summary: dict[str, Any]) -> None:
    """The printed report: cleaning, split, length table, category and source mix."""
    print(f"{summary['source']} ({summary['kind']}), sha256 {summary['content_hash']}")
    cleaning = summary["cleaning"]
    dropped = ", ".join(f"{n} {reason}" for reason, n in cleaning["dropped"].items()) or "none"
    print(f"cleaning: read {cleaning['read']}, kept {cleaning['kept']}, dropped {dropped}")
    print("split: " + ", ".join(f"{k} {v}" for k, v in summary["split_sizes"].items()))
    header = f"{'tokenizer':<16} {'n':>6} {'min':>6} {'median':>7} {'p90':>6} {'p99':>6} {'max':>6} {'mean':>7} {'>' + str(summary['max_seq_length']):>7}"
    print("\n" + header + "\n" + "-" * len(header))
    for s in summary["token_lengths"]:
        print(
            f"{s['model']:<16} {s['n']:>6} {s['minimum']:>6} {s['median']:>7g} {s['p90']:>6} {s['p99']:>6} {s['maximum']:>6} {s['mean']:>7} {s['over_limit']:>7}"
        )
    if summary["not_measured"]:
        print(f"not measured (multiple-choice heads read no free text): {', '.join(summary['not_measured'])}")
    total = sum(summary["categories"].values())
    print(
        "\ncategories: "
        + ", ".join(
            f"{name} {count} ({count / total:.0%})"
            for name, count in list(summary["categories"].items())[:12]
        )
    )
    print("sources: " + ", ".join(f"{name} {count}" for name, count in summary["sources"].items()))
    print("\nwritten: " + ", ".join(summary["files"]))


def main(argv: list[str] | None = None) -> int:
    """python -m finetune.data_describe SOURCE [--models ...] [--out DIR]."""
    parser = argparse.ArgumentParser(
        prog="python -m finetune.data_describe", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "source",
        metavar="SOURCE",
        help="bundled, a file, a hub set, NAME=FILE or a mix A:0.5,B:0.5",
    )
    parser.add_argument(
        "--models", default=",".join(DEFAULT_MODELS), help="tokenizers to measure with (registry keys)"
    )
    parser.add_argument("--out", type=Path, help="output folder (default: results/describe-<source>)")
    parser.add_argument("--limit", type=int, help="a seeded sample of this many cleaned records")
    parser.add_argument("--seed", type=int, default=42, help="split seed (data.split_seed)")
    parser.add_argument(
        "--max-seq-length", type=int, default=512, help="the limit the table counts records over"
    )
    parser.add_argument(
        "--cache-dir", type=Path, help="converted-base cache (default: $MEDARENA_CACHE or ~/.cache/medarena)"
    )
    args = parser.parse_args(argv)
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(args.source.split("=")[0]).stem)[:60]
    out_dir = args.out or Path("results") / f"describe-{slug}"
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        for model in models:
            get_trainable(model)  # every key checked before any tokenizer loads
        summary = describe(
            args.source,
            models,
            out_dir,
            limit=args.limit,
            seed=args.seed,
            max_seq_length=args.max_seq_length,
            cache_dir=args.cache_dir,
        )
    except (DataError, ConfigError, UnknownModelError, OSError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print_summary(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
