"""A loopback HTTP server answering the Hugging Face Hub calls that the vote sync makes.

The hub cannot be reached from CI, so tests point ``HF_ENDPOINT`` here and run the real
``huggingface_hub`` client against it. The routes are the ones ``huggingface_hub`` 1.x calls
(read from its source: ``hf_api.whoami``, ``create_repo``, ``_commit_api._fetch_upload_modes``
and ``_send_commit``, ``file_download.get_hf_file_metadata`` + the download GET):

    GET  /api/whoami-v2
    POST /api/repos/create
    POST /api/datasets/{owner}/{name}/preupload/{revision}      every file is answered "regular"
    POST /api/datasets/{owner}/{name}/commit/{revision}         NDJSON: header + base64 "file" lines
    GET  /api/datasets/{owner}/{name}[/revision/{revision}]     repo info (sha)
    HEAD|GET /datasets/{owner}/{name}/resolve/{revision}/{path}

Files live in memory per repository; every commit gets a new 40-hex id. ``fail_commits`` makes the
next N commits answer HTTP 500, and ``requests`` records every call, to prove there were none.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REPO = r"(?P<repo>[^/]+/[^/]+)"


@dataclass
class FakeRepo:
    files: dict[str, bytes] = field(default_factory=dict)
    sha: str = field(default_factory=lambda: uuid.uuid4().hex + "00000000")
    commits: int = 0


@dataclass
class FakeHub:
    token: str
    repos: dict[str, FakeRepo] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    fail_commits: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output quiet
                pass

            def do_GET(self) -> None:
                hub._handle(self, "GET")

            def do_HEAD(self) -> None:
                hub._handle(self, "HEAD")

            def do_POST(self) -> None:
                hub._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    # -- request handling --------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        path = request.path.split("?", 1)[0]
        with self.lock:
            self.requests.append((method, path))
        body = b""
        if method == "POST":
            body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._json(request, 401, {"error": "Invalid credentials in Authorization header"})
        routes = [
            ("GET", r"/api/whoami-v2", self._whoami),
            ("POST", r"/api/repos/create", self._create),
            ("POST", rf"/api/datasets/{REPO}/preupload/(?P<rev>[^/]+)", self._preupload),
            ("POST", rf"/api/datasets/{REPO}/commit/(?P<rev>[^/]+)", self._commit),
            ("GET", rf"/api/datasets/{REPO}(?:/revision/(?P<rev>[^/]+))?", self._info),
            ("GET", rf"/datasets/{REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self._resolve),
            ("HEAD", rf"/datasets/{REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self._resolve),
        ]
        for route_method, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if route_method == method and match:
                return handler(request, method, body, **match.groupdict())
        self._json(request, 404, {"error": f"no route {method} {path}"})

    def _json(
        self,
        request: BaseHTTPRequestHandler,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(payload).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            request.send_header(key, value)
        request.end_headers()
        request.wfile.write(data)

    def _whoami(self, request: BaseHTTPRequestHandler, method: str, body: bytes) -> None:
        self._json(request, 200, {"type": "user", "name": "medarena-ci", "auth": {"type": "access_token"}})

    def _create(self, request: BaseHTTPRequestHandler, method: str, body: bytes) -> None:
        payload = json.loads(body)
        repo = f"{payload.get('organization') or 'medarena-ci'}/{payload['name']}"
        with self.lock:
            if repo in self.repos:  # the Hub's 409 also carries the url, which create_repo(exist_ok) reads
                return self._json(
                    request,
                    409,
                    {"error": "You already created this dataset repo", "url": f"{self.url}/datasets/{repo}"},
                )
            self.repos[repo] = FakeRepo()
        self._json(request, 200, {"url": f"{self.url}/datasets/{repo}"})

    def _repo(self, request: BaseHTTPRequestHandler, repo: str) -> FakeRepo | None:
        found = self.repos.get(repo)
        if found is None:
            self._json(request, 404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        return found

    def _preupload(
        self, request: BaseHTTPRequestHandler, method: str, body: bytes, repo: str, rev: str
    ) -> None:
        if self._repo(request, repo) is None:
            return
        files = [
            {"path": item["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
            for item in json.loads(body)["files"]
        ]
        self._json(request, 200, {"files": files, "commitOid": self.repos[repo].sha})

    def _commit(self, request: BaseHTTPRequestHandler, method: str, body: bytes, repo: str, rev: str) -> None:
        found = self._repo(request, repo)
        if found is None:
            return
        with self.lock:
            if self.fail_commits > 0:
                self.fail_commits -= 1
                return self._json(request, 500, {"error": "Internal Error - We're working hard to fix this"})
            for line in body.splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    value = item["value"]
                    assert value["encoding"] == "base64"
                    found.files[value["path"]] = base64.b64decode(value["content"])
            found.sha = hashlib.sha1(uuid.uuid4().bytes).hexdigest()
            found.commits += 1
        self._json(
            request,
            200,
            {"commitUrl": f"{self.url}/datasets/{repo}/commit/{found.sha}", "commitOid": found.sha,
             "pullRequestUrl": None},
        )  # fmt: skip

    def _info(
        self, request: BaseHTTPRequestHandler, method: str, body: bytes, repo: str, rev: str | None
    ) -> None:
        found = self._repo(request, repo)
        if found is not None:
            self._json(request, 200, {"id": repo, "sha": found.sha, "siblings": []})

    def _resolve(
        self, request: BaseHTTPRequestHandler, method: str, body: bytes, repo: str, rev: str, file: str
    ) -> None:
        found = self._repo(request, repo)
        if found is None:
            return
        content = found.files.get(file)
        if content is None:
            return self._json(request, 404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
        request.send_response(200)
        request.send_header("Content-Type", "application/octet-stream")
        request.send_header("Content-Length", str(len(content)))
        request.send_header("ETag", f'"{hashlib.sha1(content).hexdigest()}"')
        request.send_header("X-Repo-Commit", found.sha)
        request.end_headers()
        if method == "GET":
            request.wfile.write(content)
