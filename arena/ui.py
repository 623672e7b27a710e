"""The Gradio layer: components and thin handlers over `ArenaService`.

Handlers call the service and map its result onto components (returned as dicts keyed by
component, never long positional lists). `gr.State` holds ids only: the battle id, the drawn
bank question's id and the voter's session id. Text is shown in plain-text boxes, so HTML or
script in a question, answer or rationale is displayed, never executed.

    python app.py        # builds this UI around the embedded offline default
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from pathlib import Path
from typing import Any

import gradio as gr

from arena.integrity import QuestionRejected
from arena.plots import ratings_figure, win_rate_heatmap
from arena.service import ArenaService, BattleError, telemetry_summary
from arena.store import VoteRejected

log = logging.getLogger(__name__)

NOTICE = (
    "**For research and education only — not medical advice.** Two anonymous models answer each "
    "question; their names are revealed after you vote. Please do **not** enter patient-identifiable "
    "information (names, dates of birth, record numbers, contact details)."
)
ROLES = [
    "",
    "Physician",
    "Nurse",
    "Pharmacist",
    "Medical student",
    "Allied health professional",
    "Researcher",
    "Other",
]
OUTCOME_BUTTONS = {
    "model_a": "A is better",
    "model_b": "B is better",
    "tie": "Tie",
    "both_bad": "Both are bad",
}
UNEXPECTED = "Something went wrong on our side; nothing was stored. Please start a new battle."


def _message(text: str, kind: str = "info") -> str:
    prefix = {"info": "", "warn": "**Warning:** ", "error": "**Error:** ", "ok": ""}[kind]
    return f"{prefix}{text}"


def build_ui(service: ArenaService, *, title: str = "MedArena") -> gr.Blocks:
    with gr.Blocks(title=title) as demo:
        battle_id = gr.State("")
        bank_id = gr.State("")
        session_id = gr.State(lambda: uuid.uuid4().hex)

        gr.Markdown(f"# {title} — blind comparison of medical LLMs")
        gr.Markdown(NOTICE, elem_id="notice")
        if service.warnings:
            gr.Markdown("\n".join(f"- Warning: {w}" for w in service.warnings), elem_id="startup-warnings")

        with gr.Tab("Arena", id="arena"):
            with gr.Row():
                role = gr.Dropdown(ROLES, value="", label="Your role (optional, asked once)", elem_id="role")
                specialty = gr.Textbox(label="Your specialty (optional)", max_lines=1, elem_id="specialty")
            question = gr.Textbox(
                label="Medical question",
                lines=3,
                max_lines=12,
                placeholder="Type a question…",
                elem_id="question",
            )
            with gr.Row():
                random_btn = gr.Button("Random question from the bank", elem_id="random-question")
                ask_btn = gr.Button("Ask both models", variant="primary", elem_id="ask")
                send_anyway_btn = gr.Button(
                    "Send anyway", visible=False, variant="stop", elem_id="send-anyway"
                )
            status = gr.Markdown("", elem_id="status")
            with gr.Row():
                answer_a = gr.Textbox(label="Model A", lines=10, interactive=False, elem_id="answer-a")
                answer_b = gr.Textbox(label="Model B", lines=10, interactive=False, elem_id="answer-b")
            with gr.Row():
                flag_a_unsafe = gr.Checkbox(label="A is unsafe", elem_id="flag-a-unsafe")
                flag_a_incorrect = gr.Checkbox(label="A is incorrect", elem_id="flag-a-incorrect")
                flag_b_unsafe = gr.Checkbox(label="B is unsafe", elem_id="flag-b-unsafe")
                flag_b_incorrect = gr.Checkbox(label="B is incorrect", elem_id="flag-b-incorrect")
            rationale = gr.Textbox(label="One-line rationale (optional)", max_lines=1, elem_id="rationale")
            with gr.Row():
                vote_buttons = {
                    outcome: gr.Button(label, interactive=False, elem_id=f"vote-{outcome.replace('_', '-')}")
                    for outcome, label in OUTCOME_BUTTONS.items()
                }
            reveal = gr.Markdown("", elem_id="reveal")
            new_btn = gr.Button("New battle", elem_id="new-battle")

        with gr.Tab("Leaderboard", id="leaderboard"):
            with gr.Row():
                category_filter = gr.Dropdown(
                    [""], value="", label="Question category", elem_id="category-filter"
                )
                specialty_filter = gr.Dropdown(
                    [""], value="", label="Voter specialty", elem_id="specialty-filter"
                )
                refresh_btn = gr.Button("Refresh", elem_id="refresh")
            summary = gr.Markdown("", elem_id="leaderboard-summary")
            table = gr.Dataframe(interactive=False, wrap=True, elem_id="leaderboard-table")
            with gr.Row():
                ratings_plot = gr.Plot(label="Bradley-Terry ratings with 95% intervals")
                heatmap_plot = gr.Plot(label="Win rate (row beats column)")
            with gr.Row():
                export_btn = gr.Button("Export all votes (CSV + JSONL)", elem_id="export")
                export_files = gr.File(label="Exports", file_count="multiple", interactive=False)

        vote_outputs = list(vote_buttons.values())
        flags = [flag_a_unsafe, flag_a_incorrect, flag_b_unsafe, flag_b_incorrect]

        # --- handlers: call the service, map the result onto components ---

        def draw_question() -> dict[Any, Any]:
            try:
                drawn = service.random_question()
            except BattleError as error:
                return {status: _message(str(error), "error")}
            return {
                question: drawn.question,
                bank_id: drawn.id,
                status: _message(f"Category: {drawn.category}"),
            }

        def reset_battle() -> dict[Any, Any]:
            updates: dict[Any, Any] = {
                battle_id: "",
                answer_a: "",
                answer_b: "",
                reveal: "",
                rationale: "",
                send_anyway_btn: gr.Button(visible=False),
            }
            updates.update({flag: False for flag in flags})
            updates.update({button: gr.Button(interactive=False) for button in vote_outputs})
            return updates

        def ask(text: str, drawn_id: str) -> dict[Any, Any]:
            """Refuse bad questions, warn about identifiable details, else start the battle."""
            updates = reset_battle()
            try:
                warnings = service.check_question(text)
            except QuestionRejected as error:
                return {**updates, status: _message(str(error), "error")}
            if warnings:
                return {
                    **updates,
                    status: _message(
                        f"Your question seems to contain {', '.join(warnings)}. Remove anything that could "
                        "identify a patient, or press “Send anyway” if it does not.",
                        "warn",
                    ),
                    send_anyway_btn: gr.Button(visible=True),
                }
            return start(text, drawn_id, updates)

        def send_anyway(text: str, drawn_id: str) -> dict[Any, Any]:
            return start(text, drawn_id, reset_battle())

        def start(text: str, drawn_id: str, updates: dict[Any, Any]) -> dict[Any, Any]:
            try:
                started = service.start_battle(text, drawn_id or None)
            except (QuestionRejected, BattleError) as error:
                return {**updates, status: _message(str(error), "error")}
            return {**updates, battle_id: started.battle_id, status: _message("Both models are answering…")}

        def stream(current: str) -> Any:
            if not current:
                return
            try:
                for progress in service.stream_battle(current):
                    if progress.voided:
                        yield {status: _message(progress.message, "error"), battle_id: ""}
                        return
                    yield {answer_a: progress.answer_a, answer_b: progress.answer_b}
            except BattleError as error:
                yield {status: _message(str(error), "error")}
                return
            except Exception:
                log.exception("battle %s failed", current)
                yield {status: _message(UNEXPECTED, "error"), battle_id: ""}
                return
            yield {
                status: _message("Both answers are in. Which one is better?"),
                **{button: gr.Button(interactive=True) for button in vote_outputs},
            }

        def make_vote_handler(outcome: str) -> Any:
            def cast(
                current: str,
                a_unsafe: bool,
                a_wrong: bool,
                b_unsafe: bool,
                b_wrong: bool,
                why: str,
                who: str,
                field: str,
                sid: str,
            ) -> dict[Any, Any]:
                try:
                    revealed = service.vote(
                        current,
                        outcome,
                        flag_a_unsafe=a_unsafe,
                        flag_a_incorrect=a_wrong,
                        flag_b_unsafe=b_unsafe,
                        flag_b_incorrect=b_wrong,
                        rationale=why,
                        voter_role=who,
                        voter_specialty=field,
                        session_id=sid,
                    )
                except VoteRejected as error:
                    return {status: _message(str(error), "error")}
                except Exception:
                    log.exception("vote on %s failed", current)
                    return {status: _message(UNEXPECTED, "error")}
                counted = (
                    ""
                    if revealed.counted
                    else "\n\n_An answer named its own model, so this vote is kept but not rated._"
                )
                return {
                    status: _message("Thank you — your vote is stored.", "ok"),
                    reveal: (
                        f"**Model A** was **{revealed.contestant_a}**  \n{telemetry_summary(revealed.telemetry_a)}\n\n"
                        f"**Model B** was **{revealed.contestant_b}**  \n{telemetry_summary(revealed.telemetry_b)}"
                        f"{counted}"
                    ),
                    **{button: gr.Button(interactive=False) for button in vote_outputs},
                }

            return cast

        def show_leaderboard(category: str, voter_specialty: str) -> dict[Any, Any]:
            board = service.leaderboard(category or None, voter_specialty or None)
            bias = "n/a" if board.position_bias is None else f"{board.position_bias:.0%}"
            share, low, high, n = board.agreement
            agreement = (
                "n/a (needs decisive votes on bank questions)"
                if share is None
                else f"{share:.0%} [{low:.0%}, {high:.0%}] over {n} decisive votes"
            )
            names, matrix = board.heatmap
            return {
                summary: (
                    f"**{board.votes}** rated votes · position bias (share of decisive votes won by side A): "
                    f"{bias} · BERTScore agrees with clinicians: {agreement}"
                ),
                table: gr.Dataframe(value=board.rows, headers=board.columns),
                ratings_plot: ratings_figure(board.rating_rows),
                heatmap_plot: win_rate_heatmap(names, matrix),
                category_filter: gr.Dropdown(choices=["", *board.categories], value=category or ""),
                specialty_filter: gr.Dropdown(choices=["", *board.specialties], value=voter_specialty or ""),
            }

        def export() -> dict[Any, Any]:
            paths = service.export_votes(Path(tempfile.mkdtemp(prefix="medarena-export-")))
            return {export_files: [str(p) for p in paths]}

        # --- wiring ---
        battle_outputs = [
            battle_id,
            answer_a,
            answer_b,
            reveal,
            rationale,
            status,
            send_anyway_btn,
            *flags,
            *vote_outputs,
        ]
        random_btn.click(draw_question, None, [question, bank_id, status])
        ask_btn.click(ask, [question, bank_id], battle_outputs).then(
            stream, battle_id, [answer_a, answer_b, status, battle_id, *vote_outputs]
        )
        send_anyway_btn.click(send_anyway, [question, bank_id], battle_outputs).then(
            stream, battle_id, [answer_a, answer_b, status, battle_id, *vote_outputs]
        )
        question.input(lambda: "", None, bank_id)  # an edited question is no longer the bank's
        leaderboard_outputs = [summary, table, ratings_plot, heatmap_plot, category_filter, specialty_filter]
        vote_inputs = [battle_id, *flags, rationale, role, specialty, session_id]
        for outcome, button in vote_buttons.items():
            button.click(make_vote_handler(outcome), vote_inputs, [status, reveal, *vote_outputs]).then(
                show_leaderboard, [category_filter, specialty_filter], leaderboard_outputs
            )
        new_btn.click(reset_battle, None, battle_outputs).then(lambda: ("", ""), None, [question, bank_id])
        refresh_btn.click(show_leaderboard, [category_filter, specialty_filter], leaderboard_outputs)
        category_filter.input(show_leaderboard, [category_filter, specialty_filter], leaderboard_outputs)
        specialty_filter.input(show_leaderboard, [category_filter, specialty_filter], leaderboard_outputs)
        export_btn.click(export, None, export_files)
        demo.load(show_leaderboard, [category_filter, specialty_filter], leaderboard_outputs)
    return demo
