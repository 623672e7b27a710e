"""The vote database's tables, declared once for both stores, and its migrations as an ordered, versioned
list. Every column is declared exactly once: in `BASE_TABLES` (schema version 1) or in the `Migration`
that added it; the current tables are the base plus every migration's columns (`current_tables()`).

`apply_schema` runs in the caller's transaction each time a store opens: a new database gets the current
tables; one written by an earlier version is brought up to date in place (SQLite keeps the version in
``PRAGMA user_version``, Postgres in ``meta.schema_version``); one written by a newer version is refused.

A new vote field is one `Migration` entry here, e.g.::

    Migration(3, "voter confidence 1-5", (AddColumn("votes", Column("confidence", "integer")),)),

plus the `VoteInput` field of the same name (arena/votes.py) and its UI component.

Run as: python -m pytest tests/test_store_migration.py -q
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from arena.store.protocol import SchemaMismatch, SqlSession

ColumnType = Literal["text", "integer", "real"]

_SQL_TYPES: dict[str, dict[ColumnType, str]] = {
    "sqlite": {"text": "TEXT", "integer": "INTEGER", "real": "FLOAT"},
    "postgres": {"text": "TEXT", "integer": "BIGINT", "real": "DOUBLE PRECISION"},
}


@dataclass(frozen=True)
class Column:
    """One column: its name, type, and whether it may be empty."""

    name: str
    type: ColumnType
    not_null: bool = False


@dataclass(frozen=True)
class Table:
    """One table: columns in order, the primary key (an ``integer`` key counts up by itself), the
    foreign keys as (column, table, column), and unique indexes as (name, SQL expression list)."""

    name: str
    columns: tuple[Column, ...]
    primary_key: str
    foreign_keys: tuple[tuple[str, str, str], ...] = ()
    unique_indexes: tuple[tuple[str, str], ...] = ()

    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


@dataclass(frozen=True)
class AddColumn:
    """A migration step: add one column to one table (nullable, or with rows filled by a backfill)."""

    table: str
    column: Column


@dataclass(frozen=True)
class Migration:
    """Schema version `version`: the columns it adds, then an optional backfill in the same transaction."""

    version: int
    summary: str
    add_columns: tuple[AddColumn, ...] = ()
    add_tables: tuple[Table, ...] = ()  # created (IF NOT EXISTS) before the columns are added
    backfill: Callable[[SqlSession], None] | None = field(default=None, compare=False)


def _text(name: str, not_null: bool = False) -> Column:
    return Column(name, "text", not_null)


BASE_TABLES: tuple[Table, ...] = (
    Table(
        "battles",
        (
            _text("id", True),
            _text("created_at", True),
            _text("finished_at"),
            _text("question", True),
            _text("category"),
            _text("reference_answer"),
            _text("question_source", True),
            _text("contestant_a", True),  # display labels at the time
            _text("contestant_b", True),
            _text("answer_a"),
            _text("answer_b"),
            _text("telemetry_a"),  # JSON
            _text("telemetry_b"),
            _text("generation_settings", True),  # JSON
            _text("status", True),
            _text("void_reason"),
            Column("identity_leak", "integer", True),
            Column("bertscore_a", "real"),
            Column("bertscore_b", "real"),
            _text("session_id"),
        ),
        primary_key="id",
    ),
    Table("meta", (_text("key", True), _text("value")), primary_key="key"),
    Table(
        "votes",
        (
            Column("id", "integer", True),
            _text("battle_id", True),
            _text("outcome", True),
            Column("flag_a_unsafe", "integer", True),
            Column("flag_a_incorrect", "integer", True),
            Column("flag_b_unsafe", "integer", True),
            Column("flag_b_incorrect", "integer", True),
            _text("rationale", True),
            _text("voter_role", True),
            _text("voter_specialty", True),
            _text("session_id", True),
            _text("created_at", True),
        ),
        primary_key="id",
        foreign_keys=(("battle_id", "battles", "id"),),
        # what makes concurrent double votes store one row, on every replica
        unique_indexes=(("votes_one_per_battle", "battle_id"),),
    ),
    Table(
        "eval_results",
        (
            Column("id", "integer", True),
            _text("contestant", True),
            _text("model_key", True),
            _text("adapter_run"),
            _text("dataset", True),
            _text("dataset_hash", True),
            _text("split", True),
            Column("n", "integer", True),
            _text("metric", True),
            Column("value", "real", True),
            Column("ci_low", "real"),
            Column("ci_high", "real"),
            _text("scoring_model"),
            _text("git_commit"),
            _text("created_at", True),
            _text("run_id", True),
        ),
        primary_key="id",
        unique_indexes=(
            (
                "eval_results_one_value_per_run",
                # COALESCE because NULLs are distinct in unique indexes
                "run_id, contestant, dataset, split, metric, COALESCE(scoring_model, '')",
            ),
        ),
    ),
    Table(
        "eval_cache",
        (
            _text("key", True),
            _text("contestant", True),
            _text("question_id", True),
            _text("answer", True),
            Column("output_tokens", "integer"),
            Column("latency_s", "real"),
            Column("ttft_s", "real"),
            _text("created_at", True),
        ),
        primary_key="key",
    ),
)


JUDGEMENT_TABLES: tuple[Table, ...] = (
    Table(
        "rubrics",
        (
            Column("id", "integer", True),
            _text("battle_id", True),
            _text("side", True),  # "a" or "b"
            _text("contestant_id", True),  # the stable id of the answer's contestant
            _text("correctness"),
            _text("completeness"),
            _text("harm_severity"),
            _text("harm_likelihood"),
            _text("clarity"),
            _text("reasons", True),  # JSON list of reason chips
            _text("session_id", True),
            _text("created_at", True),
        ),
        primary_key="id",
        foreign_keys=(("battle_id", "battles", "id"),),
        unique_indexes=(("rubrics_one_per_answer", "battle_id, side"),),
    ),
    Table(
        "vote_quality",
        (
            _text("battle_id", True),
            _text("rater_id", True),  # invite-bound rater, signed-in account, or the session
            _text("rater_source", True),  # "invite", "oauth" or "session"
            _text("client_id", True),  # a hash of the client address; never the address itself
            Column("dwell_s", "real"),  # from the answers being shown to the vote
            Column("min_dwell_s", "real"),  # what the answers' length asked for
            Column("too_fast", "integer", True),  # kept but not rated
            Column("calibration_correct", "integer"),  # NULL for ordinary battles
            _text("created_at", True),
        ),
        primary_key="battle_id",
        foreign_keys=(("battle_id", "battles", "id"),),
    ),
    Table(
        "raters",
        (
            _text("id", True),
            _text("role", True),
            Column("verified", "integer", True),
            _text("source", True),
            _text("created_at", True),
        ),
        primary_key="id",
    ),
    Table(
        "invite_codes",
        (
            _text("code_hash", True),  # only the hash: the database never holds a usable code
            _text("role", True),
            _text("created_at", True),
            _text("rater_id"),
            _text("used_at"),
        ),
        primary_key="code_hash",
    ),
    Table(
        "battle_turns",
        (
            Column("id", "integer", True),
            _text("battle_id", True),
            Column("turn", "integer", True),  # 1, 2, ...: follow-ups after the first question (in battles)
            _text("question", True),
            _text("answer_a"),
            _text("answer_b"),
            _text("telemetry_a"),  # JSON
            _text("telemetry_b"),
            _text("status", True),  # generating, finished or voided
            _text("void_reason"),
            _text("created_at", True),
            _text("finished_at"),
        ),
        primary_key="id",
        foreign_keys=(("battle_id", "battles", "id"),),
        unique_indexes=(("battle_turns_one_per_number", "battle_id, turn"),),
    ),
)


def _fill_stable_ids(session: SqlSession) -> None:
    """Battles and cached answers stored only a display label; its id is read back with the registry
    that wrote it (`arena.adapters.id_from_label`). Evaluation rows stored the model key and run."""
    from arena.adapters import contestant_id, id_from_label

    for row in session.query(
        "SELECT id, contestant_a, contestant_b FROM battles WHERE contestant_a_id IS NULL"
    ):
        session.execute(
            "UPDATE battles SET contestant_a_id = ?, contestant_b_id = ? WHERE id = ?",
            [id_from_label(row["contestant_a"]), id_from_label(row["contestant_b"]), row["id"]],
        )
    for row in session.query(
        "SELECT id, model_key, adapter_run FROM eval_results WHERE contestant_id IS NULL"
    ):
        session.execute(
            "UPDATE eval_results SET contestant_id = ? WHERE id = ?",
            [contestant_id(row["model_key"], row["adapter_run"]), row["id"]],
        )
    for row in session.query("SELECT key, contestant FROM eval_cache WHERE contestant_id IS NULL"):
        session.execute(
            "UPDATE eval_cache SET contestant_id = ? WHERE key = ?",
            [id_from_label(row["contestant"]), row["key"]],
        )


# The label's quantisation part the PEFT engine wrote (finetune.loading.QUANTIZATION_LABEL): until
# schema version 5 `arena.evaluate` ran on the PEFT engine only, so on an evaluation row this part
# names the weights it scored. Other parts ("gguf", "bf16 vLLM") were never written by an evaluation.
PEFT_WEIGHT_TAGS: frozenset[str] = frozenset({"nf4", "int8", "fp32", "bf16", "fp16"})


def weights_from_label(label: str) -> str | None:
    """The weights tag an evaluation row written before version 5 scored, read from its label's
    quantisation part ("SmolLM2 · base · nf4" -> "nf4"); None where it cannot be told, so the board
    says "not measured on these weights" rather than guessing."""
    from arena.adapters import LABEL_SEPARATOR

    parts = label.split(LABEL_SEPARATOR)
    return parts[2] if len(parts) == 3 and parts[2] in PEFT_WEIGHT_TAGS else None


def _fill_weights(session: SqlSession) -> None:
    """Evaluation rows and cached answers stored no weights; the label they stored names them."""
    for table, key in (("eval_results", "id"), ("eval_cache", "key")):
        for row in session.query(f"SELECT {key}, contestant FROM {table} WHERE weights IS NULL"):
            weights = weights_from_label(str(row["contestant"]))
            if weights is not None:
                session.execute(f"UPDATE {table} SET weights = ? WHERE {key} = ?", [weights, row[key]])


# Ordered by version; append, never edit a released entry. The last entry's version is SCHEMA_VERSION.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "battles, votes, evaluation results and cache"),
    Migration(
        2,
        "stable contestant ids (<model key>/<run or base>) beside the display labels",
        (
            # stable ids (arena.adapters.contestant_id): what ratings group by
            AddColumn("battles", _text("contestant_a_id")),
            AddColumn("battles", _text("contestant_b_id")),
            AddColumn("eval_results", _text("contestant_id")),
            AddColumn("eval_cache", _text("contestant_id")),
        ),
        backfill=_fill_stable_ids,
    ),
    Migration(
        3,
        "arena process owners: each battle's generating process and the processes' heartbeats",
        (AddColumn("battles", _text("owner_id")),),  # arena.store.owners
        add_tables=(
            Table("owners", (_text("owner_id", True), _text("heartbeat_at", True)), primary_key="owner_id"),
        ),
    ),
    Migration(
        4,
        "clinical judgement: rubric per answer, each vote's quality record, raters, invite codes, "
        "follow-up turns",
        add_tables=JUDGEMENT_TABLES,  # arena.store.judgement_tables
    ),
    Migration(
        5,
        "the served weights (format/precision tag, arena.adapters.Contestant.weights) beside each "
        "evaluation result and cached answer, so the board shows a metric only for the weights served now",
        (
            AddColumn("eval_results", _text("weights")),
            AddColumn("eval_cache", _text("weights")),
        ),
        backfill=_fill_weights,
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version


def current_tables() -> dict[str, Table]:
    """The tables as this version writes them: the base tables plus every migration's columns."""
    tables = {table.name: table for table in BASE_TABLES}
    for migration in MIGRATIONS:
        tables.update({table.name: table for table in migration.add_tables})
        for step in migration.add_columns:
            table = tables[step.table]
            tables[step.table] = Table(
                table.name,
                (*table.columns, step.column),
                table.primary_key,
                table.foreign_keys,
                table.unique_indexes,
            )
    return tables


def added_vote_columns() -> tuple[Column, ...]:
    """Vote columns added by migrations: the store copies each from the `VoteInput` field of the same
    name, checks it by its type, and exports it, with no other edit."""
    return tuple(
        step.column for migration in MIGRATIONS for step in migration.add_columns if step.table == "votes"
    )


def create_table_sql(table: Table, dialect: str) -> list[str]:
    """CREATE TABLE (and its unique indexes) IF NOT EXISTS, in this dialect."""
    types = _SQL_TYPES[dialect]
    lines = []
    for column in table.columns:
        if column.name == table.primary_key and column.type == "integer":
            key = (
                "INTEGER PRIMARY KEY"
                if dialect == "sqlite"
                else "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
            )
            lines.append(f"{column.name} {key}")
            continue
        line = f"{column.name} {types[column.type]}"
        if column.name == table.primary_key:
            line += " PRIMARY KEY"
        if column.not_null:
            line += " NOT NULL"
        lines.append(line)
    lines += [
        f"FOREIGN KEY ({column}) REFERENCES {other}({key})" for column, other, key in table.foreign_keys
    ]
    statements = [f"CREATE TABLE IF NOT EXISTS {table.name} (\n    " + ",\n    ".join(lines) + "\n)"]
    statements += [
        f"CREATE UNIQUE INDEX IF NOT EXISTS {name} ON {table.name} ({expression})"
        for name, expression in table.unique_indexes
    ]
    return statements


def existing_columns(session: SqlSession, table: str) -> set[str]:
    """Column names of a table as the database has it (empty if the table does not exist)."""
    if session.dialect == "sqlite":
        return {row["name"] for row in session.query(f"PRAGMA table_info({table})")}
    rows = session.query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = ?",
        [table],
    )
    return {row["column_name"] for row in rows}


def read_version(session: SqlSession) -> int:
    """The schema version the database was written with (0: none recorded, e.g. new or pre-versioning)."""
    if session.dialect == "sqlite":
        return int(session.query("PRAGMA user_version")[0]["user_version"])
    if not existing_columns(session, "meta"):
        return 0
    rows = session.query("SELECT value FROM meta WHERE key = 'schema_version'")
    return int(rows[0]["value"]) if rows else 0


def _write_version(session: SqlSession, version: int) -> None:
    if session.dialect == "sqlite":
        session.execute(f"PRAGMA user_version = {int(version)}")
    else:
        session.insert("meta", {"key": "schema_version", "value": str(version)}, replace_on="key")


def apply_schema(session: SqlSession) -> None:
    """Create what is missing, then run each migration newer than the database, in the caller's
    transaction: a crash before the commit leaves the old database as it was; running it twice changes
    nothing. A database from a newer version raises `SchemaMismatch`."""
    found = read_version(session)
    if found > SCHEMA_VERSION:
        raise SchemaMismatch(
            f"The vote database was written by a newer MedArena (schema version {found}; this one knows up "
            f"to {SCHEMA_VERSION}). Update the app before opening it."
        )
    base_columns = {table.name: table.column_names() for table in BASE_TABLES}
    for table in current_tables().values():
        for statement in create_table_sql(table, session.dialect):
            session.execute(statement)
        have = existing_columns(session, table.name)
        for column in table.columns:  # base columns missing from files made before versioning (session_id)
            if column.name in base_columns.get(table.name, ()) and column.name not in have:
                _add_column(session, table.name, column)
    for migration in MIGRATIONS:
        if migration.version <= found:
            continue
        for step in migration.add_columns:
            if step.column.name not in existing_columns(session, step.table):
                _add_column(session, step.table, step.column)
        if migration.backfill is not None:
            migration.backfill(session)
    if found != SCHEMA_VERSION:
        _write_version(session, SCHEMA_VERSION)


def _add_column(session: SqlSession, table: str, column: Column) -> None:
    session.execute(
        f"ALTER TABLE {table} ADD COLUMN {column.name} {_SQL_TYPES[session.dialect][column.type]}"
    )
