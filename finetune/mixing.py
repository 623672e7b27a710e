"""Mix several data sources by weight into one seeded set, identical for every model.

`data.mix = "a.jsonl:0.7,b.jsonl:0.3"` loads and cleans each source, then keeps
round(weight × N) records of each (a seeded sample), where N is `data.limit` or, without a
limit, the largest total that needs no source to repeat a record. The result is shuffled with
the same seed, so a mix is a pure function of (files, weights, limit, split_seed).

    python -c "from finetune.mixing import load_mix; print(load_mix('bundled:0.5,data/medarena_qa.jsonl:0.5').source)"
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from finetune.data import (
    CleaningReport,
    CleaningRules,
    DataError,
    LoadedData,
    content_hash,
    load_dataset_source,
)


@dataclass(frozen=True)
class MixPart:
    source: str
    weight: float


def parse_mix(text: str) -> list[MixPart]:
    """ "a:0.7,b:0.3" -> parts with weights normalised to sum 1; fails naming the bad entry."""
    parts = []
    for entry in (piece.strip() for piece in text.split(",")):
        source, sep, weight_text = entry.rpartition(":")
        try:
            weight = float(weight_text)
        except ValueError:
            weight = -1.0
        if not sep or not source or weight <= 0:
            raise DataError(f"data.mix entry {entry!r} must be SOURCE:WEIGHT with a positive weight")
        parts.append(MixPart(source, weight))
    if len({p.source for p in parts}) != len(parts):
        raise DataError("data.mix names a source twice")
    total = sum(p.weight for p in parts)
    return [MixPart(p.source, p.weight / total) for p in parts]


def load_mix(
    text: str, *, limit: int | None = None, rules: CleaningRules | None = None, seed: int = 42
) -> tuple[LoadedData, list[dict]]:
    """The mixed set, and one provenance row per source (source, weight, records taken, hash)."""
    parts = parse_mix(text)
    rules = rules or CleaningRules()
    loaded = [load_dataset_source(p.source, rules=rules, seed=seed) for p in parts]
    kinds = {data.kind for data in loaded}
    if len(kinds) > 1:
        raise DataError("data.mix mixes free-text and multiple-choice sources; mix one kind at a time")
    total = (
        limit
        if limit is not None
        else int(min(len(d.records) / p.weight for d, p in zip(loaded, parts, strict=True)))
    )
    rng = random.Random(seed)
    records, provenance = [], []
    report = CleaningReport()
    for part, data in zip(parts, loaded, strict=True):
        take = min(len(data.records), round(part.weight * total))
        chosen = [data.records[i] for i in sorted(rng.sample(range(len(data.records)), take))]
        records.extend(chosen)
        report.read += data.report.read
        report.kept += data.report.kept
        for reason, count in data.report.dropped.items():
            report.dropped[reason] = report.dropped.get(reason, 0) + count
        provenance.append(
            {
                "source": data.source,
                "weight": round(part.weight, 6),
                "records": take,
                "content_hash": data.content_hash,
            }
        )
    rng.shuffle(records)
    if len(records) < 3:
        raise DataError(f"data.mix yields {len(records)} records; at least 3 are needed")
    label = "mix:" + ",".join(f"{p['source']}:{p['weight']:g}" for p in provenance)
    mixed = LoadedData(
        source=label, kind=kinds.pop(), records=records, report=report, content_hash=content_hash(records)
    )
    return mixed, provenance
