"""Two app replicas on one vote store, with one killed mid-run: 16 concurrent voters split across two
replica processes (bench/replica_server.py), each voter starting battles and voting as fast as it can;
once a third of the votes are in, replica 1 gets SIGKILL and its voters move to replica 2, as a load
balancer would send them, retrying the step that failed. Printed per store (Postgres: a throwaway server
from tests/postgres_server.py, fsync on; SQLite: one WAL file both replicas open):
acknowledged votes, lost (acknowledged but not stored), duplicated (more than one vote row per battle),
p50/p99 vote latency (HTTP round trip, acknowledged votes), and whether the Bradley-Terry ratings of the
stored votes equal those of the same votes replayed into a fresh SQLite store.
Targets: 0 lost, 0 duplicated, the same ratings.

Run as:
    python bench/replica_load.py                     # 16 voters x 30 votes, on Postgres and SQLite
    python bench/replica_load.py --votes 50 --out bench/results/replica_load.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from arena.board import to_rated  # noqa: E402
from arena.ratings import bradley_terry  # noqa: E402
from arena.store.battles import ArenaStore  # noqa: E402
from arena.store.opening import open_store  # noqa: E402
from arena.votes import VoteInput  # noqa: E402

CONTESTANTS = ("smollm2-135m/base", "smollm2-135m/run-1", "gemma3-270m/base", "gemma3-270m/run-1")
OUTCOMES = ("model_a", "model_b", "tie", "both_bad", "model_a")  # skewed, so the ratings differ


@dataclass(frozen=True)
class ReplicaRun:
    """What one run measured."""

    store: str
    voters: int
    acknowledged: int
    stored: int
    lost: int
    duplicated: int
    replica_killed: bool
    p50_ms: float
    p99_ms: float
    same_ratings_as_sqlite: bool


class Replica:
    """One `bench.replica_server` process."""

    def __init__(self, location: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.replica_server", "--votes-url", location],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("ready "):
            raise RuntimeError(
                f"a replica did not start: {line}{self.process.stderr.read() if self.process.stderr else ''}"
            )
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def post(self, path: str, body: dict[str, str]) -> tuple[int, dict[str, str]]:
        request = urllib.request.Request(
            self.url + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def run_replicas(
    location: str, *, voters: int = 16, votes_per_voter: int = 30, label: str = ""
) -> ReplicaRun:
    """Two replicas on `location`, `voters` threads split across them, replica 1 killed a third of the way."""
    open_store(location).close()  # the schema exists before two replicas race to make it
    replicas = [Replica(location), Replica(location)]
    acknowledged: dict[str, str] = {}  # battle id -> outcome, for votes answered 200
    latencies: list[float] = []
    lock = threading.Lock()
    kill_at = voters * votes_per_voter // 3
    killed = threading.Event()
    start_together = threading.Barrier(voters)

    def call(voter: int, path: str, body: dict[str, str]) -> tuple[int, dict[str, str]]:
        """POST to the voter's replica; if no full answer comes back (the replica died before or while
        answering), to the other one, as a load balancer does. A vote whose answer was cut off is not
        acknowledged; its retry is refused with "already has a vote" if the dead replica had committed it."""
        for attempt in range(6):
            # the voter's replica first, then the other; a reset or refused connection (the killed
            # replica, or a burst of 16 voters moving over at once) is tried again after a pause
            replica = replicas[(voter + attempt) % 2]
            try:
                return replica.post(path, body)
            except (OSError, http.client.HTTPException):  # refused, reset, or an answer cut short
                time.sleep(0.05 * attempt)
        return replicas[1 - voter % 2].post(path, body)

    def voter_loop(voter: int) -> None:
        session = f"replica-voter-{voter:03d}"
        start_together.wait()
        for index in range(votes_per_voter):
            pair = (CONTESTANTS[(voter + index) % 4], CONTESTANTS[(voter + 2 * index + 1) % 4])
            if pair[0] == pair[1]:
                pair = (pair[0], CONTESTANTS[(CONTESTANTS.index(pair[0]) + 1) % 4])
            status, body = call(
                voter, "/battles", {"session_id": session, "contestant_a": pair[0], "contestant_b": pair[1]}
            )
            assert status == 200, body
            outcome = OUTCOMES[(voter * 7 + index) % len(OUTCOMES)]
            vote = {"battle_id": body["battle_id"], "outcome": outcome, "session_id": session}
            started = time.perf_counter()
            status, body = call(voter, "/votes", vote)
            elapsed = time.perf_counter() - started
            if status == 200:
                with lock:
                    acknowledged[vote["battle_id"]] = outcome
                    latencies.append(elapsed)
                    if len(acknowledged) >= kill_at and not killed.is_set():
                        killed.set()
                        replicas[0].kill()
            # 409 "already has a vote": the killed replica committed it but died before answering; stored
            # once, never acknowledged, so it counts toward neither lost nor acknowledged.

    failures: list[BaseException] = []

    def voter(voter_index: int) -> None:
        try:
            voter_loop(voter_index)
        except BaseException as error:  # surfaced after the run: a voter that died is a failed run
            failures.append(error)
            start_together.abort()

    threads = [threading.Thread(target=voter, args=(index,)) for index in range(voters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for replica in replicas:
        replica.stop()
    if failures:
        raise RuntimeError(f"{len(failures)} voter(s) failed; the first: {failures[0]!r}") from failures[0]

    store = open_store(location)
    try:
        with store._connection() as session:  # type: ignore[attr-defined]
            rows = session.query("SELECT battle_id, outcome FROM votes")
        rated = store.rated_battles()
    finally:
        store.close()
    per_battle = Counter(row["battle_id"] for row in rows)
    stored_outcome = {row["battle_id"]: row["outcome"] for row in rows}
    lost = sum(1 for battle, outcome in acknowledged.items() if stored_outcome.get(battle) != outcome)
    latencies.sort()
    return ReplicaRun(
        store=label or location.split("://")[0],
        voters=voters,
        acknowledged=len(acknowledged),
        stored=len(rows),
        lost=lost,
        duplicated=sum(count - 1 for count in per_battle.values()),
        replica_killed=killed.is_set(),
        p50_ms=round(statistics.median(latencies) * 1000, 2),
        p99_ms=round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 2),
        same_ratings_as_sqlite=same_ratings_as_sqlite_replay(rated),
    )


def same_ratings_as_sqlite_replay(rated: list[dict[str, object]]) -> bool:
    """Replay these votes (contestants, outcome) into a fresh SQLite store; equal Bradley-Terry ratings?"""
    with tempfile.TemporaryDirectory(prefix="replica-replay-") as tmp:
        replay = ArenaStore(Path(tmp) / "votes.db")
        for row in rated:
            battle_id = replay.create_battle(
                "Which antibiotic first?", str(row["contestant_a"]), str(row["contestant_b"]), {},
                session_id="replay-session",
            )  # fmt: skip
            replay.finish_battle(battle_id, "answer A", "answer B", {}, {}, identity_leak=False)
            replay.record_vote(VoteInput(battle_id, str(row["outcome"]), session_id="replay-session"))
        replayed = bradley_terry(to_rated(replay.rated_battles()))
    original = bradley_terry(to_rated(rated))
    return set(original) == set(replayed) and all(abs(original[k] - replayed[k]) < 1e-9 for k in original)


def main(argv: list[str] | None = None) -> int:
    from tests.postgres_server import PostgresServer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voters", type=int, default=16)
    parser.add_argument("--votes", type=int, default=30, help="votes per voter")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="replica-load-") as tmp:
        with PostgresServer.start(Path(tmp) / "postgres", durable=True) as server:
            results = [
                run_replicas(
                    server.new_database(), voters=args.voters, votes_per_voter=args.votes, label="postgres"
                )
            ]
        results.append(
            run_replicas(
                str(Path(tmp) / "votes.db"), voters=args.voters, votes_per_voter=args.votes, label="sqlite"
            )
        )
    for row in results:
        print("  ".join(f"{key}={value}" for key, value in asdict(row).items()))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps([asdict(row) for row in results], indent=2) + "\n")
    failed = any(row.lost or row.duplicated or not row.same_ratings_as_sqlite for row in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
