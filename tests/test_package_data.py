"""data/ ships in the wheel (as finetune/bundled_data/) and the bundled sets are found from an installed
layout, outside any checkout: a non-editable `pip install .` keeps `--data bundled` working.

Builds the wheel with the system's setuptools (no network, no install into the shared Python),
unpacks it as site-packages would hold it, and imports finetune from there in a fresh interpreter.

Run: ``python -m pytest tests/test_package_data.py -q``
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # builds a wheel and starts a Python child
def test_bundled_data_is_found_after_a_non_editable_install(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy, so the build leaves no build/ or egg-info in the checkout
    for name in ("arena", "finetune", "data"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", str(source), "-w", str(wheels), "-q"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("medarena-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert {
            "finetune/bundled_data/medarena_qa.jsonl",
            "finetune/bundled_data/medarena_mcq.jsonl",
            "arena/store/__main__.py",
            "arena/serving/protocol.py",
            "arena/space/sync.py",
            "arena/eval/lm_eval_tasks/medarena_mcq_local.yaml",
        } <= names
        archive.extractall(site)
    probe = (
        "import finetune.data as d; from finetune.data import load_dataset_source as load;"
        "print(d.__file__); print(d.BUNDLED['bundled']); print(len(load('bundled').records), len(load('bundled-mcq').records))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    module, bundled, counts = result.stdout.strip().splitlines()[-3:]
    assert module.startswith(str(site)) and bundled.startswith(str(site / "finetune" / "bundled_data"))
    qa, mcq = (int(n) for n in counts.split())
    assert qa > 100 and mcq > 10
