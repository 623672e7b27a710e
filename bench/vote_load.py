"""Vote load on the real store: N concurrent voters as threads and as processes, then a kill -9 loop.

Each voter owns a session and votes on its own finished battles as fast as it can. The bench prints,
per mode, acknowledged votes, lost (acknowledged but not in the database), duplicated (more than one
vote row per battle) and p50/p99 vote latency. The kill loop runs a voting child and kills it with
SIGKILL at random moments; every vote it acknowledged (printed after commit) must be in the file.
Targets: 0 lost, 0 duplicated, p99 < 100 ms at 16 voters.

Run as:
    python bench/vote_load.py                      # 16 voters x 50 votes, 10 kills
    python bench/vote_load.py --voters 16 --votes 50 --kills 10 --out bench/results/vote_load.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from arena.store.battles import ArenaStore  # noqa: E402
from arena.votes import VoteInput  # noqa: E402

OUTCOMES = ("model_a", "model_b", "tie", "both_bad")


def make_battles(store: ArenaStore, session: str, count: int) -> list[str]:
    ids = []
    for index in range(count):
        battle_id = store.create_battle(f"Question {index}?", "model-x", "model-y", {}, session_id=session)
        store.finish_battle(battle_id, "answer a", "answer b", {}, {}, identity_leak=False)
        ids.append(battle_id)
    return ids


def vote_all(db: str, session: str, battle_ids: list[str]) -> tuple[list[str], list[float]]:
    store = ArenaStore(db)
    acknowledged, latencies = [], []
    for index, battle_id in enumerate(battle_ids):
        started = time.perf_counter()
        store.record_vote(VoteInput(battle_id, OUTCOMES[index % 4], rationale="load", session_id=session))
        latencies.append(time.perf_counter() - started)
        acknowledged.append(battle_id)
    return acknowledged, latencies


def _vote_process(args: tuple[str, str, list[str]]) -> tuple[list[str], list[float]]:
    return vote_all(*args)


def check(db: str, acknowledged: list[str]) -> tuple[int, int]:
    with sqlite3.connect(db) as connection:
        stored = {row[0] for row in connection.execute("SELECT battle_id FROM votes")}
        duplicated = connection.execute(
            "SELECT COUNT(*) FROM (SELECT battle_id FROM votes GROUP BY battle_id HAVING COUNT(*) > 1)"
        ).fetchone()[0]
    return sum(battle_id not in stored for battle_id in acknowledged), duplicated


def run_mode(mode: str, voters: int, votes: int, workdir: Path) -> dict[str, object]:
    db = str(workdir / f"{mode}.db")
    store = ArenaStore(db)
    plans = [
        (db, f"voter-{mode}-{v:03d}", make_battles(store, f"voter-{mode}-{v:03d}", votes))
        for v in range(voters)
    ]
    started = time.perf_counter()
    if mode == "threads":
        results: list[tuple[list[str], list[float]]] = [([], [])] * voters

        def run(index: int) -> None:
            results[index] = vote_all(*plans[index])

        threads = [threading.Thread(target=run, args=(i,)) for i in range(voters)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        with multiprocessing.get_context("spawn").Pool(voters) as pool:
            results = pool.map(_vote_process, plans)
    wall = time.perf_counter() - started
    acknowledged = [b for acked, _ in results for b in acked]
    latencies = sorted(x for _, lat in results for x in lat)
    lost, duplicated = check(db, acknowledged)
    return {
        "mode": mode,
        "voters": voters,
        "acknowledged": len(acknowledged),
        "lost": lost,
        "duplicated": duplicated,
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 2),
        "votes_per_s": round(len(acknowledged) / wall, 1),
    }


CHILD = """
import sys
from arena.store.battles import ArenaStore
from arena.votes import VoteInput
store = ArenaStore(sys.argv[1])
session = sys.argv[2]
for index in range(10**9):
    battle_id = store.create_battle(f"Q{index}?", "model-x", "model-y", {}, session_id=session)
    store.finish_battle(battle_id, "a", "b", {}, {}, identity_leak=False)
    store.record_vote(VoteInput(battle_id, "tie", session_id=session))
    print(battle_id, flush=True)  # after COMMIT: this vote is acknowledged
"""


def kill_loop(kills: int, workdir: Path, seed: int = 0) -> dict[str, object]:
    db = str(workdir / "kill.db")
    ArenaStore(db)
    rng = random.Random(seed)
    acknowledged: list[str] = []
    for kill in range(kills):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, db, f"killed-voter-{kill:03d}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        first = child.stdout.readline()  # wait until it votes, then kill it at a random moment
        time.sleep(rng.uniform(0.05, 1.0))
        os.kill(child.pid, signal.SIGKILL)
        out, _ = child.communicate()
        acknowledged += [line.strip() for line in [first, *out.splitlines()] if len(line.strip()) == 32]
    lost, duplicated = check(db, acknowledged)
    with sqlite3.connect(db) as connection:
        integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
    return {"mode": "kill -9", "kills": kills, "acknowledged": len(acknowledged), "lost": lost,
            "duplicated": duplicated, "integrity": integrity}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voters", type=int, default=16)
    parser.add_argument("--votes", type=int, default=50, help="votes per voter")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vote-load-") as tmp:
        work = Path(tmp)
        results = [run_mode(mode, args.voters, args.votes, work) for mode in ("threads", "processes")]
        results.append(kill_loop(args.kills, work))
    for row in results:
        print("  ".join(f"{key}={value}" for key, value in row.items()))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    failed = any(row["lost"] or row["duplicated"] for row in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
