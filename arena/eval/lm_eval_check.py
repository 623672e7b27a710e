"""Cross-check of the option log-likelihood scorer against lm-evaluation-harness on the same items.

Writes the items as a local jsonl (the project's rendered prompt ending in "Answer:", the choice
strings, the gold index), points a copy of `arena/eval/lm_eval_tasks/medarena_mcq_local.yaml` at it,
runs `lm_eval.simple_evaluate(model="hf", ...)` on a base checkpoint folder, runs
`arena.eval.mcq_loglik.score_items` on the same folder loaded the same way (float32, no BOS added), and
reports both accuracies and the largest per-option log-likelihood difference.

Run as:
    python -m arena.eval.lm_eval_check --model smollm2-135m --data ../shared/data/medqa_usmle/medqa_usmle.jsonl --limit 40
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arena.eval.mcq_loglik import ChoiceFormat, ItemScores, mcq_choices, mcq_context, predictions, score_items
from finetune.data import MCQRecord

TASK_DIR = Path(__file__).resolve().parent / "lm_eval_tasks"
TASK_NAME = "medarena_mcq_local"


@dataclass(frozen=True)
class CrossCheck:
    """Both scorers' accuracies on the same items, and how far their log-likelihoods differ."""

    n: int
    ours_acc: float
    ours_acc_norm: float
    lm_eval_acc: float
    lm_eval_acc_norm: float
    max_abs_loglik_diff: float
    disagreements: int  # items whose raw argmax differs

    @property
    def acc_gap_points(self) -> float:
        """|our accuracy - lm-eval's| in accuracy points."""
        return abs(self.ours_acc - self.lm_eval_acc) * 100

    def summary(self) -> str:
        """One line: both accuracies, the gap and the largest log-likelihood difference."""
        return (
            f"{self.n} items: ours acc {self.ours_acc:.3f} (norm {self.ours_acc_norm:.3f}), "
            f"lm-eval acc {self.lm_eval_acc:.3f} (norm {self.lm_eval_acc_norm:.3f}); "
            f"gap {self.acc_gap_points:.2f} points, {self.disagreements} items disagree, "
            f"max |Δ loglik| {self.max_abs_loglik_diff:.2e}"
        )


def load_mcq_jsonl(path: Path, limit: int | None = None) -> list[MCQRecord]:
    """MCQ rows ({id, question, options, answer}) in file order, the first `limit` of them."""
    records = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            records.append(
                MCQRecord(
                    id=str(row["id"]),
                    question=row["question"],
                    options=dict(row["options"]),
                    answer=row["answer"],
                )
            )
            if limit is not None and len(records) >= limit:
                break
    return records


def write_task(
    tokenizer: Any, records: Sequence[MCQRecord], choice_format: ChoiceFormat, out_dir: Path
) -> Path:
    """The local jsonl and a task yaml reading it; returns the folder to give lm-eval's TaskManager."""
    import yaml

    data = out_dir / "items.jsonl"
    with data.open("w", encoding="utf-8") as handle:
        for record in records:
            row = {
                "id": record.id,
                "prompt": mcq_context(tokenizer, record),
                "choices": mcq_choices(record, choice_format),
                "gold": list(record.options).index(record.answer),
            }
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    config = yaml.safe_load((TASK_DIR / f"{TASK_NAME}.yaml").read_text(encoding="utf-8"))
    config["dataset_kwargs"]["data_files"]["test"] = str(data)
    (out_dir / f"{TASK_NAME}.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return out_dir


def run_lm_eval(
    base_dir: Path, task_dir: Path, *, batch_size: int = 8
) -> tuple[dict[str, float], list[list[float]]]:
    """lm-eval's acc/acc_norm and per-item option log-likelihoods (in document order)."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    results = simple_evaluate(
        model="hf",
        model_args={"pretrained": str(base_dir), "dtype": "float32", "device": "cpu", "add_bos_token": False},
        tasks=[TASK_NAME],
        num_fewshot=0,
        batch_size=batch_size,
        task_manager=TaskManager(include_path=str(task_dir)),
        log_samples=True,
        bootstrap_iters=0,
    )
    if results is None:
        raise RuntimeError("lm-eval returned no results")
    metrics = results["results"][TASK_NAME]
    samples = sorted(results["samples"][TASK_NAME], key=lambda sample: sample["doc_id"])
    # Each sample's filtered_resps is one (loglik, is_greedy) pair per choice.
    logliks = [[float(resp[0]) for resp in sample["filtered_resps"]] for sample in samples]
    return {"acc": float(metrics["acc,none"]), "acc_norm": float(metrics["acc_norm,none"])}, logliks


def load_float32(base_dir: Path) -> tuple[Any, Any]:
    """The base as lm-eval's `hf` model loads it: AutoModelForCausalLM in float32 on CPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    model.eval()
    return model, AutoTokenizer.from_pretrained(str(base_dir))


def compare(
    ours: Sequence[ItemScores], lm_eval_metrics: dict[str, float], lm_eval_ll: Sequence[Sequence[float]]
) -> CrossCheck:
    """Our scores against lm-eval's on the same items: accuracies and log-likelihood differences."""
    if len(ours) != len(lm_eval_ll):
        raise ValueError(f"lm-eval scored {len(lm_eval_ll)} items, ours {len(ours)}")
    diffs = [
        abs(a - b)
        for item, theirs in zip(ours, lm_eval_ll, strict=True)
        for a, b in zip(item.loglik, theirs, strict=True)
    ]
    theirs_pred = [
        item.labels[max(range(len(ll)), key=list(ll).__getitem__)]
        for item, ll in zip(ours, lm_eval_ll, strict=True)
    ]
    raw = predictions(ours)
    norm = predictions(ours, normalised=True)
    n = len(ours)
    return CrossCheck(
        n=n,
        ours_acc=sum(p == item.gold for p, item in zip(raw, ours, strict=True)) / n,
        ours_acc_norm=sum(p == item.gold for p, item in zip(norm, ours, strict=True)) / n,
        lm_eval_acc=lm_eval_metrics["acc"],
        lm_eval_acc_norm=lm_eval_metrics["acc_norm"],
        max_abs_loglik_diff=max(diffs),
        disagreements=sum(a != b for a, b in zip(raw, theirs_pred, strict=True)),
    )


def cross_check(
    base_dir: Path,
    records: Sequence[MCQRecord],
    *,
    choice_format: ChoiceFormat = "letter",
    batch_size: int = 8,
) -> CrossCheck:
    """Score the items with our scorer and with lm-eval's `hf` model, and compare."""
    model, tokenizer = load_float32(base_dir)
    ours = score_items(model, tokenizer, records, choice_format=choice_format, batch_size=batch_size)
    del model
    with tempfile.TemporaryDirectory(prefix="medarena-lm-eval-") as tmp:
        task_dir = write_task(tokenizer, records, choice_format, Path(tmp))
        metrics, logliks = run_lm_eval(base_dir, task_dir, batch_size=batch_size)
    return compare(ours, metrics, logliks)


def main(argv: Sequence[str] | None = None) -> int:
    """python -m arena.eval.lm_eval_check: run the cross-check on a local MCQ file and print it."""
    from finetune.loading import local_source
    from finetune.registry import get_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m", help="registry key of a base available here")
    parser.add_argument("--data", type=Path, required=True, help="MCQ jsonl: {id, question, options, answer}")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--choices", choices=["letter", "option"], default="letter")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    base_dir = Path(local_source(get_model(args.model), None))
    records = load_mcq_jsonl(args.data, args.limit)
    result = cross_check(base_dir, records, choice_format=args.choices, batch_size=args.batch_size)
    print(f"{args.model} on {args.data.name} ({args.choices} choices): {result.summary()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
