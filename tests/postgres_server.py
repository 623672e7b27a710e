"""A throwaway PostgreSQL server for tests and benches: initdb in a temporary folder, pg_ctl start on a free
localhost port, one fresh database per test, pg_ctl stop at the end. The binaries come from PATH or
Debian's /usr/lib/postgresql/<version>/bin (setup.sh --test installs the `postgresql` package). Postgres
refuses to run as root, so as root the server runs as the `postgres` user the package creates.

    with PostgresServer.start(tmp_dir) as server:
        url = server.new_database()          # postgresql://postgres@127.0.0.1:<port>/<fresh name>

Run as: python -m pytest tests/test_store.py -q -k postgres
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

INSTALL_HINT = "PostgreSQL's server binaries (initdb, pg_ctl) are missing; run `bash setup.sh --test`."


def find_postgres_bin() -> Path | None:
    """The folder holding initdb and pg_ctl: Debian's newest version first, else PATH."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda path: int(path.parent.parent.name)
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def _running(pid: int) -> bool:
    """Whether the process still runs: gone, or a zombie no one has reaped yet (a container's init may
    never reap the postmaster, which pg_ctl left to it), counts as stopped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class PostgresServer:
    """One running server (trust authentication, localhost only)."""

    bin_dir: Path
    folder: Path
    port: int
    run_as: str | None
    _names: itertools.count = field(default_factory=itertools.count)

    @classmethod
    def start(cls, folder: Path, *, durable: bool = False) -> Self:
        """initdb + start. `durable=False` turns fsync off (tests: only app processes die, never the
        machine); benches pass True so latency includes the server's flush to disk."""
        bin_dir = find_postgres_bin()
        if bin_dir is None:
            raise RuntimeError(INSTALL_HINT)
        run_as = None
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            run_as = "postgres"
            user = pwd.getpwnam(run_as)
            for path in folder.parents:  # let the server's user pass through (e.g. a root-only tmp dir)
                if path == Path("/"):
                    break
                os.chmod(path, os.stat(path).st_mode | 0o001)
            os.chown(folder, user.pw_uid, user.pw_gid)
        server = cls(bin_dir, folder, _free_port(), run_as)
        data = folder / "data"
        server._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-p {server.port} -c listen_addresses=127.0.0.1 -k {folder} -c max_connections=200"
        if not durable:
            options += " -c fsync=off"
        server._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(folder / "server.log"), "-w", "start")
        return server

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bin_dir / program), *args],
            capture_output=True,
            text=True,
            timeout=120,
            # the server's own group, not root's: root-owned parents grant "others" the pass-through
            user=self.run_as,
            group=self.run_as,
            extra_groups=[] if self.run_as else None,
            cwd=self.folder,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed: {result.stderr or result.stdout}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database on this server; its URL."""
        import psycopg

        name = f"t{next(self._names)}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        """Immediate shutdown: SIGQUIT to the postmaster (its pid file is readable whoever runs this, even
        after pytest has tightened the temporary folders' permissions again)."""
        pid_file = self.folder / "data" / "postmaster.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text().split()[0])
        try:
            os.kill(pid, signal.SIGQUIT)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _running(pid):
            time.sleep(0.05)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
