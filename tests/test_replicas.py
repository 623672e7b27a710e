"""Two app replicas (bench/replica_server.py processes) share one real Postgres vote store: 16 concurrent
voters split across them, one replica killed with SIGKILL mid-run and its voters moved to the other.
Every acknowledged vote is stored once, none twice, and the ratings equal those of the same votes in
SQLite. The figures with latency for both stores: bench/replica_load.py.

Run as: python -m pytest tests/test_replicas.py -q
"""

from __future__ import annotations

import pytest

from bench.replica_load import run_replicas
from tests.postgres_server import PostgresServer


@pytest.mark.slow
def test_two_replicas_on_one_postgres_lose_and_duplicate_nothing_when_one_is_killed(
    postgres_server: PostgresServer,
) -> None:
    run = run_replicas(postgres_server.new_database(), voters=16, votes_per_voter=6, label="postgres")
    print(run)  # p50/p99 vote latency, for the log

    assert run.replica_killed
    assert run.acknowledged >= 16 * 6 // 3  # the kill came after a third of the votes
    assert (run.lost, run.duplicated) == (0, 0)
    assert run.stored >= run.acknowledged  # a vote committed by the killed replica may be unacknowledged
    assert run.same_ratings_as_sqlite
