"""The automatic-evaluation tables of the vote database: `eval_results` (one row per metric of a run,
written all or nothing) and `eval_cache` (every generated answer, so an evaluation resumes).

    store.add_eval_results(rows); store.eval_results(); store.cache_get(eval_cache_key(...))

Run as: python -m pytest tests/test_store.py -q -k eval
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from arena.adapters import contestant_id, id_from_label
from arena.store.protocol import InvalidRecord, UniqueViolation
from arena.store.sql import SqlStoreBase, check_fields, is_finite_number

_REQUIRED_EVAL_FIELDS: tuple[str, ...] = (
    "contestant",
    "model_key",
    "dataset",
    "dataset_hash",
    "split",
    "n",
    "metric",
    "value",
    "run_id",
)
_OPTIONAL_EVAL_FIELDS: tuple[str, ...] = (
    "adapter_run",
    "weights",  # the served weights' tag (Contestant.weights): what the board matches against
    "ci_low",
    "ci_high",
    "scoring_model",
    "git_commit",
    "created_at",
)
_REQUIRED_CACHE_FIELDS: tuple[str, ...] = ("contestant", "question_id", "answer")
_OPTIONAL_CACHE_FIELDS: tuple[str, ...] = ("contestant_id", "weights", "output_tokens", "latency_s", "ttft_s")


def eval_cache_key(contestant: str, prompt_template: str, settings: Mapping[str, Any], question: str) -> str:
    """Stable key for ``eval_cache`` from what generated the answer (`Contestant.served_as`: the stable
    id and the served weights), so a renamed display label still hits; any change of contestant,
    weights, prompt, settings or question misses."""
    payload = json.dumps(
        [contestant, prompt_template, dict(settings), question], sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class EvalTables(SqlStoreBase):
    """Methods on the `eval_results` and `eval_cache` tables."""

    def add_eval_results(self, rows: list[dict[str, Any]]) -> None:
        """Store a batch of evaluation results in one transaction: every row, or none of them.

        Required keys: contestant, model_key, dataset, dataset_hash, split, n, metric, value, run_id;
        optional: adapter_run, weights, ci_low, ci_high, scoring_model, git_commit, created_at. A run may hold one
        value per (contestant, dataset, split, metric, scoring_model).
        """
        with self._transaction() as session:
            for index, row in enumerate(rows):
                record = self._checked_eval_row(index, row)
                try:
                    session.insert("eval_results", record)
                except UniqueViolation as error:
                    raise InvalidRecord(
                        f"Evaluation row {index} repeats a result already stored for run {row['run_id']!r} "
                        f"({row['contestant']}, {row['dataset']}/{row['split']}, {row['metric']})."
                    ) from error

    def _checked_eval_row(self, index: int, row: Mapping[str, Any]) -> dict[str, Any]:
        check_fields(f"Evaluation row {index}", row, _REQUIRED_EVAL_FIELDS, _OPTIONAL_EVAL_FIELDS)
        if not isinstance(row["n"], int) or isinstance(row["n"], bool) or row["n"] < 0:
            raise InvalidRecord(f"Evaluation row {index} has n={row['n']!r}; it must be a whole number >= 0.")
        for field in ("value", "ci_low", "ci_high"):
            value = row.get(field)
            if value is None and field != "value":
                continue
            if not is_finite_number(value):
                raise InvalidRecord(
                    f"Evaluation row {index} has {field}={value!r}; it must be a finite number."
                )
        record = {field: row.get(field) for field in (*_REQUIRED_EVAL_FIELDS, *_OPTIONAL_EVAL_FIELDS)}
        record["contestant_id"] = contestant_id(str(row["model_key"]), row.get("adapter_run"))
        record["created_at"] = row.get("created_at") or self._now()
        return record

    def eval_results(self, contestant: str | None = None) -> list[dict[str, Any]]:
        """Stored evaluation results in insertion order, optionally for one contestant (stable id or label)."""
        with self._connection() as session:
            if contestant is None:
                return session.query("SELECT * FROM eval_results ORDER BY id")
            sql = "SELECT * FROM eval_results WHERE contestant_id = ? OR contestant = ? ORDER BY id"
            return session.query(sql, [contestant, contestant])

    def cache_get(self, key: str) -> dict[str, Any] | None:
        """The cached answer row for this key, or None."""
        with self._connection() as session:
            rows = session.query("SELECT * FROM eval_cache WHERE key = ?", [key])
        return rows[0] if rows else None

    def cache_put(self, key: str, row: Mapping[str, Any]) -> None:
        """Store (or overwrite) a cached answer; keys: contestant, question_id, answer, and optionally
        contestant_id, weights, output_tokens, latency_s, ttft_s."""
        check_fields("The cache row", row, _REQUIRED_CACHE_FIELDS, _OPTIONAL_CACHE_FIELDS)
        record = {field: row.get(field) for field in (*_REQUIRED_CACHE_FIELDS, *_OPTIONAL_CACHE_FIELDS)}
        record["contestant_id"] = record["contestant_id"] or id_from_label(str(row["contestant"]))
        with self._transaction() as session:
            session.insert("eval_cache", {"key": key, **record, "created_at": self._now()}, replace_on="key")
