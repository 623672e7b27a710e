"""The Gradio pieces of clinical judgement, built inside `arena.ui.build_ui`: the rubric panel shown
after the vote (one click per axis and side, reason chips), the identity row (invite code; Hugging
Face sign-in on a Space), and the leaderboard's rubric board, agreement line, rater filters and
admin-only rater statistics. Handlers call `service.judgement` and never raise into the page.

Run as: python -m pytest tests/test_ui_wiring.py tests/test_browser_judgement.py -q
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any

import gradio as gr
from gradio.utils import get_space

from arena.judgement import AdminOnly, InviteRefused, Rater, RubricRefused, client_key
from arena.rubric import AXES, REASON_CHIPS, RubricRejected
from arena.store.protocol import StoreUnavailable

log = logging.getLogger(__name__)
SIDES = ("a", "b")
RUBRIC_HELP = (
    "**Optional rubric** — one click per row and answer, about 20 s. Harm uses the AHRQ Common Formats "
    "Harm Scale (none / mild / moderate / severe): the harm a patient would suffer if the answer were acted on."
)


@dataclass(frozen=True)
class RubricPanel:
    """The rubric's components: a radio per (side, axis), reason chips per side, save and its message."""

    group: Any
    radios: dict[tuple[str, str], Any]
    chips: dict[str, Any]
    save: Any
    status: Any

    @property
    def components(self) -> list[Any]:
        """Everything the battle events reset."""
        return [self.group, *self.radios.values(), *self.chips.values(), self.save, self.status]

    def reset(self) -> dict[Any, Any]:
        """Hidden and cleared: what a new battle shows."""
        return {
            self.group: gr.update(visible=False),
            **{radio: None for radio in self.radios.values()},
            **{chips: [] for chips in self.chips.values()},
            self.save: gr.update(interactive=True),
            self.status: "",
        }


def build_rubric_panel() -> RubricPanel:
    """The panel, hidden until a vote is stored."""
    radios: dict[tuple[str, str], Any] = {}
    chips: dict[str, Any] = {}
    with gr.Group(visible=False, elem_id="rubric") as group:
        gr.Markdown(RUBRIC_HELP)
        with gr.Row():
            for side in SIDES:
                with gr.Column():
                    gr.Markdown(f"#### Answer {side.upper()}")
                    for axis in AXES:
                        radios[(side, axis.name)] = gr.Radio(
                            [(label, value) for value, label in axis.labels.items()],
                            label=axis.heading,
                            elem_id=f"rubric-{side}-{axis.name.replace('_', '-')}",
                        )
                    chips[side] = gr.CheckboxGroup(
                        list(REASON_CHIPS), label="Reasons", elem_id=f"rubric-{side}-reasons"
                    )
        save = gr.Button("Save rubric", elem_id="rubric-save")
        status = gr.Markdown("", elem_id="rubric-status")
    return RubricPanel(group, radios, chips, save, status)


def wire_rubric(service: Any, panel: RubricPanel, battle_id: Any, session_id: Any) -> None:
    """Save stores each clicked side once; refusals show one sentence."""
    inputs = [battle_id, session_id, *panel.radios.values(), *panel.chips.values()]

    def save(current: str, sid: str, *values: Any) -> dict[Any, Any]:
        levels = dict(zip(panel.radios, values[: len(panel.radios)], strict=True))
        reasons = dict(zip(SIDES, values[len(panel.radios) :], strict=True))
        sides = {
            side: ({axis.name: levels[(side, axis.name)] for axis in AXES}, reasons[side] or [])
            for side in SIDES
        }
        try:
            stored = service.judgement.rate_answers(current, sid, sides)
        except (RubricRejected, RubricRefused, StoreUnavailable) as error:  # one sentence each
            return {panel.status: f"⛔ {error}"}
        except Exception:
            log.exception("storing the rubric of %s failed", current)
            return {panel.status: "⛔ Something went wrong on our side; the rubric was not stored."}
        return {
            panel.status: f"✅ Rubric stored for {stored} answer{'s' if stored != 1 else ''}. Thank you.",
            panel.save: gr.update(interactive=False),
        }

    panel.save.click(save, inputs, [panel.status, panel.save])


@dataclass(frozen=True)
class IdentityRow:
    """Invite code field, its button and message; the sign-in button on a Space."""

    code: Any
    redeem: Any
    status: Any
    login: Any | None


def build_identity_row() -> IdentityRow:
    """Optional invite code (verifies a role) and, on a Hugging Face Space with OAuth, sign-in."""
    with gr.Row():
        code = gr.Textbox(
            label="Invite code (optional: verifies your role)",
            max_lines=1,
            type="password",
            elem_id="invite-code",
        )
        redeem = gr.Button("Use code", elem_id="invite-redeem")
        # Only where the Space enabled OAuth (`hf_oauth: true` in its README sets OAUTH_CLIENT_ID), and
        # only where Gradio itself sees a Space (its get_space(): SYSTEM=spaces): anywhere else a page
        # with a LoginButton gets Gradio's mocked login routes, which need a local Hugging Face login to
        # build the page at all. The real routes need authlib (gradio[oauth]); without it the page is
        # built with invite codes only.
        oauth = get_space() and os.environ.get("OAUTH_CLIENT_ID") and find_spec("authlib")
        login = gr.LoginButton() if oauth else None
    status = gr.Markdown("", elem_id="identity-status")
    return IdentityRow(code, redeem, status, login)


def wire_identity(service: Any, row: IdentityRow, rater: Any, demo: gr.Blocks) -> None:
    """A redeemed code makes this page's rater verified; a signed-in account binds the votes."""

    def redeem(code: str) -> dict[Any, Any]:
        try:
            verified = service.judgement.redeem_invite(code)
        except (InviteRefused, StoreUnavailable) as error:  # one sentence each
            return {row.status: f"⛔ {error}"}
        return {rater: verified, row.code: "", row.status: f"✅ Verified role: **{verified.role}**."}

    row.redeem.click(redeem, [row.code], [rater, row.code, row.status])
    if row.login is not None:

        def signed_in(current: Rater | None, profile: gr.OAuthProfile | None) -> Any:
            if profile is None or (current is not None and current.verified):
                return current
            return Rater.for_account(profile.username)

        demo.load(signed_in, [rater], [rater])


def judgement_kwargs(service: Any, rater: Rater | None, request: gr.Request | None) -> dict[str, Any]:
    """What start_battle and vote take beside their fields: the rater and the client's key (none when absent)."""
    kwargs: dict[str, Any] = {}
    if rater is not None:
        kwargs["rater"] = rater
    client = getattr(getattr(request, "client", None), "host", None)
    judgement = getattr(service, "judgement", None)
    if client and judgement is not None:
        kwargs["client"] = client_key(client, judgement.salt)
    return kwargs


def reveal_notes(revealed: Any) -> list[str]:
    """Lines the reveal adds for a too-fast vote, a calibration result or a re-served battle."""
    notes = [f"_{revealed.note}_"] if getattr(revealed, "note", "") else []
    quality = getattr(revealed, "quality", None)
    if quality is not None and quality.too_fast:
        notes.append("_This vote came faster than the answers can be read: it is kept but not rated._")
    if quality is not None and quality.calibration_correct is not None:
        verdict = (
            "You chose the reference answer."
            if quality.calibration_correct
            else "The other answer was the reference."
        )
        if quality.accuracy is not None:
            verdict += (
                f" Your calibration accuracy: **{quality.accuracy.correct}/{quality.accuracy.battles}**"
                f" ({quality.accuracy.accuracy:.0%})."
            )
        notes.append(verdict)
    return notes


@dataclass(frozen=True)
class BoardExtras:
    """The leaderboard's judgement parts."""

    calibrated_only: Any
    verified_only: Any
    rubric_table: Any
    agreement: Any
    admin_token: Any
    stats_button: Any
    stats_table: Any
    admin_status: Any

    @property
    def filters(self) -> list[Any]:
        return [self.calibrated_only, self.verified_only]


def build_filters() -> tuple[Any, Any]:
    """The two rater filters, placed beside the category and specialty filters."""
    calibrated = gr.Checkbox(label="Calibrated raters only", elem_id="calibrated-only")
    verified = gr.Checkbox(label="Verified clinicians only", elem_id="verified-only")
    return calibrated, verified


def build_board_extras(filters: tuple[Any, Any]) -> BoardExtras:
    """Rubric board, agreement line and the admin fold."""
    gr.Markdown("#### Clinical rubric per answer (scores 0-1, 1 best; harm rate with Wilson 95% interval)")
    rubric_table = gr.Dataframe(interactive=False, wrap=True, elem_id="rubric-table")
    agreement = gr.Markdown("", elem_id="agreement")
    with gr.Accordion("Admin: rater statistics and exports", open=False):
        admin_token = gr.Textbox(label="Admin token", type="password", max_lines=1, elem_id="admin-token")
        stats_button = gr.Button("Show rater statistics", elem_id="rater-stats")
        stats_table = gr.Dataframe(interactive=False, elem_id="rater-stats-table")
        admin_status = gr.Markdown("", elem_id="admin-status")
    return BoardExtras(
        *filters, rubric_table, agreement, admin_token, stats_button, stats_table, admin_status
    )


def board_updates(service: Any, extras: BoardExtras) -> dict[Any, Any]:
    """The rubric table and the agreement line (None-safe for services without judgement)."""
    judgement = getattr(service, "judgement", None)
    if judgement is None:
        return {}
    columns, rows = judgement.rubric_table(service.served_labels())
    lines = [
        f"{name}: {result.method}'s κ = {result.kappa:.2f} [{result.low:.2f}, {result.high:.2f}] over {result.items} re-served battles"
        for name, result in judgement.agreement_by_category().items()
    ]
    return {
        extras.rubric_table: gr.update(value=rows or [["" for _ in columns]], headers=columns),
        extras.agreement: "**Rater agreement** — "
        + ("; ".join(lines) if lines else "n/a (no battle has been re-served to a second rater yet)"),
    }


def wire_admin(service: Any, extras: BoardExtras) -> None:
    """Rater statistics need the admin token."""

    def stats(token: str) -> dict[Any, Any]:
        try:
            rows = service.judgement.rater_stats(token)
        except AdminOnly as error:
            return {extras.admin_status: f"⛔ {error}"}
        return {
            extras.stats_table: gr.update(
                value=[
                    [r.rater_id, r.correct, r.battles, f"{r.accuracy:.0%} [{r.low:.0%}, {r.high:.0%}]"]
                    for r in rows
                ]
                or [["", "", "", ""]],
                headers=["Rater", "Right", "Calibration battles", "Accuracy (Wilson 95%)"],
            ),
            extras.admin_status: "",
        }

    extras.stats_button.click(stats, [extras.admin_token], [extras.stats_table, extras.admin_status])


def check_admin(service: Any, token: str) -> str | None:
    """None when `token` is the admin's, else the sentence to show (services without judgement allow)."""
    judgement = getattr(service, "judgement", None)
    if judgement is None:
        return None
    try:
        judgement.check_admin(token)
    except AdminOnly as error:
        return str(error)
    return None


@dataclass(frozen=True)
class FollowUpRow:
    """The follow-up question box and its button, shown once both answers are in."""

    row: Any
    text: Any
    ask: Any

    @property
    def components(self) -> list[Any]:
        return [self.row, self.text, self.ask]

    def reset(self) -> dict[Any, Any]:
        return {self.row: gr.update(visible=False), self.text: "", self.ask: gr.update(interactive=True)}

    def show(self) -> dict[Any, Any]:
        return {self.row: gr.update(visible=True), self.ask: gr.update(interactive=True)}


def build_follow_up_row() -> FollowUpRow:
    """Hidden until a battle's answers are in; hidden again by the vote."""
    with gr.Row(visible=False, elem_id="follow-up-row") as row:
        text = gr.Textbox(
            label="Follow-up question to both models (optional, before you vote)",
            max_lines=4,
            elem_id="follow-up",
            scale=4,
        )
        ask = gr.Button("Ask a follow-up", elem_id="follow-up-ask", scale=1)
    return FollowUpRow(row, text, ask)


def wire_follow_ups(
    service: Any,
    follow: FollowUpRow,
    battle_id: Any,
    session_id: Any,
    answers: tuple[Any, Any],
    status: Any,
    vote_buttons: list[Any],
) -> Any:
    """One generator event per follow-up: check, store, stream both transcripts, re-enable voting."""
    from arena.integrity import QuestionRejected
    from arena.service import BattleError, PiiDetected

    answer_a, answer_b = answers
    locked = {button: gr.update(interactive=False) for button in vote_buttons}
    unlocked = {button: gr.update(interactive=True) for button in vote_buttons}

    def ask(current: str, text: str, sid: str) -> Any:
        if not current:
            yield {status: "⛔ Start a battle first; follow-ups continue its conversation."}
            return
        try:
            service.ask_follow_up(current, text, session_id=sid)
        except PiiDetected as warning:
            yield {
                status: "⚠️ Your follow-up seems to contain identifiers; they were replaced with placeholders "
                "in the box. Nothing was sent or stored. Check it, then press “Ask a follow-up” again.",
                follow.text: warning.redacted,
            }
            return
        except (QuestionRejected, BattleError) as error:
            yield {status: f"⛔ {error}"}
            return
        yield {
            **locked,
            follow.ask: gr.update(interactive=False),
            status: "Both models are answering your follow-up…",
        }
        try:
            for progress in service.stream_follow_up(current, sid):
                if progress.cancelled:
                    yield {}
                    return
                if progress.voided:
                    yield {
                        **unlocked,
                        follow.ask: gr.update(interactive=True),
                        status: f"⛔ {progress.message}",
                    }
                    return
                yield {answer_a: progress.answer_a, answer_b: progress.answer_b}
        except BattleError as error:
            yield {**unlocked, follow.ask: gr.update(interactive=True), status: f"⛔ {error}"}
            return
        except Exception:
            log.exception("follow-up on %s failed", current)
            yield {
                **unlocked,
                status: "⛔ Something went wrong on our side; you can still vote on the answers.",
            }
            return
        yield {
            **unlocked,
            follow.text: "",
            follow.ask: gr.update(interactive=True),
            status: "Both follow-up answers are in. Ask another, or vote on the whole conversation.",
        }

    return follow.ask.click(
        ask,
        [battle_id, follow.text, session_id],
        [status, follow.text, follow.ask, answer_a, answer_b, *vote_buttons],
        trigger_mode="once",
    )
