"""The service boundary under hostile input and failing storage, on real SQLite files: sizes checked
before any scanner, text normalised once, roles from the list, storage faults that appear and clear
while running (real read-only and full tmpfs mounts), and a second arena on the same database.

The backend is tests/fake_backend.py (fixed answers: wiring, not model behaviour).
Run as: python -m pytest tests/test_service_boundary.py -q
"""

from __future__ import annotations

import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import arena.integrity
import arena.service
import arena.text_input
from arena.integrity import QuestionRejected
from arena.service import ArenaService, BattleError
from arena.store.battles import ArenaStore, VoteRejected
from arena.votes import VoteInput
from finetune.data import QARecord
from tests.conftest import mounted_tmpfs
from tests.fake_backend import ScriptedBackend

SID = "session-boundary-1"
BANK = [QARecord("q1", "What is sepsis?", "A dysregulated host response to infection.", "test", "", "sepsis")]
ONE_MB = 1_000_000


def make_service(path: Path, backend: ScriptedBackend | None = None) -> ArenaService:
    return ArenaService(
        backend or ScriptedBackend(), ArenaStore(path, busy_timeout_s=1.0), BANK, seed=1, heartbeat_every=None
    )


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ArenaService]:
    service = make_service(tmp_path / "votes.db")
    yield service
    service.close()


def finished_battle(service: ArenaService, question: str = "What is sepsis?", sid: str = SID) -> str:
    started = service.start_battle(question, session_id=sid)
    progress = list(service.stream_battle(started.battle_id, sid))
    assert progress[-1].finished and not progress[-1].voided, progress[-1].message
    return started.battle_id


def rows(service: ArenaService, table: str) -> int:
    with sqlite3.connect(service.store.path) as connection:
        return connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


# --- item 1: sizes first ------------------------------------------------------------------------


@pytest.fixture
def scanners_forbidden(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every scanner the service can run replaced by one that records its call: a refusal of oversized
    input must leave this list empty (the structural guarantee that size is checked first)."""
    called: list[str] = []

    def forbidden(name: str):
        def scanner(*args: object, **kwargs: object) -> object:
            called.append(name)
            raise AssertionError(f"{name} ran on input that should have been refused first")

        return scanner

    for module, name in (
        (arena.service, "find_pii"),
        (arena.service, "redact"),
        (arena.service, "normalise"),
        (arena.integrity, "normalise"),
        (arena.integrity, "has_visible_text"),
        (arena.text_input, "normalise"),
    ):
        monkeypatch.setattr(module, name, forbidden(f"{module.__name__}.{name}"))
    return called


def test_oversized_input_is_refused_before_any_scanner_runs(
    service: ArenaService, scanners_forbidden: list[str]
) -> None:
    huge = "a" * ONE_MB
    with pytest.raises(QuestionRejected, match="characters long; please keep it to 4,000"):
        service.start_battle(huge, session_id=SID)
    with pytest.raises(BattleError, match="malformed"):
        service.start_battle("What is sepsis?", huge, session_id=SID)
    with pytest.raises(BattleError, match="malformed"):
        service.start_battle("What is sepsis?", session_id=huge)
    for field in ("rationale", "voter_role", "voter_specialty"):
        with pytest.raises(VoteRejected, match="characters long"):
            service.vote(VoteInput("0" * 32, "tie", session_id=SID, **{field: huge}))
    for ids in ({"battle_id": huge}, {"session_id": huge}):
        vote = VoteInput(**{"battle_id": "0" * 32, "outcome": "tie", "session_id": SID, **ids})
        with pytest.raises(VoteRejected, match="malformed"):
            service.vote(vote)
    assert scanners_forbidden == []
    assert rows(service, "battles") == 0 and rows(service, "votes") == 0


# --- items 3 and 4: visible, normalised text; roles from the list ----------------------------------


@pytest.mark.parametrize(
    "question",
    [
        "\x00\x00\x00",
        "\x01\x1f\x7f",
        "\u3164\u3164",
        "\u2800 \u2800",
        "\u0301\u0302\u20dd",
        "\u115f\u1160\uffa0",
    ],
    ids=["nul", "controls", "hangul-filler", "braille-blank", "combining-marks", "other-fillers"],
)
def test_questions_with_nothing_visible_never_become_battles(service: ArenaService, question: str) -> None:
    with pytest.raises(QuestionRejected, match="type a medical question"):
        service.start_battle(question, session_id=SID)
    assert rows(service, "battles") == 0


def test_vote_text_is_stored_normalised_and_roles_come_from_the_list(service: ArenaService) -> None:
    battle_id = finished_battle(service)
    with pytest.raises(VoteRejected, match="not a role we list"):
        service.vote(VoteInput(battle_id, "tie", session_id=SID, voter_role="Chief Wizard"))
    assert rows(service, "votes") == 0
    service.vote(
        VoteInput(
            battle_id,
            "tie",
            session_id=SID,
            rationale="A\x00 cites\u200b the\tguideline\r\nbest ",
            voter_role=" Physician\u200b",
            voter_specialty="cardio\u200blogy\x07",
        )
    )
    stored = service.store.get_vote(battle_id)
    assert (stored.rationale, stored.voter_role, stored.voter_specialty) == (
        "A cites the guideline best",
        "Physician",
        "cardiology",
    )


def test_a_drawn_question_keeps_its_reference_when_only_its_form_differs(service: ArenaService) -> None:
    started = service.start_battle("What is sepsis?\u200b ", "q1", session_id=SID)
    assert started.category == "sepsis"


# --- item 5: a second arena on the same database ---------------------------------------------------


@pytest.mark.slow  # waits on real time or starts a Python child
def test_a_second_arena_voids_only_battles_whose_owner_is_gone_and_says_why(tmp_path: Path) -> None:
    gate = threading.Event()
    first = make_service(tmp_path / "votes.db", ScriptedBackend(gate=gate))
    started = first.start_battle("What is sepsis?", session_id=SID)
    stream = first.stream_battle(started.battle_id, SID)
    assert not next(stream).finished  # generating, held at the gate

    second = make_service(tmp_path / "votes.db")  # the first process is alive: its battle is kept
    assert second.voided_at_start == 0
    assert first.store.get_battle(started.battle_id).status == "generating"

    first.close()  # its heartbeat stops: from now on its battles are orphans
    third = make_service(tmp_path / "votes.db")
    assert third.voided_at_start == 1
    gate.set()
    last = list(stream)[-1]
    assert last.voided and not last.cancelled and "arena process answering it stopped" in last.message
    with pytest.raises(VoteRejected, match=r"voided .*arena process answering it stopped"):
        first.vote(VoteInput(started.battle_id, "tie", session_id=SID))
    second.close(), third.close()


# --- item 6: storage faults while running ----------------------------------------------------------


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    with mounted_tmpfs(tmp_path, "24m") as mount:
        yield mount


def remount(mount: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mount)], check=True)


@pytest.mark.slow  # waits on real time or starts a Python child
def test_a_read_only_fault_while_running_reads_as_the_storage_sentence_and_clears(
    tmpfs: Path, tmp_path: Path
) -> None:
    gate = threading.Event()
    backend = ScriptedBackend()
    service = make_service(tmpfs / "votes.db", backend)
    voted = finished_battle(service)
    service.vote(VoteInput(voted, "model_a", session_id=SID))
    waiting = finished_battle(service)
    backend.gate = gate
    started = service.start_battle("What is a fever?", session_id=SID)
    stream = service.stream_battle(started.battle_id, SID)
    next(stream)
    assert service.storage_problem is None

    remount(tmpfs, "ro")
    gate.set()
    last = list(stream)[-1]  # finishing the battle fails: the sentence, never a raw error
    assert last.voided and "read-only" in last.message
    assert "read-only" in (service.storage_problem or "")  # the banner shows it
    with pytest.raises(VoteRejected, match=r"read-only.*not recorded"):
        service.vote(VoteInput(waiting, "tie", session_id=SID))
    with pytest.raises(BattleError, match="read-only"):
        service.start_battle("What is asthma?", session_id=SID)
    service.beat()
    assert "read-only" in (service.storage_problem or "")

    remount(tmpfs, "rw")
    service.beat()  # the next heartbeat that writes clears the banner
    assert service.storage_problem is None
    service.vote(VoteInput(waiting, "tie", session_id=SID))  # the refused vote can be cast again
    with pytest.raises(VoteRejected, match="already has a vote"):
        service.vote(VoteInput(voted, "tie", session_id=SID))
    assert [service.store.get_vote(b).outcome for b in (voted, waiting)] == ["model_a", "tie"]
    csv_path, _ = service.export_votes(tmp_path / "export")
    assert csv_path.read_text().count("\n") == 3  # header + the two acknowledged votes
    service.close()


def test_a_full_disk_while_running_reads_as_the_storage_sentence(tmpfs: Path) -> None:
    service = make_service(tmpfs / "votes.db")
    battle_id = finished_battle(service)
    filler_path = tmpfs / "filler"
    with filler_path.open("wb", buffering=0) as filler:  # fill the real disk to the last byte
        for chunk in (65536, 512, 1):
            try:
                while True:
                    filler.write(b"\0" * chunk)
            except OSError:
                pass
    refusals = []
    for attempt in range(3):  # SQLite may still find room in a free page; a full disk shows soon
        try:
            service.start_battle(f"What is asthma, take {attempt}?", session_id=SID)
        except BattleError as error:
            refusals.append(str(error))
            break
    assert refusals and "full" in refusals[0] and "Nothing was stored" in refusals[0]
    assert "full" in (service.storage_problem or "")
    filler_path.unlink()
    service.beat()
    assert service.storage_problem is None
    service.vote(VoteInput(battle_id, "tie", session_id=SID))
    assert service.store.get_vote(battle_id) is not None
    service.close()
