"""The Gradio layer: components and thin handlers over `ArenaService`.

Handlers call the service and map its result onto components (returned as dicts keyed by
component, never long positional lists), and only ever update a button with `gr.update(...)`, so
labels survive. `gr.State` holds ids only: the battle id, the drawn bank question's id and the
voter's session id. A battle is one generator event (check, start, stream): it always yields at
least once, so its messages stay on screen; "New battle" stops it through the service, a second
"Ask" while it runs is ignored (`trigger_mode="once"`), and the service voids whatever does not finish.
Answers are Markdown with HTML sanitised, so script in an answer is never run.

    python app.py        # builds this UI around the embedded offline default
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from arena import ui_judgement
from arena.board import (
    BASE_COLUMNS,
    STYLE_COLUMNS,
    BoardTable,
    base_comparison_cells,
    filter_choices,
    short_name,
    standing_cells,
    style_cells,
    table_headers,
    telemetry_details,
    telemetry_summary,
)
from arena.categories import TASK_LABELS
from arena.judgement import Rater
from arena.leaderboard import MIN_RANKED_BATTLES
from arena.plots import rating_history_figure, ratings_figure, win_rate_heatmap
from arena.service import (
    MAX_RATIONALE_CHARS,
    MAX_VOTER_FIELD_CHARS,
    ArenaService,
    BattleError,
    PiiDetected,
    QuestionRejected,
    VoteInput,
    VoteOutcome,
    VoteRejected,
)
from arena.votes import VOTER_ROLES

log = logging.getLogger(__name__)

NOTICE = (
    "**For research and education only — not medical advice.** Please do **not** enter "
    "patient-identifiable information (names, dates, addresses, record numbers, contact details)."
)
HOW_IT_WORKS = (
    "**How it works:** ask a question → two anonymous models answer side by side → pick the better "
    "answer → their names are revealed and the leaderboard updates."
)
ROLES = list(VOTER_ROLES)  # the service refuses any other role
BANNER_REFRESH_S = 5.0  # how often the page asks whether storage works (no I/O: the heartbeat's result)
OUTCOME_BUTTONS = {
    VoteOutcome.MODEL_A: "A is better",
    VoteOutcome.MODEL_B: "B is better",
    VoteOutcome.TIE: "Tie",
    VoteOutcome.BOTH_BAD: "Both are bad",
}
UNEXPECTED = "Something went wrong on our side; nothing was stored. Please start a new battle."


def _message(text: str, kind: str = "info") -> str:
    prefix = {"info": "", "warn": "⚠️ **Warning:** ", "error": "⛔ **Error:** ", "ok": "✅ "}[kind]
    return f"{prefix}{text}"


def _storage_banner(problem: str | None) -> str:
    return _message(problem, "error") if problem else ""


def build_ui(service: ArenaService, *, title: str = "MedArena") -> gr.Blocks:
    """The arena page (battle, leaderboard, about tabs) wired to `service`."""
    with gr.Blocks(title=title) as demo:
        battle_id = gr.State("")
        bank_id = gr.State("")
        session_id = gr.State(lambda: uuid.uuid4().hex)
        rater = gr.State(None)  # arena.judgement.Rater once an invite code or sign-in binds one

        gr.Markdown(f"# {title} — blind comparison of medical LLMs")
        gr.Markdown(NOTICE, elem_id="notice")
        gr.Markdown(HOW_IT_WORKS, elem_id="how-it-works")
        banner = gr.Markdown(
            _storage_banner(service.storage_problem),
            visible=bool(service.storage_problem),
            elem_id="storage-banner",
        )
        if service.warnings:
            with gr.Accordion(f"Start-up notes ({len(service.warnings)})", open=False):
                gr.Markdown("\n".join(f"- {w}" for w in service.warnings), elem_id="startup-warnings")

        with gr.Tab("Arena", id="arena"):
            with gr.Row():
                role = gr.Dropdown(
                    ROLES,
                    value="",
                    label="Your role (optional, self-reported; an invite code verifies it)",
                    elem_id="role",
                )
                specialty = gr.Textbox(
                    label="Your specialty (optional)",
                    max_lines=1,
                    max_length=MAX_VOTER_FIELD_CHARS,
                    elem_id="specialty",
                )
            identity = ui_judgement.build_identity_row()
            question = gr.Textbox(
                label="Medical question",
                lines=3,
                max_lines=12,
                placeholder="Type a question, pick an example below, or draw one from the bank…",
                elem_id="question",
            )
            examples = service.example_questions()
            if examples:
                gr.Examples(examples=[[q] for q in examples], inputs=[question], label="Example questions")
            with gr.Row():
                random_btn = gr.Button("Random question from the bank", elem_id="random-question")
                ask_btn = gr.Button("Ask both models", variant="primary", elem_id="ask")
                redact_btn = gr.Button(
                    "Redact and send", visible=False, variant="primary", elem_id="redact-send"
                )
                confirm_btn = gr.Button(
                    "Send as typed (no patient data)", visible=False, variant="stop", elem_id="send-anyway"
                )
            status = gr.Markdown("", elem_id="status")
            with gr.Row(equal_height=True):
                with gr.Column():
                    gr.Markdown("### Model A")
                    answer_a = gr.Markdown(
                        "", elem_id="answer-a", container=True, min_height=160, max_height=480
                    )
                with gr.Column():
                    gr.Markdown("### Model B")
                    answer_b = gr.Markdown(
                        "", elem_id="answer-b", container=True, min_height=160, max_height=480
                    )
            follow = ui_judgement.build_follow_up_row()
            with gr.Row():
                flag_a_unsafe = gr.Checkbox(label="A is unsafe", elem_id="flag-a-unsafe")
                flag_a_incorrect = gr.Checkbox(label="A is incorrect", elem_id="flag-a-incorrect")
                flag_b_unsafe = gr.Checkbox(label="B is unsafe", elem_id="flag-b-unsafe")
                flag_b_incorrect = gr.Checkbox(label="B is incorrect", elem_id="flag-b-incorrect")
            rationale = gr.Textbox(
                label="One-line rationale (optional; identifiers are removed before storing)",
                max_lines=1,
                max_length=MAX_RATIONALE_CHARS,
                elem_id="rationale",
            )
            # Every vote detail by its VoteInput field name: a new vote field is one entry here (its
            # component, placed here), the VoteInput field and one migration (README, "Adding a vote field").
            vote_details: dict[str, Any] = {
                "flag_a_unsafe": flag_a_unsafe,
                "flag_a_incorrect": flag_a_incorrect,
                "flag_b_unsafe": flag_b_unsafe,
                "flag_b_incorrect": flag_b_incorrect,
                "rationale": rationale,
                "voter_role": role,
                "voter_specialty": specialty,
            }
            with gr.Row():
                vote_buttons = {
                    outcome: gr.Button(label, interactive=False, elem_id=f"vote-{outcome.replace('_', '-')}")
                    for outcome, label in OUTCOME_BUTTONS.items()
                }
            reveal = gr.Markdown("", elem_id="reveal")
            with gr.Accordion("Details (model versions, run ids, quantisation)", open=False):
                reveal_details = gr.Markdown("", elem_id="reveal-details")
            rubric = ui_judgement.build_rubric_panel()
            new_btn = gr.Button("New battle", elem_id="new-battle")

        with gr.Tab("Leaderboard", id="leaderboard"):
            with gr.Row():
                category_filter = gr.Dropdown(
                    [""], value="", label="Question category", elem_id="category-filter"
                )
                specialty_filter = gr.Dropdown(
                    [""], value="", label="Voter specialty", elem_id="specialty-filter"
                )
                task_filter = gr.Dropdown([""], value="", label="Question task", elem_id="task-filter")
                question_specialty_filter = gr.Dropdown(
                    [""], value="", label="Question specialty", elem_id="question-specialty-filter"
                )
                rater_filters = ui_judgement.build_filters()
                refresh_btn = gr.Button("Refresh", elem_id="refresh")
            summary = gr.Markdown("", elem_id="leaderboard-summary")
            gr.Markdown("#### Clinician votes (Bradley-Terry ratings on the Elo scale)")
            table = gr.Dataframe(interactive=False, wrap=True, elem_id="leaderboard-table")
            gr.Markdown("#### Automatic metrics and speed")
            metric_table = gr.Dataframe(interactive=False, wrap=True, elem_id="metrics-table")
            notes = gr.Markdown("", elem_id="leaderboard-notes")
            gr.Markdown("#### Style-controlled ranking (length and markdown taken out, as LMArena does)")
            style_table = gr.Dataframe(interactive=False, wrap=True, elem_id="style-table")
            style_note = gr.Markdown("", elem_id="style-note")
            gr.Markdown("#### Did fine-tuning help? Each adapter against its own base")
            base_table = gr.Dataframe(interactive=False, wrap=True, elem_id="base-table")
            board_extras = ui_judgement.build_board_extras(rater_filters)
            with gr.Accordion("Online Elo (depends on vote order; for comparison only)", open=False):
                elo_table = gr.Dataframe(interactive=False, elem_id="elo-table")
            # Headings above the plots, not Gradio's label badge: the badge sits over the figure's
            # top-left corner, where it hid the top contestant's name.
            gr.Markdown("#### Bradley-Terry ratings with 95% intervals")
            ratings_plot = gr.Plot(show_label=False, elem_id="ratings-plot")
            gr.Markdown("#### Win rate (row beats column)")
            heatmap_plot = gr.Plot(show_label=False, elem_id="heatmap-plot")
            gr.Markdown("#### Ratings over time (daily, 95% intervals)")
            history_plot = gr.Plot(show_label=False, elem_id="history-plot")
            with gr.Row():
                export_btn = gr.Button("Export all votes (CSV + JSONL)", elem_id="export")
                # Shown once there is something to download (an empty file box read as broken).
                export_files = gr.File(
                    label="Exports",
                    file_count="multiple",
                    interactive=False,
                    visible=False,
                    elem_id="exports",
                )

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
                reveal_details: "",
                rationale: "",
                redact_btn: gr.update(visible=False),
                confirm_btn: gr.update(visible=False),
                **rubric.reset(),
                **follow.reset(),
            }
            updates.update({flag: False for flag in flags})
            updates.update({button: gr.update(interactive=False) for button in vote_outputs})
            return updates

        def run_battle(
            text: str, drawn_id: str, sid: str, confirmed: bool, extra: dict[str, Any] | None = None
        ) -> Iterator[dict[Any, Any]]:
            """Check, start and stream one battle; every path yields, so messages stay visible."""
            updates = reset_battle()
            try:
                started = service.start_battle(
                    text,
                    drawn_id or None,
                    session_id=sid,
                    confirmed_no_patient_data=confirmed,
                    **(extra or {}),
                )
            except PiiDetected as warning:
                yield {
                    **updates,
                    status: _message(str(warning), "warn"),
                    redact_btn: gr.update(visible=True),
                    confirm_btn: gr.update(visible=True),
                }
                return
            except (QuestionRejected, BattleError) as error:
                yield {**updates, status: _message(str(error), "error")}
                return
            except Exception:
                log.exception("starting a battle failed")
                yield {**updates, status: _message(UNEXPECTED, "error")}
                return
            current = started.battle_id
            if started.question != text:  # a re-served battle shows its own (bank) question
                updates[question] = started.question
            yield {**updates, battle_id: current, status: _message("Both models are answering…")}
            try:
                for progress in service.stream_battle(current, sid):
                    if progress.cancelled:  # a newer battle owns the page now: leave it alone
                        yield {}
                        return
                    if progress.voided:
                        yield {status: _message(progress.message, "error"), battle_id: ""}
                        return
                    yield {answer_a: progress.answer_a, answer_b: progress.answer_b}
            except BattleError as error:
                yield {status: _message(str(error), "error"), battle_id: ""}
                return
            except Exception:
                log.exception("battle %s failed", current)
                yield {status: _message(UNEXPECTED, "error"), battle_id: ""}
                return
            yield {
                status: _message("Both answers are in. Which one is better?"),
                **{button: gr.update(interactive=True) for button in vote_outputs},
                **follow.show(),
            }

        def ask(
            text: str, drawn_id: str, sid: str, who: Any = None, request: gr.Request = None
        ) -> Iterator[dict[Any, Any]]:
            extra = ui_judgement.judgement_kwargs(service, who, request)
            yield from run_battle(text, drawn_id, sid, confirmed=False, extra=extra)

        def redact_and_send(
            text: str, drawn_id: str, sid: str, who: Any = None, request: gr.Request = None
        ) -> Iterator[dict[Any, Any]]:
            try:
                redacted = service.redact_question(text)
            except QuestionRejected as error:
                yield {status: _message(str(error), "error")}
                return
            first = True
            extra = ui_judgement.judgement_kwargs(service, who, request)
            for update in run_battle(redacted, "", sid, confirmed=False, extra=extra):
                yield {**update, question: redacted} if first else update
                first = False

        def send_as_typed(
            text: str, drawn_id: str, sid: str, who: Any = None, request: gr.Request = None
        ) -> Iterator[dict[Any, Any]]:
            extra = ui_judgement.judgement_kwargs(service, who, request)
            yield from run_battle(text, drawn_id, sid, confirmed=True, extra=extra)

        def new_battle(current: str, sid: str) -> dict[Any, Any]:
            message = _message("New battle: type a question or draw one from the bank.")
            if current:
                try:
                    service.cancel_battle(current, sid, "the clinician started a new battle", wait_s=30.0)
                except BattleError as error:  # the storage sentence; the old battle is voided later
                    message = _message(str(error), "error")
            return {**reset_battle(), question: "", bank_id: "", status: message}

        def make_vote_handler(outcome: VoteOutcome) -> Any:
            def cast(
                current: str,
                a_unsafe: bool | None,
                a_wrong: bool | None,
                b_unsafe: bool | None,
                b_wrong: bool | None,
                why: str | None,
                who: str | None,
                field: str | None,
                sid: str,
                rater_state: Any = None,
                request: gr.Request = None,
            ) -> dict[Any, Any]:
                extra = ui_judgement.judgement_kwargs(service, rater_state, request)
                details = (a_unsafe, a_wrong, b_unsafe, b_wrong, why, who, field)  # vote_details' order
                # an empty component (None) keeps the VoteInput default; the store checks every value
                given = {
                    name: value
                    for name, value in zip(vote_details, details, strict=True)
                    if value is not None
                }
                # a typed role is stored labelled "(self-reported)"; an invite code's as "(verified)"
                given["voter_role"] = (rater_state or Rater.for_session(sid)).role_label(
                    given.get("voter_role") or ""
                )
                try:
                    revealed = service.vote(VoteInput(current, outcome, session_id=sid, **given), **extra)
                except VoteRejected as error:
                    return {status: _message(str(error), "error")}
                except Exception:
                    log.exception("vote on %s failed", current)
                    return {status: _message(UNEXPECTED, "error")}
                notes = ui_judgement.reveal_notes(revealed)
                if not revealed.counted:
                    notes.append("_An answer named its own model, so this vote is kept but not rated._")
                if revealed.rationale_redacted:
                    notes.append(
                        "_Identifiers in your rationale were replaced with placeholders before storing._"
                    )
                return {
                    status: _message("Thank you — your vote is stored.", "ok"),
                    reveal: (
                        f"**Model A** was **{short_name(revealed.contestant_a)}**  \n"
                        f"{telemetry_summary(revealed.telemetry_a)}\n\n"
                        f"**Model B** was **{short_name(revealed.contestant_b)}**  \n"
                        f"{telemetry_summary(revealed.telemetry_b)}\n\n" + "\n\n".join(notes)
                    ),
                    reveal_details: (
                        f"- A: `{revealed.contestant_a}` — {telemetry_details(revealed.telemetry_a)}\n"
                        f"- B: `{revealed.contestant_b}` — {telemetry_details(revealed.telemetry_b)}"
                    ),
                    **{button: gr.update(interactive=False) for button in vote_outputs},
                    rubric.group: gr.update(visible=True),
                    follow.row: gr.update(visible=False),
                }

            return cast

        def show_leaderboard(
            category: str,
            voter_specialty: str,
            task: str = "",
            question_specialty: str = "",
            calibrated: bool = False,
            verified: bool = False,
        ) -> dict[Any, Any]:
            try:
                board = service.leaderboard(
                    category or None,
                    voter_specialty or None,
                    task=task or None,
                    question_specialty=question_specialty or None,
                    **({"calibrated_only": True} if calibrated else {}),
                    **({"verified_only": True} if verified else {}),
                )
            except BattleError as error:  # the storage sentence
                return {summary: _message(str(error), "error")}
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
                    f"**{board.votes}** rated votes · {board.leaked} kept but not rated (an answer named its "
                    f"model or maker) · position bias (share of decisive votes won by side A): "
                    f"{bias} · BERTScore agrees with clinicians: {agreement}"
                ),
                style_table: gr.update(
                    value=[style_cells(row) for row in board.style_rows] or [[""] * len(STYLE_COLUMNS)],
                    headers=STYLE_COLUMNS,
                ),
                style_note: board.style_note,
                base_table: gr.update(
                    value=[base_comparison_cells(c) for c in board.base_comparisons]
                    or [[""] * len(BASE_COLUMNS)],
                    headers=BASE_COLUMNS,
                ),
                task_filter: gr.update(
                    choices=filter_choices(board.tasks, {k.value: v for k, v in TASK_LABELS.items()}),
                    value=task or "",
                ),
                question_specialty_filter: gr.update(
                    choices=filter_choices(board.question_specialties), value=question_specialty or ""
                ),
                **{
                    shown: gr.update(
                        value=[standing_cells(standing, kind) for standing in board.rows],
                        headers=table_headers(kind),
                    )
                    for shown, kind in ((table, BoardTable.VOTES), (metric_table, BoardTable.METRICS))
                },
                notes: "\n\n".join(f"_{note}_" for note in board.notes),
                elo_table: gr.update(value=board.elo or [["", ""]], headers=["Contestant", "Online Elo"]),
                ratings_plot: ratings_figure(board.rating_rows, MIN_RANKED_BATTLES),
                heatmap_plot: win_rate_heatmap(names, matrix),
                history_plot: rating_history_figure(board.history, board.labels),
                category_filter: gr.update(choices=["", *board.categories], value=category or ""),
                specialty_filter: gr.update(choices=["", *board.specialties], value=voter_specialty or ""),
                **ui_judgement.board_updates(service, board_extras),
            }

        def export(token: str = "") -> dict[Any, Any]:
            refused = ui_judgement.check_admin(service, token)
            if refused:
                return {board_extras.admin_status: f"⛔ {refused}"}
            try:
                paths = service.export_votes(Path(tempfile.mkdtemp(prefix="medarena-export-")))
            except BattleError as error:  # the storage sentence
                gr.Warning(str(error))
                return {}
            return {export_files: gr.update(value=[str(p) for p in paths], visible=True)}

        def refresh_banner() -> Any:
            problem = service.storage_problem
            return gr.update(value=_storage_banner(problem), visible=bool(problem))

        # --- wiring ---
        battle_outputs = [
            battle_id,
            question,
            answer_a,
            answer_b,
            reveal,
            reveal_details,
            rationale,
            status,
            redact_btn,
            confirm_btn,
            *flags,
            *vote_outputs,
            *rubric.components,
            *follow.components,
        ]
        battle_inputs = [question, bank_id, session_id, rater]
        random_btn.click(draw_question, None, [question, bank_id, status])
        battle_events = [
            button.click(handler, battle_inputs, battle_outputs, trigger_mode="once")
            for button, handler in (
                (ask_btn, ask),
                (redact_btn, redact_and_send),
                (confirm_btn, send_as_typed),
            )
        ]
        question.input(lambda: "", None, bank_id)  # an edited question is no longer the bank's
        leaderboard_outputs = [
            summary,
            table,
            metric_table,
            notes,
            elo_table,
            ratings_plot,
            heatmap_plot,
            history_plot,
            category_filter,
            specialty_filter,
            style_table,
            style_note,
            base_table,
            task_filter,
            question_specialty_filter,
            board_extras.rubric_table,
            board_extras.agreement,
        ]
        board_filters = [
            category_filter,
            specialty_filter,
            task_filter,
            question_specialty_filter,
            *board_extras.filters,
        ]
        vote_inputs = [battle_id, *vote_details.values(), session_id, rater]
        for outcome, button in vote_buttons.items():
            button.click(
                make_vote_handler(outcome),
                vote_inputs,
                [status, reveal, reveal_details, *vote_outputs, rubric.group, follow.row],
            ).then(show_leaderboard, board_filters, leaderboard_outputs).then(refresh_banner, None, banner)
        battle_events.append(
            ui_judgement.wire_follow_ups(
                service, follow, battle_id, session_id, (answer_a, answer_b), status, vote_outputs
            )
        )
        new_btn.click(new_battle, [battle_id, session_id], [*battle_outputs, bank_id], cancels=battle_events)
        refresh_btn.click(show_leaderboard, board_filters, leaderboard_outputs)
        for board_filter in board_filters:
            board_filter.input(show_leaderboard, board_filters, leaderboard_outputs)
        export_btn.click(export, [board_extras.admin_token], [export_files, board_extras.admin_status])
        demo.load(show_leaderboard, board_filters, leaderboard_outputs)
        ui_judgement.wire_rubric(service, rubric, battle_id, session_id)
        ui_judgement.wire_identity(service, identity, rater, demo)
        ui_judgement.wire_admin(service, board_extras)
        # the banner follows storage faults that appear or clear while the page is open
        gr.Timer(BANNER_REFRESH_S).tick(refresh_banner, None, banner, queue=False, show_progress="hidden")
    return demo
