"""Votes as preference pairs for DPO: (prompt, chosen, rejected) with the rubric of both answers,
written as JSON Lines and as a Hugging Face `datasets` folder, with `snapshot.json` naming the votes
they came from (database, vote count, last vote, the pairs' sha256), which `finetune --dpo` checks
(`finetune.dpo_pairs`: the folder's names and its reader) and copies into its run.json.

A vote becomes a pair only when it says which answer is better and can be trusted; left out, and
counted by reason: ties and "both bad", answers that leaked a contestant's identity, votes faster
than their answers can be read, raters without calibration (or below the accuracy threshold),
anything patient-identifiable (the question, either answer, or a question sent after redaction),
battles with follow-up turns (the vote judged the conversation),
and calibration and re-served battles (synthetic, or a second copy of a battle).

    python -m arena.export --format dpo --out dpo/            # dpo/pairs.jsonl, dpo/dataset/, dpo/snapshot.json
    python -m arena.export --format dpo --allow-uncalibrated  # keep raters with no calibration votes

Run as: python -m pytest tests/test_dpo_export.py -q
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arena.pii import PLACEHOLDERS, find_pii
from arena.rater_quality import calibration_accuracy
from arena.rubric import AXIS_NAMES
from arena.store.judgement_tables import CALIBRATION_SOURCE, RESERVE_SOURCE
from finetune.dpo_pairs import DATASET_DIR, PAIRS_FILE, SNAPSHOT_FILE

_PLACEHOLDER = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS.values()))


@dataclass(frozen=True)
class DpoRules:
    """Who counts as calibrated for the export."""

    min_calibration_accuracy: float = 0.75
    require_calibration: bool = True


def exclusion(
    row: Mapping[str, Any], quality: Mapping[str, Any] | None, calibrated: bool, multi_turn: bool = False
) -> str | None:
    """Why a vote row is not a preference pair, or None when it is one."""
    source = row.get("question_source") or ""
    if source.startswith((CALIBRATION_SOURCE, RESERVE_SOURCE)):
        return "calibration or re-served"
    if multi_turn:  # the vote judged a conversation, not the first answers alone
        return "multi-turn"
    if row["outcome"] not in ("model_a", "model_b"):
        return "tied"
    if row["identity_leak"]:
        return "leaked"
    if quality is None or quality.get("too_fast"):
        return "too fast"  # no quality record: cast before dwell was measured, so not known to be read
    if not calibrated:
        return "uncalibrated"
    texts = (row["question"], row["answer_a"] or "", row["answer_b"] or "")
    if any(find_pii(text) for text in texts) or _PLACEHOLDER.search(row["question"]):
        return "PHI-flagged"
    return None


def preference_pairs(
    rows: Sequence[Mapping[str, Any]],
    quality: Mapping[str, Mapping[str, Any]],
    calibration: Sequence[tuple[str, bool]],
    rubrics: Sequence[Mapping[str, Any]],
    rules: DpoRules,
    multi_turn: frozenset[str] = frozenset(),
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """The pairs, oldest vote first, and how many votes each reason left out."""
    accuracy = calibration_accuracy(calibration)
    rubric_by_answer = {(r["battle_id"], r["side"]): r for r in rubrics}
    pairs, excluded = [], Counter[str]()
    for row in rows:
        record = quality.get(row["battle_id"])
        rater = record["rater_id"] if record else None
        rater_accuracy = accuracy.get(rater) if rater else None
        calibrated = (
            rater_accuracy.accuracy >= rules.min_calibration_accuracy
            if rater_accuracy is not None
            else not rules.require_calibration
        )
        reason = exclusion(row, record, calibrated, row["battle_id"] in multi_turn)
        if reason:
            excluded[reason] += 1
            continue
        chosen, rejected = ("a", "b") if row["outcome"] == "model_a" else ("b", "a")
        pairs.append(
            {
                "prompt": row["question"],
                "chosen": row[f"answer_{chosen}"],
                "rejected": row[f"answer_{rejected}"],
                "battle_id": row["battle_id"],
                "vote_id": row["vote_id"],
                "category": row["category"],
                "chosen_contestant": row[f"contestant_{chosen}_id"],
                "rejected_contestant": row[f"contestant_{rejected}_id"],
                "rater_id": rater,
                "rubric_chosen": _rubric(rubric_by_answer.get((row["battle_id"], chosen))),
                "rubric_rejected": _rubric(rubric_by_answer.get((row["battle_id"], rejected))),
            }
        )
    return pairs, excluded


def _rubric(row: Mapping[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {axis: None for axis in (*AXIS_NAMES, "reasons")}
    return {**{axis: row.get(axis) for axis in AXIS_NAMES}, "reasons": list(row.get("reasons") or [])}


def write_dpo(store: Any, out_dir: Path, rules: DpoRules = DpoRules()) -> tuple[int, Counter[str]]:
    """Write pairs.jsonl, the `datasets` folder and snapshot.json into `out_dir`; returns the pair
    count and the exclusions."""
    from datasets import Dataset

    rows = store.vote_export_rows()
    pairs, excluded = preference_pairs(
        rows,
        store.vote_quality(),
        store.calibration_results(),
        _all_rubrics(store),
        rules,
        _multi_turn(store),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(pair, ensure_ascii=False, sort_keys=True) + "\n" for pair in pairs)
    temporary = out_dir / f".{PAIRS_FILE}.tmp"
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(out_dir / PAIRS_FILE)
    columns = {"prompt": [], "chosen": [], "rejected": []} if not pairs else None
    dataset = Dataset.from_dict(columns) if columns is not None else Dataset.from_list(
        [{**pair, "rubric_chosen": json.dumps(pair["rubric_chosen"]), "rubric_rejected": json.dumps(pair["rubric_rejected"])} for pair in pairs]
    )  # fmt: skip
    dataset.save_to_disk(str(out_dir / DATASET_DIR))
    snapshot = {
        "votes_db": str(Path(store.path).resolve()),
        "votes": len(rows),
        "last_vote_id": rows[-1]["vote_id"] if rows else None,
        "last_voted_at": rows[-1]["voted_at"] if rows else None,
        "pairs": len(pairs),
        "pairs_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "excluded": dict(sorted(excluded.items())),
        "rules": {"min_calibration_accuracy": rules.min_calibration_accuracy, "require_calibration": rules.require_calibration},
        "exported_at": store.now().isoformat(),
    }  # fmt: skip
    (out_dir / SNAPSHOT_FILE).write_text(json.dumps(snapshot, indent=2), encoding="utf-8")
    return len(pairs), excluded


def _multi_turn(store: Any) -> frozenset[str]:
    with store._connection() as db:
        rows = db.query("SELECT DISTINCT battle_id FROM battle_turns WHERE status = 'finished'")
        return frozenset(row["battle_id"] for row in rows)


def _all_rubrics(store: Any) -> list[dict[str, Any]]:
    """Rubric rows of every battle (the board's view leaves some out; the export wants all)."""
    with store._connection() as db:
        return [{**row, "reasons": json.loads(row["reasons"])} for row in db.query("SELECT * FROM rubrics")]
