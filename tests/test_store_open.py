"""Which store the app opens (arena/store/opening.py, arena/space/sync.open_vote_storage): a postgresql:// URL
from --votes-url or MEDARENA_VOTES_URL opens the Postgres store with no dataset sync (the server keeps the
votes); otherwise the SQLite file as before.

Run as: python -m pytest tests/test_store_open.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest

from arena.space.sync import open_vote_storage
from arena.store.battles import ArenaStore
from arena.store.opening import VOTES_URL_ENV, votes_location
from arena.store.postgres import PostgresStore, redact_url
from tests.postgres_server import PostgresServer


def test_votes_location_prefers_the_flag_then_the_environment_then_the_file(tmp_path: Path) -> None:
    environ = {"MEDARENA_VOTES_DB": str(tmp_path / "votes.db")}
    assert votes_location(environ) == tmp_path / "votes.db"
    url = "postgresql://arena@db.internal/medarena"
    assert votes_location({**environ, VOTES_URL_ENV: url}) == url
    assert votes_location({**environ, VOTES_URL_ENV: "  "}) == tmp_path / "votes.db"
    assert votes_location({VOTES_URL_ENV: url}, cli_url="postgresql://other/db") == "postgresql://other/db"
    with pytest.raises(ValueError, match="must be a postgresql:// URL"):
        votes_location({VOTES_URL_ENV: "mysql://arena@db/medarena"})


def test_redact_url_hides_the_password() -> None:
    assert (
        redact_url("postgresql://arena:s3cret@db:5432/medarena") == "postgresql://arena:***@db:5432/medarena"
    )
    assert redact_url("postgresql://arena@db/medarena") == "postgresql://arena@db/medarena"


def test_without_a_url_the_space_storage_is_sqlite(tmp_path: Path) -> None:
    storage = open_vote_storage({"MEDARENA_VOTES_DB": str(tmp_path / "votes.db")})
    assert isinstance(storage.store, ArenaStore) and storage.store.problem is None


def test_a_postgres_url_secret_replaces_the_dataset_sync(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.new_database()
    environ = {
        "SPACE_ID": "someone/medarena",
        VOTES_URL_ENV: url,
        "MEDARENA_VOTES_DATASET": "someone/medarena-votes",
        "HF_TOKEN": "hf_not_used",
    }
    storage = open_vote_storage(environ, persistent_dir=tmp_path / "no-volume")
    try:
        assert isinstance(storage.store, PostgresStore) and storage.store.problem is None
        assert storage.sync is None and storage.votes_kept
        assert storage.warnings == [
            f"{VOTES_URL_ENV} is set, so votes go to Postgres and MEDARENA_VOTES_DATASET is not synced to."
        ]
    finally:
        storage.store.close()
