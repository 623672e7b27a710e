"""Shared fixtures: a tiny real LoRA adapter for smollm2-135m, trained once per test session, and a
throwaway Postgres server (tests/postgres_server.py) started once per session by the tests that need it.

On a CUDA machine the suite runs offline too: unless MEDARENA_TEST_HUB=1, the embedded bases load
from their converted local copies (MEDARENA_BASE_<KEY>, set here for this session and its child
processes) instead of the registry's 4-bit hub repositories, and the loaders quantize them at load.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.postgres_server import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_adapters(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """adapters/ root holding one real smollm2-135m adapter (a few steps on the bundled set)."""
    root = tmp_path_factory.mktemp("adapters")
    command = [
        sys.executable, "-m", "finetune", "--model", "smollm2-135m", "--max-steps", "2",
        "--data.limit", "16", "--train.max_seq_length", "128", "--train.learning_rate", "1e-3",
        "--output", str(root),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    return root


def cuda_available() -> bool:
    """Whether torch sees CUDA, without importing torch where it is not installed."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


# The loader each device serves (and, by default, trains) a 4-bit base through (finetune/loading.py).
SERVING_BACKEND = "bnb-4bit-cuda" if cuda_available() else "bnb-nf4-cpu"
UNSLOTH_ON_CUDA = cuda_available() and importlib.util.find_spec("unsloth") is not None
TRAINING_BACKEND = "unsloth-cuda" if UNSLOTH_ON_CUDA else SERVING_BACKEND


def pytest_configure(config: pytest.Config) -> None:
    """On CUDA without MEDARENA_TEST_HUB=1: point the embedded bases at their local converted copies."""
    if not cuda_available() or os.environ.get("MEDARENA_TEST_HUB") == "1":
        return
    from finetune.loading import base_override, convert_embedded
    from finetune.registry import embedded_models

    for spec in embedded_models():
        if base_override(spec) is None and spec.embedded is not None and spec.embedded.is_installed():
            os.environ[f"MEDARENA_BASE_{spec.key.upper().replace('-', '_').replace('.', '_')}"] = str(
                convert_embedded(spec)
            )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (initdb + pg_ctl in a folder of its own); one
    `server.new_database()` per test. Not under pytest's basetemp: every pytest session resets
    /tmp/pytest-of-<user> to mode 0700, which would lock the server's own user out mid-run."""
    with tempfile.TemporaryDirectory(prefix="medarena-postgres-") as folder:
        try:
            server = PostgresServer.start(Path(folder))
        except RuntimeError as error:
            pytest.fail(str(error))
        yield server
        server.stop()


# Fixtures that train or load a real model (or start a server): a test that uses one (directly or through another fixture)
# belongs to the slow tier, so `pytest -m "not slow"` never waits for a model.
MODEL_FIXTURES = frozenset(
    {"tiny_adapters", "loaded_models", "trained", "postgres_server", "two_base_engine"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test whose fixture closure trains or loads a real model as `slow`."""
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@contextmanager
def mounted_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of `size` (e.g. "1m") mounted at folder/mnt for the block, for disk-full and
    read-only faults; the test is skipped where mounting is not allowed."""
    mount = folder / "mnt"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
