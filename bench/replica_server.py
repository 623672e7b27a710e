"""One app replica's vote path as a small HTTP server: a separate process with its own vote store (its own
connection pool on Postgres), the way each app replica behind a load balancer holds one. It serves the
store calls a battle and a vote make; model generation is left out (each battle's answers are fixed
text), because the embedded models would load for minutes and are not what replicas share.

    POST /battles {"session_id", "contestant_a", "contestant_b"}  -> 200 {"battle_id"} (created, finished)
    POST /votes   {"battle_id", "outcome", "session_id"}          -> 200 {"vote_id"} after COMMIT;
                                                                     409 {"error"} refused; 503 store down
    Prints "ready <port>" once it listens.

Run as: python -m bench.replica_server --votes-url postgresql://... [--port 0]
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from arena.store.opening import open_store  # noqa: E402
from arena.store.protocol import StoreError, StoreUnavailable, VoteStore  # noqa: E402
from arena.votes import VoteInput  # noqa: E402


class ReplicaHTTPServer(ThreadingHTTPServer):
    """A listen backlog for 16 voters arriving at once (the default 5 resets connections under a burst)."""

    request_queue_size = 128
    daemon_threads = True


def make_handler(store: VoteStore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet: one line per request would swamp the bench
            return

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:  # the name http.server dispatches on
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            try:
                if self.path == "/battles":
                    battle_id = store.create_battle(
                        "Which antibiotic first?",
                        request["contestant_a"],
                        request["contestant_b"],
                        {},
                        session_id=request["session_id"],
                    )
                    store.finish_battle(battle_id, "answer A", "answer B", {}, {}, identity_leak=False)
                    self._reply(200, {"battle_id": battle_id})
                elif self.path == "/votes":
                    vote = VoteInput(
                        request["battle_id"], request["outcome"], session_id=request["session_id"]
                    )
                    self._reply(200, {"vote_id": store.record_vote(vote).id})
                else:
                    self._reply(404, {"error": f"No such endpoint {self.path}."})
            except StoreUnavailable as error:
                self._reply(503, {"error": str(error)})
            except StoreError as error:
                self._reply(409, {"error": str(error)})

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--votes-url", required=True, help="postgresql://... URL or a SQLite file path")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    args = parser.parse_args(argv)
    store = open_store(args.votes_url)
    if store.problem:
        print(f"replica cannot start: {store.problem}", file=sys.stderr)
        return 2
    server = ReplicaHTTPServer(("127.0.0.1", args.port), make_handler(store))
    server.daemon_threads = True
    print(f"ready {server.server_address[1]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
