"""The leaderboard's typed standings (arena.leaderboard) and their table cells (arena.board).

python3 -m pytest tests/test_leaderboard.py -q
"""

from __future__ import annotations

from arena.board import LEADERBOARD_COLUMNS, BoardTable, standing_cells, table_headers
from arena.leaderboard import UNRATED, build_leaderboard

A, B, C = "SmolLM2 · LoRA r1 · nf4", "SmolLM2 · base · nf4", "Gemma-3 · base · nf4"


def vote(winner: str, *, unsafe_b: bool = False, category: str = "cardiology") -> dict:
    return {
        "contestant_a": A, "contestant_b": B, "outcome": winner, "category": category,
        "voter_specialty": "gp", "flag_a_unsafe": 0, "flag_a_incorrect": 0,
        "flag_b_unsafe": int(unsafe_b), "flag_b_incorrect": 0, "bertscore_a": 0.6, "bertscore_b": 0.5,
    }  # fmt: skip


def result(contestant: str, metric: str, value: float) -> dict:
    return {
        "contestant": contestant, "dataset": "bundled", "split": "test", "metric": metric, "value": value,
        "ci_low": value - 0.05, "ci_high": value + 0.05, "created_at": "2026-11-23T00:00:00", "run_id": "r",
    }  # fmt: skip


def test_standings_carry_votes_metrics_and_speed_and_unvoted_contestants_follow() -> None:
    raw = [vote("model_a"), vote("model_a", unsafe_b=True), vote("model_b"), vote("tie", category="renal")]
    telemetry = {A: [{"latency_s": 2.0, "tokens_per_s": 30.0, "memory_mb": 300.0}]}
    table = build_leaderboard(
        raw,
        [result(A, "bertscore_f1", 0.56), result(C, "bertscore_f1", 0.61)],
        telemetry,
        {A: A, B: B, C: C},
        rounds=50,
    )
    assert table.votes == 4 and [s.contestant for s in table.rows] == [A, B, C]
    first, second, unvoted = table.rows
    assert first.rating is not None and first.rating.battles == 4 and first.rating.win_rate == 0.625
    assert second.unsafe is not None and second.unsafe.safety_flag_rate == 0.25
    assert unvoted.rank == UNRATED and unvoted.rating is None and unvoted.metrics["bertscore_f1"][0] == 0.61
    # three decisive votes, two of them for the answer with the higher BERTScore
    assert table.categories == ["cardiology", "renal"] and table.agreement[3] == 3
    assert abs(table.agreement[0] - 2 / 3) < 1e-9

    cells = dict(zip(LEADERBOARD_COLUMNS, standing_cells(first), strict=True))
    assert cells["Contestant"] == A and cells["Battles"] == 4 and cells["Win rate"] == "62%"
    assert cells["BERTScore F1"] == "0.560 [0.510, 0.610]" and cells["Tokens/s"] == "30.0"
    assert standing_cells(unvoted)[:4] == [UNRATED, C, "", 0]
    # each table shows its own columns from the one column table; only the name is in both
    votes, metrics = (dict(zip(table_headers(t), standing_cells(first, t), strict=True)) for t in BoardTable)
    assert set(votes) & set(metrics) == {"Contestant"} and set(votes) | set(metrics) == set(cells)
    assert votes["Flagged unsafe"] == cells["Flagged unsafe"] and metrics["Tokens/s"] == "30.0"


def test_the_category_filter_keeps_only_its_votes_and_notes_missing_metrics() -> None:
    raw = [vote("model_a"), vote("model_b", category="renal")]
    table = build_leaderboard(raw, [], {}, {A: A, B: B}, rounds=20, category="renal")
    assert table.votes == 1 and table.rows[0].contestant == B
    assert any("python -m arena.evaluate" in note for note in table.notes)


def test_votes_count_under_stable_ids_and_show_todays_labels() -> None:
    """A renamed display name (or a contestant no longer served) keeps every vote it had."""
    adapter, base = "smollm2-135m/20261123-212116", "smollm2-135m/base"
    raw = [{**vote("model_a"), "contestant_a": adapter, "contestant_b": base} for _ in range(3)]
    renamed = {adapter: "SmolLM2 (renamed) · LoRA 20261123-212116 · nf4"}  # the base is not served now
    table = build_leaderboard(raw, [], {}, renamed, rounds=20)
    assert [(s.contestant, s.contestant_id) for s in table.rows] == [
        ("SmolLM2 (renamed) · LoRA 20261123-212116 · nf4", adapter),
        ("SmolLM2-135M-Instruct · base", base),  # from the registry: id -> today's display name
    ]
    assert table.rows[0].rating is not None and table.rows[0].rating.battles == 3
    assert [row.name for row in table.rating_rows] == [s.contestant for s in table.rows]
    assert set(table.heatmap[0]) == {s.contestant for s in table.rows}


def test_leaked_battles_are_counted_not_rated_and_questions_are_filtered_by_task_and_specialty() -> None:
    dosing = {"question": "What dose of ibuprofen for a 4-year-old child?"}
    ecg = {"question": "ECG shows ST elevation in II, III and aVF. What does that indicate?"}
    answers = {"answer_a": "## Plan\n- **Dose** 15 mg/kg\n- review", "answer_b": "Give paracetamol."}
    raw = [
        {**vote("model_a"), **dosing, **answers},
        {**vote("model_a"), **dosing, **answers},
        {**vote("model_b"), **ecg, **answers},
        {**vote("model_b"), **ecg, **answers, "identity_leak": True},
    ]
    table = build_leaderboard(raw, [], {}, {A: A, B: B}, rounds=20)
    assert table.leaked == 1 and table.votes == 3
    assert any("1 battle kept but not rated" in note for note in table.notes)
    assert table.tasks == {"test_interpretation": 1, "treatment": 2}
    assert table.question_specialties == {"cardiology": 1, "paediatrics": 2}
    assert [s.name for s in table.style_rows] == [A, B] and "length" in table.style_note

    dosing_only = build_leaderboard(raw, [], {}, {A: A, B: B}, rounds=20, task="treatment")
    assert dosing_only.votes == 2 and dosing_only.rows[0].contestant == A
    cardiology = build_leaderboard(raw, [], {}, {A: A, B: B}, rounds=20, question_specialty="cardiology")
    assert cardiology.votes == 1 and cardiology.rows[0].contestant == B
