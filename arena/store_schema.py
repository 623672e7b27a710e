"""The tables of votes.db and their migrations: what `arena.store_db.StoreConnection` runs, in one
transaction, every time it opens a file. New files get the current schema; a file written by an
earlier version is brought up to date in place (version in `PRAGMA user_version`).

Run as: python -m pytest tests/test_store_migration.py -q
"""

from __future__ import annotations

from sqlite_utils import Database

from arena.judgement_schema import JUDGEMENT_SCHEMA_VERSION, create_judgement_tables, migrate_to_judgement

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
    "ci_low",
    "ci_high",
    "scoring_model",
    "git_commit",
    "created_at",
)
_REQUIRED_CACHE_FIELDS: tuple[str, ...] = ("contestant", "question_id", "answer")
_OPTIONAL_CACHE_FIELDS: tuple[str, ...] = ("contestant_id", "output_tokens", "latency_s", "ttft_s")


STABLE_IDS_VERSION = 2  # stable contestant ids beside the display labels
# PRAGMA user_version; 3: rubric and rater-quality tables (arena.judgement_schema)
SCHEMA_VERSION = JUDGEMENT_SCHEMA_VERSION


def create_schema(db: Database) -> None:
    """Create what is missing, then bring a database written by an earlier version up to date."""
    _create_battle_tables(db)
    _create_eval_tables(db)
    create_judgement_tables(db)
    migrate_to_stable_ids(db)
    migrate_to_judgement(db)


def _create_battle_tables(db: Database) -> None:
    db["battles"].create(
        {
            "id": str,
            "created_at": str,
            "finished_at": str,
            "question": str,
            "category": str,
            "reference_answer": str,
            "question_source": str,
            "contestant_a": str,  # display labels at the time
            "contestant_b": str,
            "contestant_a_id": str,  # stable ids (arena.adapters.contestant_id): what ratings group by
            "contestant_b_id": str,
            "answer_a": str,
            "answer_b": str,
            "telemetry_a": str,
            "telemetry_b": str,
            "generation_settings": str,
            "status": str,
            "void_reason": str,
            "identity_leak": int,
            "bertscore_a": float,
            "bertscore_b": float,
        },
        pk="id",
        not_null=[
            "created_at",
            "question",
            "question_source",
            "contestant_a",
            "contestant_b",
            "generation_settings",
            "status",
            "identity_leak",
        ],
        if_not_exists=True,
    )
    if "session_id" not in db["battles"].columns_dict:  # databases made before battles had owners
        db["battles"].add_column("session_id", str)
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
    db["votes"].create(
        {
            "id": int,
            "battle_id": str,
            "outcome": str,
            "flag_a_unsafe": int,
            "flag_a_incorrect": int,
            "flag_b_unsafe": int,
            "flag_b_incorrect": int,
            "rationale": str,
            "voter_role": str,
            "voter_specialty": str,
            "session_id": str,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("battle_id", "battles", "id")],
        not_null=[
            "battle_id",
            "outcome",
            "flag_a_unsafe",
            "flag_a_incorrect",
            "flag_b_unsafe",
            "flag_b_incorrect",
            "rationale",
            "voter_role",
            "voter_specialty",
            "session_id",
            "created_at",
        ],
        if_not_exists=True,
    )
    db["votes"].create_index(
        ["battle_id"], index_name="votes_one_per_battle", unique=True, if_not_exists=True
    )


def _create_eval_tables(db: Database) -> None:
    db["eval_results"].create(
        {
            "id": int,
            "contestant": str,
            "contestant_id": str,
            "model_key": str,
            "adapter_run": str,
            "dataset": str,
            "dataset_hash": str,
            "split": str,
            "n": int,
            "metric": str,
            "value": float,
            "ci_low": float,
            "ci_high": float,
            "scoring_model": str,
            "git_commit": str,
            "created_at": str,
            "run_id": str,
        },
        pk="id",
        not_null=[*_REQUIRED_EVAL_FIELDS, "created_at"],
        if_not_exists=True,
    )
    # IFNULL because SQLite treats NULLs as distinct in unique indexes.
    db.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS eval_results_one_value_per_run ON eval_results "
        "(run_id, contestant, dataset, split, metric, IFNULL(scoring_model, ''))"
    )
    db["eval_cache"].create(
        {
            "key": str,
            "contestant": str,
            "contestant_id": str,
            "question_id": str,
            "answer": str,
            "output_tokens": int,
            "latency_s": float,
            "ttft_s": float,
            "created_at": str,
        },
        pk="key",
        not_null=[*_REQUIRED_CACHE_FIELDS, "created_at"],
        if_not_exists=True,
    )


def migrate_to_stable_ids(db: Database) -> None:
    """Version 1 -> 2, in the caller's transaction: add the stable-id columns and fill them.

    Battles and cached answers stored only a display label; its id is read back with the registry
    that wrote it (`arena.adapters.id_from_label`). Evaluation rows stored the model key and run.
    A crash before the commit leaves the version-1 file as it was; running it twice changes nothing.
    """
    from arena.adapters import contestant_id, id_from_label

    if db.execute("PRAGMA user_version").fetchone()[0] >= STABLE_IDS_VERSION:
        return
    for table, columns in (
        ("battles", ("contestant_a_id", "contestant_b_id")),
        ("eval_results", ("contestant_id",)),
        ("eval_cache", ("contestant_id",)),
    ):
        for column in columns:
            if column not in db[table].columns_dict:
                db[table].add_column(column, str)
    for battle_id, label_a, label_b in db.execute(
        "SELECT id, contestant_a, contestant_b FROM battles WHERE contestant_a_id IS NULL"
    ).fetchall():
        db.execute(
            "UPDATE battles SET contestant_a_id = ?, contestant_b_id = ? WHERE id = ?",
            [id_from_label(label_a), id_from_label(label_b), battle_id],
        )
    for row_id, model_key, run in db.execute(
        "SELECT id, model_key, adapter_run FROM eval_results WHERE contestant_id IS NULL"
    ).fetchall():
        db.execute(
            "UPDATE eval_results SET contestant_id = ? WHERE id = ?", [contestant_id(model_key, run), row_id]
        )
    for key, label in db.execute(
        "SELECT key, contestant FROM eval_cache WHERE contestant_id IS NULL"
    ).fetchall():
        db.execute("UPDATE eval_cache SET contestant_id = ? WHERE key = ?", [id_from_label(label), key])
    db.execute(f"PRAGMA user_version = {STABLE_IDS_VERSION}")
