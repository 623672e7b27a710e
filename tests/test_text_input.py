"""Visible text, normalisation and length checks of arena/text_input.py, against generated sets of
code points (every assigned invisible one, a sample of unassigned and private-use ones, and one of each
visible category), plus the CSV export's formula neutralisation.

Run as: python -m pytest tests/test_text_input.py -q
"""

from __future__ import annotations

import csv
import sys
import unicodedata
import uuid
from pathlib import Path

import pytest

from arena.export import FORMULA_TRIGGERS, spreadsheet_safe, write_votes_csv, write_votes_jsonl
from arena.integrity import QuestionRejected, validate_question
from arena.store.battles import SESSION_ID_PATTERN, ArenaStore
from arena.text_input import (
    BLANK_FILLERS,
    MAX_QUESTION_CHARS,
    RATIONALE,
    InputRefused,
    bounded,
    checked_vote_text,
    has_visible_text,
    normalise,
)
from arena.votes import VoteInput

INVISIBLE_CATEGORIES = {"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Mc", "Me"}
SAMPLED_CATEGORIES = {"Cn", "Co"}  # ~970,000 code points: every 97th is tested


def generated_invisible() -> list[str]:
    """Every assigned code point that shows nothing on its own, the known blank fillers, and a sample
    of unassigned and private-use ones (surrogates are refused as broken text, tested apart)."""
    chosen = []
    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        category = unicodedata.category(ch)
        sampled = category in SAMPLED_CATEGORIES and code % 97 == 0
        if category in INVISIBLE_CATEGORIES or ch in BLANK_FILLERS or sampled:
            chosen.append(ch)
    return chosen


INVISIBLE = generated_invisible()


def test_the_generated_set_covers_every_invisible_kind() -> None:
    categories = {unicodedata.category(ch) for ch in INVISIBLE}
    assert INVISIBLE_CATEGORIES | SAMPLED_CATEGORIES | {"Lo", "So"} <= categories  # Lo/So: fillers
    assert len(INVISIBLE) > 3000 and {"\x00", "\u3164", "\u2800", "\u0301", "\u200b"} <= set(INVISIBLE)


def test_no_question_made_only_of_invisible_code_points_is_accepted() -> None:
    accepted = []
    for ch in INVISIBLE:
        try:
            validate_question(f"{ch}{ch} {ch}")
        except QuestionRejected:
            continue
        accepted.append(f"U+{ord(ch):04X}")
    assert accepted == []
    for start in range(0, len(INVISIBLE), 400):  # and mixtures of them
        with pytest.raises(QuestionRejected, match="type a medical question"):
            validate_question("".join(INVISIBLE[start : start + 400]))


@pytest.mark.parametrize(
    "ch", ["a", "É", "ж", "字", "ㄱ", "٣", "Ⅻ", "?", "¿", "+", "€", "°", "😀", "\u0e01"], ids=repr
)
def test_one_visible_code_point_makes_a_question(ch: str) -> None:
    assert has_visible_text(ch)
    assert validate_question(f"\u200b{ch}\u3164") == ch


def test_normalise_makes_one_form_of_each_text() -> None:
    assert normalise("cardio\u200blogy", single_line=True) == "cardiology"
    assert normalise("cafe\u0301", single_line=True) == "café"  # NFC
    assert normalise("a\x00b\x07c\x1bd\x7f", single_line=True) == "abcd"
    assert normalise(" one\t two\r\nthree\u2028four ", single_line=True) == "one two three four"
    assert normalise(" one\t two\r\nthree\u2029four\n\n", single_line=False) == "one two\nthree\nfour"
    assert normalise("\ufeff\u2066x\u2069\u3164", single_line=True) == "x"
    with pytest.raises(InputRefused, match="broken character"):
        normalise("a\ud800b", single_line=True)


def test_lengths_are_checked_on_the_raw_text_first() -> None:
    assert bounded("x" * RATIONALE.max_chars, RATIONALE) == "x" * RATIONALE.max_chars
    with pytest.raises(InputRefused, match="501 characters long; please keep it to 500"):
        bounded("x" * 501, RATIONALE)
    with pytest.raises(InputRefused, match="must be text"):
        bounded(b"bytes", RATIONALE)
    with pytest.raises(QuestionRejected, match="4,001 characters"):
        validate_question("\u200b" * (MAX_QUESTION_CHARS + 1))  # invisible, but refused by size first


def test_vote_text_is_normalised_and_roles_come_from_the_list() -> None:
    vote = checked_vote_text(
        VoteInput("b" * 32, "tie", session_id="s" * 8, voter_role="Nurse\u200b ", voter_specialty="ICU\x00")
    )
    assert (vote.voter_role, vote.voter_specialty) == ("Nurse", "ICU")
    with pytest.raises(InputRefused, match="not a role we list"):
        checked_vote_text(VoteInput("b" * 32, "tie", session_id="s" * 8, voter_role="Surgeon General"))


def test_the_session_id_rule_matches_its_comment() -> None:
    assert SESSION_ID_PATTERN.fullmatch(uuid.uuid4().hex)  # what the UI makes
    for good in ("a" * 8, "A-b_9" * 12 + "abcd"):
        assert SESSION_ID_PATTERN.fullmatch(good)
    for bad in ("a" * 7, "a" * 65, "abcdefg\n", "abcdéfgh", "٣" * 8, "abcd efgh"):
        assert not SESSION_ID_PATTERN.fullmatch(bad), bad


# --- CSV injection ---------------------------------------------------------------------------------


@pytest.mark.parametrize("trigger", FORMULA_TRIGGERS)
def test_formula_cells_are_neutralised(trigger: str) -> None:
    assert spreadsheet_safe(f"{trigger}SUM(A1)") == f"'{trigger}SUM(A1)"


def test_exported_csv_has_no_live_formula_and_jsonl_is_untouched(tmp_path: Path) -> None:
    store = ArenaStore(tmp_path / "votes.db")
    payloads = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd", "fine"]
    session = "session-csv-1"
    for payload in payloads:
        battle_id = store.create_battle(payload, "m-a", "m-b", {}, session_id=session)
        store.finish_battle(battle_id, payload, payload, {}, {}, identity_leak=False, bertscore_a=-0.25)
        store.record_vote(VoteInput(battle_id, "tie", session_id=session, rationale=payload))
    write_votes_csv(store, tmp_path / "votes.csv")
    write_votes_jsonl(store, tmp_path / "votes.jsonl")
    with (tmp_path / "votes.csv").open(newline="", encoding="utf-8") as handle:
        cells = [cell for row in csv.DictReader(handle) for cell in row.values()]
    live = [cell for cell in cells if cell.startswith(FORMULA_TRIGGERS) and cell != "-0.25"]
    assert live == [] and cells.count("-0.25") == len(payloads)  # numbers stay numbers
    assert "'=HYPERLINK" in (tmp_path / "votes.csv").read_text()
    jsonl = (tmp_path / "votes.jsonl").read_text()
    assert '"rationale": "=HYPERLINK' in jsonl and "'=" not in jsonl
