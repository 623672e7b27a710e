"""Read-only views of the battles and votes in votes.db: the rows the ratings, the pairing, the
leaderboard's telemetry and the vote export read. Contestants appear by stable id
(`<model key>/<run id or base>`); the labels shown at the time come along where a reader needs them.
`arena.store.battles.ArenaStore` inherits these.

    from arena.store.battles import ArenaStore
    ArenaStore("votes.db").rated_battles()   # rows for arena/ratings.py, via arena.board.to_rated

Run as: python -m pytest tests/test_store.py -q
"""

from __future__ import annotations

import json
from typing import Any

from arena.store.eval_tables import EvalTables
from arena.store.schema import added_vote_columns


class BattleReads(EvalTables):
    """Queries over finished battles and their votes (no writes)."""

    def vote_count(self) -> int:
        """How many votes are stored."""
        with self._connection() as session:
            return int(session.query("SELECT COUNT(*) AS n FROM votes")[0]["n"])

    def rated_battles(
        self, *, include_identity_leaks: bool = False, after_vote_id: int = 0
    ) -> list[dict[str, Any]]:
        """Voted, finished battles for the ratings code, oldest vote first; `contestant_a`/`_b` are the
        stable ids (`label_a`/`label_b` the labels shown at the time); the question and both answers come
        along for style control and question categories.

        Battles whose answers leaked a contestant's identity are left out unless asked for, since the
        voter was no longer blind. With `after_vote_id`, only votes stored after that one (vote ids
        grow), so the board's cache reads each vote once.
        """
        leak_filter = "" if include_identity_leaks else "AND b.identity_leak = 0"
        sql = f"""
            SELECT v.id AS vote_id, b.id AS battle_id, b.contestant_a_id AS contestant_a, b.contestant_b_id AS contestant_b,
                   b.contestant_a AS label_a, b.contestant_b AS label_b, v.outcome, b.category,
                   b.question_source, v.voter_role, v.voter_specialty,
                   v.flag_a_unsafe, v.flag_a_incorrect, v.flag_b_unsafe, v.flag_b_incorrect,
                   b.identity_leak, v.created_at AS voted_at, b.bertscore_a, b.bertscore_b,
                   b.question, b.answer_a, b.answer_b
            FROM votes v JOIN battles b ON b.id = v.battle_id
            WHERE b.status = 'finished' AND v.id > ? {leak_filter}
            ORDER BY v.created_at, v.id
        """
        boolean_columns = (
            "flag_a_unsafe",
            "flag_a_incorrect",
            "flag_b_unsafe",
            "flag_b_incorrect",
            "identity_leak",
        )
        with self._connection() as session:
            rows = session.query(sql, [after_vote_id])
        return [{**row, **{column: bool(row[column]) for column in boolean_columns}} for row in rows]

    def contestant_battle_counts(self) -> dict[str, int]:
        """Finished battles per contestant id (either side), so the pairing can favour under-voted ones."""
        sql = """
            SELECT contestant, COUNT(*) AS battles FROM (
                SELECT contestant_a_id AS contestant FROM battles WHERE status = 'finished'
                UNION ALL
                SELECT contestant_b_id AS contestant FROM battles WHERE status = 'finished'
            ) AS sides GROUP BY contestant ORDER BY contestant
        """
        with self._connection() as session:
            return {row["contestant"]: row["battles"] for row in session.query(sql)}

    def pair_battle_counts(self) -> dict[tuple[str, str], int]:
        """Finished battles per unordered pair of contestant ids (sorted tuple), for the pairing policy."""
        sql = """
            SELECT contestant_a_id AS a, contestant_b_id AS b, COUNT(*) AS battles
            FROM battles WHERE status = 'finished' GROUP BY contestant_a_id, contestant_b_id
        """
        counts: dict[tuple[str, str], int] = {}
        with self._connection() as session:
            for row in session.query(sql):
                key = (row["a"], row["b"]) if row["a"] <= row["b"] else (row["b"], row["a"])
                counts[key] = counts.get(key, 0) + row["battles"]
        return counts

    def telemetry_samples(self) -> dict[str, list[dict[str, Any]]]:
        """Every finished battle's telemetry dict per contestant id, oldest first (aggregated by
        `arena.board.contestant_telemetry`)."""
        sql = """
            SELECT contestant_a_id AS contestant_a, telemetry_a, contestant_b_id AS contestant_b, telemetry_b
            FROM battles WHERE status = 'finished' ORDER BY created_at
        """
        with self._connection() as session:
            rows = session.query(sql)
        samples: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            for side in ("a", "b"):
                telemetry = json.loads(row[f"telemetry_{side}"] or "{}")
                samples.setdefault(row[f"contestant_{side}"], []).append(telemetry)
        return samples

    def vote_export_rows(self) -> list[dict[str, Any]]:
        """One row per vote joined with its battle (columns as `arena.export.EXPORT_COLUMNS`, then any vote
        column a migration added), oldest first."""
        sql = """
            SELECT v.id AS vote_id, b.id AS battle_id, v.created_at AS voted_at,
                   b.created_at AS battle_created_at, b.finished_at AS battle_finished_at,
                   b.question, b.category, b.question_source, b.reference_answer,
                   b.contestant_a, b.contestant_b, b.contestant_a_id, b.contestant_b_id,
                   b.answer_a, b.answer_b, v.outcome,
                   v.flag_a_unsafe, v.flag_a_incorrect, v.flag_b_unsafe, v.flag_b_incorrect,
                   v.rationale, v.voter_role, v.voter_specialty, v.session_id,
                   b.identity_leak, b.bertscore_a, b.bertscore_b{added}
            FROM votes v JOIN battles b ON b.id = v.battle_id
            ORDER BY v.created_at, v.id
        """
        added = "".join(f", v.{column.name}" for column in added_vote_columns())  # after EXPORT_COLUMNS
        with self._connection() as session:
            return session.query(sql.format(added=added))


# -- helpers -----------------------------------------------------------------------------------------
