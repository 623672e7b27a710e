"""finetune.paths: the adapters folder, votes database and data folder never depend on the working directory.

Run as: python -m pytest tests/test_paths.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest

from arena.store.battles import default_db_path
from finetune.paths import project_paths

ROOT = Path(__file__).resolve().parent.parent


def test_a_checkout_resolves_to_its_own_folders_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    paths = project_paths({})
    assert paths.adapters_dir == ROOT / "adapters"
    assert paths.votes_db == ROOT / "votes.db" == default_db_path({})
    assert paths.data_dir == ROOT / "data" and (paths.data_dir / "medarena_qa.jsonl").is_file()


def test_environment_variables_win_and_are_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    paths = project_paths(
        {"MEDARENA_ADAPTERS_DIR": "runs", "MEDARENA_VOTES_DB": "/data/votes.db", "MEDARENA_DATA_DIR": "~/qa"}
    )
    assert paths.adapters_dir == tmp_path / "runs"
    assert (
        paths.votes_db == Path("/data/votes.db") == default_db_path({"MEDARENA_VOTES_DB": "/data/votes.db"})
    )
    assert paths.data_dir == Path.home() / "qa"
