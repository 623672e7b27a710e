"""The patient-data rules measured on six labelled sets written before the rules they first measured,
and on the bank's real questions (which hold no patient data) as negatives:

- tests/fixtures/phi_holdout.json (108 cases across HIPAA Safe Harbor identifier kinds, 66 hard
  negatives), written before the rules of issue #21 item 5; it has since been looked at, and the
  general rules of the phi branch (places, names, NI numbers, street shapes) were written with its
  misses in view, so its figure is no longer out of sample;
- tests/fixtures/phi_holdout2.json (122 cases, 157 identifiers, 83 hard negatives including drug
  makers and place-named conditions), written and committed before the phi branch changed a rule and
  measured once after, never tuned on: recall 86.6%, false alarms 1.2%, complete redaction 79.5%
  (OUT_OF_SAMPLE below, the honest out-of-sample figure). The phirules branch then wrote general rule
  classes with its misses in view (international phone layouts, IPv6, spelled-out ages, day-month-year
  dates, keyword-id families, post codes before towns, name particles, lower-case surnames, drug makers'
  place words; each with an in-sample test in tests/test_pii.py), so it is no longer out of sample
  either: its figure now shows the misses are fixed, not how the rules do on new text;
- tests/fixtures/phi_holdout3.json (184 cases, 274 identifiers, 89 hard negatives including
  citations and clinical codes), written on the phi3 branch by an author who read neither the rules
  nor the earlier sets, committed before the phirules branch was merged, and measured once after:
  recall 76.3%, false alarms 7.9%, complete redaction 66.8%, the honest out-of-sample figure of the
  phirules branch's rules (67.9%, 9.0%, 54.3% before phirules). The rules of branch phirules2 were
  then written with its misses in view (general rule classes, each with an in-sample positive and hard
  negative in tests/test_pii.py), so it is no longer out of sample either: its floors below are the
  in-view figures, and OUT_OF_SAMPLE keeps the honest one;
- tests/fixtures/phi_holdout4.json (261 cases, 345 identifiers in 142 cases, 119 hard negatives),
  written on the phi4 branch by an author who read neither the rules, their tests nor the earlier
  sets, committed before phirules2 was merged; measured on the rules before it (82.6%, 5.0%, 65.5%)
  and once after: recall 90.4%, false alarms 2.5%, complete redaction 83.1% (OUT_OF_SAMPLE below),
  the honest out-of-sample figure of phirules2's rules. The rules of branch phirules3 were then
  written with its misses, fragments and false alarms in view (general rule classes, each with an
  in-sample positive and hard negative in tests/test_pii.py, none a holdout string), so it is no
  longer out of sample either: its floors below are the in-view figures (100%, 0.0%, 100%), which say
  nothing of new text;
- tests/fixtures/phi_holdout5.json (252 cases, 436 identifiers in 134 cases, 118 hard negatives;
  clinicians' names in signatures and letters are labelled too, and each form of one person's name),
  written on the phi5 branch blind to the rules, their tests, the README and the earlier sets,
  committed before phirules3 was merged; measured on the rules before it (85.1%, 4.2%, 57.5%) and
  once after: recall 86.9%, false alarms 4.2%, complete redaction 61.9% (OUT_OF_SAMPLE below), the
  honest out-of-sample figure of phirules3's rules. The rules of branch phirules4 were then written
  with its misses, fragments and false alarms in view (general rule classes, each with an in-sample
  positive and hard negative of invented strings in tests/test_pii.py, none a holdout string), so it
  is no longer out of sample either: its floors below are the in-view figures (99.8%, 0.0%, 99.3%),
  which say nothing of new text;
- tests/fixtures/phi_holdout6.json (314 cases, 615 identifiers in 179 cases, 135 hard negatives;
  ~20 countries' conventions, several scripts, names in capitals and lower case, biometric and photo
  identifiers), written on the phi6 branch blind to the rules, their tests, the README and the
  earlier sets, committed before phirules4 was merged; measured on the rules before it (86.5%, 0.7%,
  64.2%) and once after: recall 89.3%, false alarms 0.7%, complete redaction 69.3% (OUT_OF_SAMPLE
  below). The rules of branch phirules5 were then written with its misses, fragments and false alarm
  in view (general rule classes, each with an invented positive and hard negative in tests/test_pii.py),
  so its floors below are the in-view figures (97.4%, 0.0%, 88.3%);
- tests/fixtures/phi_holdout7.json (318 cases, 813 identifiers in 190 cases, 128 hard negatives; 40+
  countries' conventions, pasted tables, letters and handovers, ten languages), written on the phi7
  branch blind to the rules, their tests, the README and the earlier sets, committed before phirules5
  was merged; measured on the rules before it (85.2%, 0.0%, 51.6%) and once after: recall 87.5%, false
  alarms 0.0%, complete redaction 57.4% (OUT_OF_SAMPLE below). The rules of branch phirules6 were then
  written with its misses in view (general rule classes, each with an invented positive and hard
  negative in tests/test_pii.py), so its floors below are the in-view figures (94.1%, 0.0%, 71.6%);
- tests/fixtures/phi_holdout8.json (355 cases, 744 identifiers in 190 cases, 165 hard negatives; 30+
  countries, 8 non-Latin scripts), written on the phi8 branch blind to the rules, their tests, the
  README and the earlier sets, committed before phirules6 was merged; measured on the rules before it
  (89.4%, 4.2%, 66.3%) and once after: recall 90.5%, false alarms 4.2%, complete redaction 68.4%, the
  out-of-sample figure (OUT_OF_SAMPLE below). The rules of branch phirules7 were then written with its
  misses and false alarms in view, so its floors below are the in-view figures (96.9%, 1.8%, 82.6%);
- tests/fixtures/phi_holdout9.json (318 cases, 617 identifiers in 168 cases, 150 hard negatives; 25+
  countries, several scripts), written on the phi9 branch blind to the rules, their tests, the README
  and the earlier sets, committed before phirules7 was merged; measured on the rules before it (88.2%,
  2.7%, 62.5%) and once after: recall 88.5%, false alarms 2.7%, complete redaction 62.5%, the honest
  out-of-sample figure of today's rules. Never tuned on: write a tenth set before tuning on its misses.

Each test prints the figures before the phi branch (BEFORE, measured on the rules of commit 5a4baad)
and the out-of-sample one beside today's.

Run as: python -m pytest tests/test_pii_holdout.py -q -s   (prints the figures in the README)
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from arena.pii import find_pii, redact
from arena.pii_eval import (
    HOLDOUT,
    Identifier,
    LabelledCase,
    PhiScore,
    leftover_words,
    load_labelled,
    report,
    score,
)
from tests.conftest import SHARED_DATA

SAFE_HARBOR_KINDS = {
    "name", "geographic", "date", "age90", "phone", "fax", "email", "ssn", "mrn", "health_plan", "account",
    "license", "vehicle", "device", "url", "ip", "other_number",
}  # fmt: skip
HOLDOUT2 = HOLDOUT.with_name("phi_holdout2.json")
HOLDOUT3 = HOLDOUT.with_name("phi_holdout3.json")
HOLDOUT4 = HOLDOUT.with_name("phi_holdout4.json")
HOLDOUT5 = HOLDOUT.with_name("phi_holdout5.json")
HOLDOUT6 = HOLDOUT.with_name("phi_holdout6.json")
HOLDOUT7 = HOLDOUT.with_name("phi_holdout7.json")
HOLDOUT8 = HOLDOUT.with_name("phi_holdout8.json")
HOLDOUT9 = HOLDOUT.with_name("phi_holdout9.json")
# (recall, false alarms, complete redaction) of the rules before the first rule change made after the
# set was written: the phi branch's (commit 5a4baad) for the first two, phirules' (56547f5) for the
# third, phirules2's (the rules of 1bfd11c) for the fourth, phirules3's (3894a1b) for the fifth, phirules3's
# (a57ef30, the whole-word scorer of phirules4) for the sixth, phirules4's (7bc7038) for the seventh,
# phirules5's (422127d) for the eighth, phirules6's (4698506) for the ninth
BEFORE = {
    HOLDOUT.name: "recall 93.1% (121/130), false alarms 0.0% (0/66), complete redaction 92.6% (100/108)",
    HOLDOUT2.name: "recall 65.0% (102/157), false alarms 1.2% (1/83), complete redaction 61.5% (75/122)",
    HOLDOUT3.name: "recall 67.9% (186/274), false alarms 9.0% (8/89), complete redaction 54.3% (100/184)",
    HOLDOUT4.name: "recall 82.6% (285/345), false alarms 5.0% (6/119), complete redaction 65.5% (93/142)",
    HOLDOUT5.name: "recall 85.1% (371/436), false alarms 4.2% (5/118), complete redaction 57.5% (77/134)",
    HOLDOUT6.name: "recall 86.5% (532/615), false alarms 0.7% (1/135), complete redaction 64.2% (115/179)",
    HOLDOUT7.name: "recall 85.2% (693/813), false alarms 0.0% (0/128), complete redaction 51.6% (98/190)",
    HOLDOUT8.name: "recall 89.4% (665/744), false alarms 4.2% (7/165), complete redaction 66.3% (126/190)",
    HOLDOUT9.name: "recall 88.2% (544/617), false alarms 2.7% (4/150), complete redaction 62.5% (105/168)",
}
# the last figures measured before a rule was written with the set's misses in view
OUT_OF_SAMPLE = {
    HOLDOUT.name: BEFORE[HOLDOUT.name],
    HOLDOUT2.name: "recall 86.6% (136/157), false alarms 1.2% (1/83), complete redaction 79.5% (97/122)",
    HOLDOUT3.name: "recall 76.3% (209/274), false alarms 7.9% (7/89), complete redaction 66.8% (123/184)",
    HOLDOUT4.name: "recall 90.4% (312/345), false alarms 2.5% (3/119), complete redaction 83.1% (118/142)",
    HOLDOUT5.name: "recall 86.9% (379/436), false alarms 4.2% (5/118), complete redaction 61.9% (83/134)",
    HOLDOUT6.name: "recall 89.3% (549/615), false alarms 0.7% (1/135), complete redaction 69.3% (124/179)",
    HOLDOUT7.name: "recall 87.5% (711/813), false alarms 0.0% (0/128), complete redaction 57.4% (109/190)",
    HOLDOUT8.name: "recall 90.5% (673/744), false alarms 4.2% (7/165), complete redaction 68.4% (130/190)",
    HOLDOUT9.name: "recall 88.5% (546/617), false alarms 2.7% (4/150), complete redaction 62.5% (105/168)",
}


@pytest.mark.parametrize(
    ("path", "negative_kinds"),
    [
        (HOLDOUT, {"eponym", "lab value", "dose", "guideline year"}),
        (HOLDOUT2, {"eponym", "lab value", "dose", "guideline year", "drug maker", "place-named condition"}),
        (
            HOLDOUT3,
            {
                "eponym",
                "lab value",
                "dose",
                "guideline year",
                "drug maker",
                "place-named condition",
                "citation",
                "clinical code",
            },
        ),
    ],
    ids=["holdout", "holdout2", "holdout3"],
)
def test_each_holdout_is_large_labelled_and_says_where_it_came_from(
    path: Path, negative_kinds: set[str]
) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert "never used to tune the rules" in data["provenance"]
    cases = load_labelled(path)  # refuses an identifier that is not in its case
    positives = [case for case in cases if case.identifiers]
    assert len(positives) >= 100 and len(cases) - len(positives) >= 50
    assert {identifier.kind for case in positives for identifier in case.identifiers} >= SAFE_HARBOR_KINDS
    negatives = Counter(raw.get("hard_negative") for raw in data["cases"] if not raw["identifiers"])
    assert negative_kinds <= set(negatives)


def figures(path: Path) -> PhiScore:
    result = score(load_labelled(path))
    print(
        f"\n{path.name} before: {BEFORE[path.name]}\n"
        f"{path.name} last out of sample: {OUT_OF_SAMPLE[path.name]}\n{path.name} now: " + report(result)
    )
    return result


def blind_set_figures(path: Path) -> PhiScore:
    """A blind set's figures, once it shows it is one: its provenance says it never tuned the rules,
    it holds at least 100 positive cases and 100 negatives, and every Safe Harbor kind."""
    data = json.loads(path.read_text(encoding="utf-8"))
    assert "never used to tune the rules" in data["provenance"]
    cases = load_labelled(path)
    positives = [case for case in cases if case.identifiers]
    assert len(positives) >= 100 and len(cases) - len(positives) >= 100
    assert {identifier.kind for case in positives for identifier in case.identifiers} >= SAFE_HARBOR_KINDS
    return figures(path)


def test_first_holdout_recall_false_alarms_and_redaction() -> None:
    result = figures(HOLDOUT)
    # Issue targets: recall >= 95%, false alarms <= 5%, no fragment left. Met on this set, which the
    # general rules of the phi branch were written with in view (not strictly out of sample).
    assert result.recall >= 0.95 and result.false_alarm_rate <= 0.05
    assert result.complete_redaction_rate >= 0.95
    assert result.detected_fragments == ()  # nothing that was found is left in part


def test_second_holdout_recall_false_alarms_and_redaction() -> None:
    result = figures(HOLDOUT2)
    # Issue targets: recall >= 95%, false alarms <= 5%, no fragment left. Met since the phirules branch
    # wrote general rule classes with this set's misses in view; out of sample it measured 86.6% recall,
    # 1.2% false alarms, 79.5% complete redaction (OUT_OF_SAMPLE), and that stays the honest figure.
    assert result.recall >= 0.95 and result.false_alarm_rate <= 0.05
    assert result.complete_redaction_rate >= 0.95
    assert result.detected_fragments == ()  # nothing that was found is left in part


def test_third_holdout_never_tuned_on_recall_false_alarms_and_redaction() -> None:
    result = figures(HOLDOUT3)
    # The honest out-of-sample figure (OUT_OF_SAMPLE): written blind to the rules and the earlier sets,
    # committed before the phirules branch was merged, measured once after: 76.3% recall, 7.9% false
    # alarms, 66.8% complete redaction, all three targets missed (README). This set is now in view: the
    # rules of branch phirules2 were written with its misses in view, and these floors are its in-view
    # figures (98.2%, 0.0%, 97.8%; 99.6%, 0.0%, 99.5% after phirules3, whose classes cover two of its
    # last misses, and whose scorer no longer counts "90" in "[AGE 90+]" as a fragment), so a change
    # that loses ground fails here; they say nothing of new text.
    assert result.recall >= 0.99 and result.complete_redaction_rate >= 0.99
    assert result.false_alarm_rate <= 0.01


def test_the_banks_real_questions_raise_almost_no_alarm() -> None:
    files = sorted(SHARED_DATA.glob("*/*.jsonl"))
    if not files:
        pytest.skip(f"no shared data at {SHARED_DATA}")
    questions = [
        json.loads(line)["question"]
        for path in files
        for line in path.read_text(encoding="utf-8").split("\n")
        if line
    ]
    sample = questions[::8]  # every eighth question of every set, the same each run
    flagged = [question for question in sample if find_pii(question)]
    print(f"\n{len(flagged)} of {len(sample)} real bank questions flagged: {[q[:60] for q in flagged]}")
    assert len(sample) > 800 and len(flagged) / len(sample) <= 0.01


def test_fourth_holdout_recall_false_alarms_and_redaction() -> None:
    result = blind_set_figures(HOLDOUT4)
    # The honest out-of-sample figure (OUT_OF_SAMPLE): written blind to the rules, their tests and
    # the earlier sets; measured before phirules2 and once after: 90.4% recall, 2.5% false alarms,
    # 83.1% complete redaction (recall and redaction targets missed, README). This set is now in view:
    # the rules of branch phirules3 were written with its misses, fragments and false alarms in view,
    # and these floors are its in-view figures (100%, 0.0%, 100%), so a change that loses ground fails
    # here; they say nothing of new text.
    assert result.recall >= 0.99 and result.complete_redaction_rate >= 0.99
    assert result.false_alarm_rate <= 0.01
    assert result.detected_fragments == ()  # nothing that was found is left in part


def test_fifth_holdout_recall_false_alarms_and_redaction() -> None:
    result = blind_set_figures(HOLDOUT5)
    # The honest out-of-sample figure (OUT_OF_SAMPLE): written blind; measured before phirules3 (85.1%,
    # 4.2%, 57.5%) and once after: 86.9% recall, 4.2% false alarms, 61.9% complete redaction (recall
    # and redaction targets missed, README). This set is now in view: the rules of branch phirules4
    # were written with its misses, fragments and false alarms in view, and these floors are its
    # in-view figures (99.8%, 0.0%, 99.3%; "son Yaw" is left: an English word no given-name list
    # holds), so a change that loses ground fails here; they say nothing of new text. (phirules4's
    # scorer places an identifier where it is a whole word; on it phirules3's rules score 86.7%, 4.2%,
    # 60.4% here: "Funmi" was counted found inside "Funmilayo".)
    assert result.recall >= 0.99 and result.complete_redaction_rate >= 0.99
    assert result.false_alarm_rate <= 0.01


def test_sixth_holdout_recall_false_alarms_and_redaction() -> None:
    result = blind_set_figures(HOLDOUT6)
    # The honest out-of-sample figure (OUT_OF_SAMPLE): written blind; measured before phirules4 (86.5%,
    # 0.7%, 64.2%) and once after: 89.3% recall, 0.7% false alarms, 69.3% complete redaction (recall
    # and redaction targets missed, README). This set is now in view: the rules of branch phirules5
    # were written with its misses, fragments and false alarm in view, and these floors are its
    # in-view figures (97.4%, 0.0%, 88.3%), so a change that loses ground fails here; they say
    # nothing of new text.
    assert result.recall >= 0.97 and result.complete_redaction_rate >= 0.88
    assert result.false_alarm_rate <= 0.01


def test_seventh_holdout_recall_false_alarms_and_redaction() -> None:
    result = blind_set_figures(HOLDOUT7)
    # The honest out-of-sample figure (OUT_OF_SAMPLE): written blind; measured before phirules5 (85.2%,
    # 0.0%, 51.6%) and once after: 87.5% recall, 0.0% false alarms, 57.4% complete redaction (recall
    # and redaction targets missed, README). This set is now in view: the rules of branch phirules6
    # were written with its misses in view, and these floors are its in-view figures (94.1%, 0.0%,
    # 71.6%), so a change that loses ground fails here; they say nothing of new text.
    assert result.recall >= 0.94 and result.complete_redaction_rate >= 0.71
    assert result.false_alarm_rate <= 0.01


def test_eighth_holdout_recall_false_alarms_and_redaction() -> None:
    result = blind_set_figures(HOLDOUT8)
    # The honest out-of-sample figure (OUT_OF_SAMPLE): written blind; measured before phirules6 (89.4%,
    # 4.2%, 66.3%) and once after: 90.5% recall, 4.2% false alarms, 68.4% complete redaction (recall
    # and redaction targets missed, README). This set is now in view: the rules of branch phirules7
    # were written with its misses and false alarms in view, and these floors are its in-view figures
    # (96.9%, 1.8%, 82.6%), so a change that loses ground fails here; they say nothing of new text.
    assert result.recall >= 0.96 and result.complete_redaction_rate >= 0.82
    assert result.false_alarm_rate <= 0.02


def test_ninth_holdout_never_tuned_on_recall_false_alarms_and_redaction() -> None:
    result = blind_set_figures(HOLDOUT9)
    # The honest out-of-sample figure of today's rules (OUT_OF_SAMPLE): written blind; measured before
    # phirules7 (88.2%, 2.7%, 62.5%) and once after. The rules that took the eighth set from 90.5% to
    # 96.9% recall in view gained 0.3 points here: the false-alarm target is met, recall and complete
    # redaction are not (README). Measured floors: a change that loses ground fails here.
    assert result.recall >= 0.88 and result.complete_redaction_rate >= 0.62
    assert result.false_alarm_rate <= 0.03


@pytest.mark.parametrize(
    ("text", "left"),
    [
        ("Mrs O'Brien's INR is 5.2", "[NAME]'s INR is 5.2"),
        ("Dr Jan van der Berg saw her", "[NAME] saw her"),
        ("Kofi Boateng, MRN AB-7720154, fell", "[NAME], MRN [RECORD], fell"),
        ("Birth certificate no. 2001-332-998877 please", "Birth certificate no. [ID] please"),
        ("Health card 1234-567-890-AB expired", "Health card [NATIONAL ID] expired"),
    ],
)
def test_redaction_leaves_no_fragment(text: str, left: str) -> None:
    assert redact(text) == left


def test_a_placeholders_own_words_are_no_leftover() -> None:
    # "[AGE 90+]" holds "90": the age it replaced is gone, so no fragment is counted for it
    case = LabelledCase("Edith, 90, fell.", (Identifier("age90", "90"),))
    assert leftover_words(case, "Edith, [AGE 90+], fell.") == []
    # a word of the identifier that is still there beside a placeholder is a leftover
    case = LabelledCase("Ann Lee, 90, fell.", (Identifier("name", "Ann Lee"), Identifier("age90", "90")))
    assert leftover_words(case, "Ann [NAME], 90, fell.") == ["90", "Ann"]
