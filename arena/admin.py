"""Admin commands on the vote database: issue invite codes that verify a rater's role, and list the
raters' calibration accuracy. Whoever can run this can read the database file, so no token is asked.

    python -m arena.admin invite --role physician            # prints one single-use code
    python -m arena.admin invite --role nurse --count 5 --db /data/votes.db
    python -m arena.admin raters                             # calibration accuracy per rater

Run as: python -m pytest tests/test_admin.py -q
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from arena.rater_quality import calibration_accuracy
from arena.store.battles import ArenaStore, StoreError, default_db_path
from arena.store.judgement_tables import INVITE_ROLES


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: a subcommand (invite, raters) and --db."""
    parser = argparse.ArgumentParser(prog="python -m arena.admin", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", type=Path, default=None, help="vote database (default: $MEDARENA_VOTES_DB or ./votes.db)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    invite = commands.add_parser("invite", help="issue single-use invite codes that verify a role")
    invite.add_argument("--role", required=True, choices=INVITE_ROLES)
    invite.add_argument("--count", type=int, default=1, help="how many codes (default 1)")
    commands.add_parser("raters", help="calibration accuracy per rater")
    args = parser.parse_args(argv)
    if args.command == "invite" and not 1 <= args.count <= 1000:
        parser.error("--count must lie between 1 and 1000")
    return args


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; 1 and one sentence when the database is missing or unreadable."""
    args = parse_args(argv)
    db_path: Path = args.db if args.db is not None else default_db_path()
    if args.command == "raters" and not db_path.is_file():
        print(f"error: no vote database at {db_path} (pass --db or set MEDARENA_VOTES_DB)", file=sys.stderr)
        return 1
    try:
        store = ArenaStore(db_path)
        if args.command == "invite":
            for _ in range(args.count):
                print(store.create_invite(args.role))
            print(
                f"{args.count} single-use {args.role} code(s) stored (hashed) in {db_path}", file=sys.stderr
            )
            return 0
        results = calibration_accuracy(store.calibration_results())
    except (StoreError, OSError) as error:
        print(f"error: could not use {db_path}: {error}", file=sys.stderr)
        return 1
    print("rater\tright\tcalibration battles\taccuracy [Wilson 95%]")
    for result in results.values():
        print(
            f"{result.rater_id}\t{result.correct}\t{result.battles}\t{result.accuracy:.0%} [{result.low:.0%}, {result.high:.0%}]"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
