"""Board bench: vote-to-updated-board on a votes.db of 100k votes, cached (arena/board_cache.py)
versus the board built from scratch on every request (what the service did before).

The database is a real votes.db (arena.store.battles.ArenaStore's schema); the 100k historical battles
and votes are written with one executemany each, because the store's one-vote-per-transaction API
would take many minutes. Questions and answers are real MedQuAD records (../shared/data/medquad),
so style counts and question categories cost what they cost in use. Then `--votes` more votes go
through the store's own API (create, finish, vote), and each is timed from the vote to the
updated board (`store.record_vote` + `BoardCache.table`), while the background bootstrap refresh
runs as it does in the app. Target: vote-to-updated-board < 200 ms at 100k votes.

Run as:
    python bench/board_bench.py                        # 100k votes, 20 timed votes, 200 rounds
    python bench/board_bench.py --history 100000 --out bench/results/board_bench.json
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arena.board_cache import BoardCache
from arena.leaderboard import build_leaderboard
from arena.store.battles import ArenaStore
from arena.votes import VoteInput

MEDQUAD = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "medquad" / "medquad.jsonl"
CONTESTANTS = [
    f"{family}/base" for family in ("smollm2-135m", "gemma3-270m", "qwen2.5-0.5b", "phi-3.5", "llama-3.2-1b")
]
CONTESTANTS += [
    f"{family}/run-{n}" for family in ("smollm2-135m", "gemma3-270m", "qwen2.5-0.5b") for n in (1, 2, 3)
]
SESSION = "board-bench"


def medquad_records(limit: int = 3000) -> list[dict]:
    """Real question/answer pairs (answers trimmed to ~250 words, a typical contestant answer)."""
    if not MEDQUAD.exists():
        raise SystemExit(f"{MEDQUAD} is missing; the bench reads real MedQuAD questions and answers.")
    rows = [json.loads(line) for line in MEDQUAD.read_text(encoding="utf-8").splitlines()[:limit]]
    return [{"question": r["question"], "answer": " ".join(r["answer"].split()[:250])} for r in rows]


def fill(path: Path, count: int, records: list[dict], rng: random.Random) -> None:
    """`count` finished, voted battles written in bulk into a fresh votes.db."""
    ArenaStore(path)  # creates the schema
    battles, votes = [], []
    for number in range(count):
        a, b = rng.sample(CONTESTANTS, 2)
        first, second = rng.choice(records), rng.choice(records)
        battle_id = uuid.uuid4().hex
        stamp = f"2026-11-{1 + number * 28 // count:02d}T00:00:{number % 60:02d}.{number:06d}"
        telemetry = json.dumps(
            {"latency_s": rng.uniform(1, 9), "tokens_per_s": rng.uniform(5, 40), "memory_mb": 300.0}
        )
        battles.append((
            battle_id, stamp, stamp, first["question"], None, None, "typed", a, b, a, b, first["answer"],
            second["answer"], telemetry, telemetry, "{}", "finished", None, int(number % 500 == 0), None, None, SESSION,
        ))  # fmt: skip
        votes.append(
            (
                battle_id,
                rng.choice(["model_a", "model_b", "tie", "both_bad"]),
                0,
                0,
                0,
                0,
                "",
                "",
                "",
                SESSION,
                stamp,
            )
        )
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO battles (id, created_at, finished_at, question, category, reference_answer, question_source, "
            "contestant_a, contestant_b, contestant_a_id, contestant_b_id, answer_a, answer_b, telemetry_a, telemetry_b, "
            "generation_settings, status, void_reason, identity_leak, bertscore_a, bertscore_b, session_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            battles,
        )
        db.executemany(
            "INSERT INTO votes (battle_id, outcome, flag_a_unsafe, flag_a_incorrect, flag_b_unsafe, flag_b_incorrect, "
            "rationale, voter_role, voter_specialty, session_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            votes,
        )


def one_battle(store: ArenaStore, records: list[dict], rng: random.Random) -> str:
    """A new finished battle through the store's API, ready for a vote."""
    a, b = rng.sample(CONTESTANTS, 2)
    first, second = rng.choice(records), rng.choice(records)
    battle_id = store.create_battle(
        question=first["question"], contestant_a=a, contestant_b=b, contestant_a_id=a, contestant_b_id=b,
        generation_settings={}, session_id=SESSION,
    )  # fmt: skip
    store.finish_battle(
        battle_id, answer_a=first["answer"], answer_b=second["answer"], telemetry_a={"latency_s": 2.0},
        telemetry_b={"latency_s": 3.0}, identity_leak=False,
    )  # fmt: skip
    return battle_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=100_000, help="votes already in the database")
    parser.add_argument("--votes", type=int, default=20, help="new votes timed one by one")
    parser.add_argument("--rounds", type=int, default=200, help="bootstrap rounds")
    parser.add_argument("--skip-scratch", action="store_true", help="skip the from-scratch baseline")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rng = random.Random(0)
    records = medquad_records()
    served = {stable_id: stable_id for stable_id in CONTESTANTS}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "votes.db"
        started = time.perf_counter()
        fill(path, args.history, records, rng)
        print(f"wrote {args.history} votes in {time.perf_counter() - started:.1f} s")
        store = ArenaStore(path)
        report: dict = {"history": args.history, "rounds": args.rounds, "contestants": len(CONTESTANTS)}

        if not args.skip_scratch:
            started = time.perf_counter()
            build_leaderboard(
                store.rated_battles(include_identity_leaks=True), store.eval_results(), store.telemetry_samples(),
                served, rounds=args.rounds,
            )  # fmt: skip
            report["scratch_board_s"] = time.perf_counter() - started
            print(f"board from scratch (every request, before): {report['scratch_board_s']:.2f} s")

        cache = BoardCache(store, rounds=args.rounds, background=True)
        started = time.perf_counter()
        cache.table(store.eval_results(), served)
        report["cold_start_s"] = time.perf_counter() - started
        print(f"cache cold start (once per process): {report['cold_start_s']:.2f} s")

        vote_to_board, board_only = [], []
        for _ in range(args.votes):
            battle_id = one_battle(store, records, rng)
            started = time.perf_counter()
            store.record_vote(VoteInput(battle_id, rng.choice(["model_a", "model_b"]), session_id=SESSION))
            recorded = time.perf_counter()
            table = cache.table(store.eval_results(), served)
            done = time.perf_counter()
            vote_to_board.append(done - started)
            board_only.append(done - recorded)
            assert table.votes >= args.history - args.history // 500  # the new vote is on the board
            time.sleep(0.05)  # a voter's pace; the background refresh runs meanwhile
        started = time.perf_counter()
        fresh = cache.wait_until_fresh(timeout_s=600)
        report["refresh_catch_up_s"] = time.perf_counter() - started
        started = time.perf_counter()
        cache.refresh()
        report["background_refresh_s"] = time.perf_counter() - started
        cache.close()
        report["vote_to_board_ms"] = {
            "median": 1000 * statistics.median(vote_to_board),
            "max": 1000 * max(vote_to_board),
        }
        report["board_only_ms"] = {
            "median": 1000 * statistics.median(board_only),
            "max": 1000 * max(board_only),
        }
        print(
            f"vote-to-updated-board over {args.votes} votes: median {report['vote_to_board_ms']['median']:.0f} ms, "
            f"max {report['vote_to_board_ms']['max']:.0f} ms (board alone: median "
            f"{report['board_only_ms']['median']:.0f} ms) — target < 200 ms"
        )
        print(
            f"background refresh ({args.rounds} bootstrap rounds, style fit, agreement, telemetry): "
            f"{report['background_refresh_s']:.2f} s; caught up: {fresh}"
        )
        if "scratch_board_s" in report:
            ratio = report["scratch_board_s"] * 1000 / report["vote_to_board_ms"]["median"]
            report["speedup_vs_scratch"] = ratio
            print(f"{ratio:.0f}x faster than building the board from scratch per request")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
