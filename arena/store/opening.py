"""Which vote store the app opens: a ``postgresql://`` URL (``--votes-url`` or ``$MEDARENA_VOTES_URL``)
opens `arena.store.postgres.PostgresStore`; anything else is a SQLite file (`arena.store.battles.ArenaStore`,
``$MEDARENA_VOTES_DB`` or the checkout's ``votes.db``).

    from arena.store.opening import open_store, votes_location
    store = open_store(votes_location(os.environ, cli_url=args.votes_url))

Run as: python -m pytest tests/test_store.py -q -k open_store
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from arena.store.battles import ArenaStore, default_db_path
from arena.store.postgres import is_postgres_url
from arena.store.protocol import VoteStore

VOTES_URL_ENV = "MEDARENA_VOTES_URL"


def votes_location(environ: Mapping[str, str], cli_url: str | None = None) -> str | Path:
    """``--votes-url`` if given, else ``$MEDARENA_VOTES_URL`` if set, else the SQLite file's path."""
    for candidate in (cli_url, environ.get(VOTES_URL_ENV)):
        if candidate and candidate.strip():
            location = candidate.strip()
            if not is_postgres_url(location):
                raise ValueError(
                    f"{VOTES_URL_ENV} / --votes-url must be a postgresql:// URL, not {location[:40]!r}; "
                    "for a SQLite file set MEDARENA_VOTES_DB."
                )
            return location
    return default_db_path(environ)


def open_store(location: str | Path) -> VoteStore:
    """The Postgres store for a ``postgresql://`` URL, else the SQLite store for a file path."""
    if is_postgres_url(location):
        from arena.store.postgres import PostgresStore

        return PostgresStore(str(location))
    return ArenaStore(location)
