"""`python -m arena.admin`: invite codes in a subprocess, redeemed once through the store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from arena.admin import main
from arena.store.battles import ArenaStore
from arena.store.judgement_tables import InviteRefused
from tests.conftest import ROOT


@pytest.mark.slow
def test_invite_command_prints_codes_that_verify_a_role_once(tmp_path: Path) -> None:
    db = tmp_path / "votes.db"
    result = subprocess.run(
        [sys.executable, "-m", "arena.admin", "--db", str(db), "invite", "--role", "physician", "--count", "2"],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    codes = result.stdout.split()
    assert len(codes) == 2 and len(set(codes)) == 2 and "stored (hashed)" in result.stderr
    store = ArenaStore(db)
    assert store.redeem_invite(codes[0])[1] == "physician"
    with pytest.raises(InviteRefused):
        store.redeem_invite(codes[0])
    raw = db.read_bytes()
    assert codes[1].encode() not in raw  # only hashes are stored


def test_raters_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", str(tmp_path / "missing.db"), "raters"]) == 1
    assert "no vote database" in capsys.readouterr().err
    ArenaStore(tmp_path / "votes.db")
    assert main(["--db", str(tmp_path / "votes.db"), "raters"]) == 0
    assert "calibration battles" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["invite", "--role", "wizard"])
