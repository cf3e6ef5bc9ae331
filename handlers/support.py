"""Support listeners: queue-channel messages, /support, the shortcut, ticket buttons and forms."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from slack_bolt import Ack, App
from sqlalchemy.exc import IntegrityError

from bot import outbox
from bot.errors import InvalidInput, OpsbotError
from bot.mrkdwn import escape, from_event, split_lines, to_plain
from bot.runtime import Runtime
from bot.support import blocks, forms, intake, lifecycle, reporting, service
from bot.support.intake import CriticalGateNotMet, Request
from handlers.acks import after_ack
from handlers.responses import ephemeral, friendly_errors, tell_user

log = logging.getLogger(__name__)

MANIFEST: dict[str, Any] = {
    "commands": [
        {
            "command": "/support",
            "description": "Open a support request, or see the support report",
            "usage_hint": "[help | report [queue] [weeks]]",
        }
    ],
    "shortcuts": [
        {
            "name": "Create support request",
            "type": "message",
            "callback_id": "create_support_request",
            "description": "Turn this message into a support ticket",
        }
    ],
    "scopes": ["channels:history", "groups:history", "reactions:read", "chat:write"],
    "events": ["message.channels", "message.groups", "reaction_added"],
}

# Message subtypes that are a person saying something new; edits, deletions, joins are not.
_HUMAN_SUBTYPES = {None, "thread_broadcast", "file_share"}
MAX_REPORT_WEEKS = 26


def register(app: App, runtime: Runtime) -> None:
    org = runtime.org

    def in_support_channel(event: dict[str, Any]) -> bool:
        channel = event.get("channel")
        return service.queue_for_channel(org, channel) is not None or service.is_experts_channel(
            org, channel
        )

    @app.event("message", matchers=[in_support_channel])
    def on_message(event: dict[str, Any]) -> None:
        if event.get("bot_id") or event.get("subtype") not in _HUMAN_SUBTYPES:
            return
        user, channel, ts = event.get("user"), event["channel"], event.get("ts")
        if not user or not ts:
            return
        thread_ts = event.get("thread_ts")
        text = from_event(event.get("text") or "")  # Slack's own mrkdwn: not escaped again
        try:
            with runtime.db.session() as session:
                if thread_ts and thread_ts != ts:
                    lifecycle.thread_reply(runtime, session, channel, thread_ts, user)
                elif service.is_experts_channel(org, channel):
                    intake.experts_post(runtime, session, channel, user, text, ts)
                else:
                    queue = service.queue_for_channel(org, channel)
                    assert queue is not None
                    intake.open_ticket(
                        runtime,
                        session,
                        Request(
                            queue_id=queue.id,
                            requester=user,
                            summary=text or "(no text)",
                            details=text,
                            intake="message",
                            source_channel=channel,
                            source_ts=ts,
                        ),
                    )
        except IntegrityError:
            log.info("message %s/%s already became a ticket", channel, ts)

    def is_resolve_reaction(event: dict[str, Any]) -> bool:
        item = event.get("item") or {}
        return event.get("reaction") == "white_check_mark" and in_support_channel(item)

    @app.event("reaction_added", matchers=[is_resolve_reaction])
    def on_reaction(event: dict[str, Any]) -> None:
        item = event["item"]
        with runtime.db.session() as session:
            lifecycle.resolve_by_reaction(
                runtime, session, item["channel"], item["ts"], event["user"]
            )

    @app.command("/support")
    @friendly_errors
    def on_command(
        ack: Ack, body: dict[str, Any], command: dict[str, Any], respond: Any, client: Any
    ) -> None:
        words = (command.get("text") or "").split()
        if words and words[0].lower() == "help":
            ack(text=_help(runtime), response_type="ephemeral")
            return
        if words and words[0].lower() == "report":
            ack()
            _report(runtime, respond, command.get("channel_id"), words[1:])
            return
        if words:
            ack(
                text=f"I don't know `/support {escape(words[0])}`.\n\n{_help(runtime)}",
                response_type="ephemeral",
            )
            return
        ack()
        queue = service.queue_for_channel(org, command.get("channel_id"))
        queue_id = queue.id if queue else service.default_queue(org).id
        client.views_open(
            trigger_id=command["trigger_id"],
            view=forms.request_modal(
                org, queue_id=queue_id, metadata={"queue": queue_id, "intake": "command"}
            ),
        )

    @app.shortcut("create_support_request")
    @friendly_errors
    def on_shortcut(
        ack: Ack, body: dict[str, Any], shortcut: dict[str, Any], respond: Any, client: Any
    ) -> None:
        ack()
        message = shortcut.get("message") or {}
        channel = (shortcut.get("channel") or {}).get("id")
        ts = message.get("ts") or shortcut.get("message_ts")
        with runtime.db.session() as session:
            found = intake.existing_ticket(session, channel, ts)
        if found is not None:
            ephemeral(respond, f"That message is already support ticket #{found.id}.")
            return
        author = message.get("user")
        requester = author if author and not message.get("bot_id") else shortcut["user"]["id"]
        text = from_event(message.get("text") or "")
        # The message rides along in the view's metadata (3,000 characters in all): whole lines,
        # and a pointer to the original for the rest.
        parts = split_lines(text, 2000)
        details = (parts[0] if parts else "") + (
            "\n_(continues in the original message)_" if len(parts) > 1 else ""
        )
        queue = service.queue_for_channel(org, channel) or service.queue_for_text(org, text)
        client.views_open(
            trigger_id=shortcut["trigger_id"],
            view=forms.request_modal(
                org,
                queue_id=queue.id,
                summary=to_plain(intake.summary_of(text)),
                metadata={
                    "queue": queue.id,
                    "intake": "shortcut",
                    "requester": requester,
                    "source_channel": channel,
                    "source_ts": ts,
                    "details": details,
                },
            ),
        )

    @app.view("support.request")
    def on_request_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        meta = json.loads(view.get("private_metadata") or "{}")
        values = _values(view)
        user = body["user"]["id"]
        request = Request(
            queue_id=values.get("queue") or meta.get("queue") or service.default_queue(org).id,
            requester=meta.get("requester") or user,
            # Typed into the form: raw text, escaped once here (the message's text is mrkdwn).
            summary=escape(values.get("summary") or ""),
            details="\n\n".join(
                part for part in (escape(values.get("details") or ""), meta.get("details")) if part
            ),
            intake=meta.get("intake", "command"),
            category=values.get("category"),
            severity=values.get("severity") or "normal",
            application_id=values.get("application"),
            business_impact=values.get("impact"),
            why_now=values.get("why_now"),
            source_channel=meta.get("source_channel"),
            source_ts=meta.get("source_ts"),
        )
        if request.severity == "critical":
            problems = intake.critical_problems(request.business_impact, request.why_now)
            if problems:
                ack(response_action="errors", errors=problems)
                return
        if not request.summary.strip():
            ack(response_action="errors", errors={"summary": "Say in a line what you need."})
            return
        try:
            with runtime.db.session() as session:
                opened = intake.open_ticket(runtime, session, request)
                if opened.created and user != opened.ticket.requester:
                    outbox.post(
                        session,
                        f"support:ticket:{opened.ticket.id}:filed-for",
                        opened.ticket.requester,
                        _filed_text(opened.ticket, user),
                        runtime.clock.now(),
                    )
        except (InvalidInput, CriticalGateNotMet) as exc:
            ack(response_action="errors", errors={"summary": str(exc)[:150]})
            return
        ack()
        ticket = opened.ticket
        verb = "opened" if opened.created else "already exists as"
        tell_user(
            runtime.slack,
            None,
            user,
            f"Support ticket #{ticket.id} {verb} in `{escape(ticket.queue_id)}` "
            f"(<#{ticket.thread_channel}>): {blocks.shown(ticket.summary)}",
        )

    def ticket_action(name: str, fn: Any, action_id: Any = None, at_once: Any = None) -> None:
        """A ticket button; its work runs after the ack unless `at_once` (a form to open)."""

        @after_ack(app.action(action_id or f"support.{name}"), at_once=at_once)
        @friendly_errors
        def listener(
            ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Any, client: Any
        ) -> None:
            ack()
            value = action.get("value") or (action.get("selected_option") or {}).get("value", "")
            with runtime.db.session() as session:
                ticket = service.get_ticket(session, service.parse_ticket_id(value))
                fn(session, ticket, body["user"]["id"], value, body, client, respond)

        listener.__name__ = f"on_support_{name}"

    ticket_action("claim", lambda s, t, u, *_: lifecycle.claim(runtime, s, t, u))
    ticket_action("wait", lambda s, t, u, *_: lifecycle.wait_on_requester(runtime, s, t, u))
    ticket_action(
        "escalate",
        lambda s, t, u, *_: lifecycle.escalate(runtime, s, t, u, "asked for by a responder"),
    )
    ticket_action("resolve", lambda s, t, u, *_: lifecycle.resolve(runtime, s, t, u))
    ticket_action(
        "solved",
        lambda s, t, u, v, *_: lifecycle.solved_by_runbook(runtime, s, t, u, v.split(":", 1)[1]),
    )
    ticket_action(
        "merge",
        lambda s, t, u, v, *_: lifecycle.merge(
            runtime, s, t, service.parse_ticket_id(v.split(":", 1)[1]), u
        ),
    )
    ticket_action(
        "category",
        lambda s, t, u, v, *_: lifecycle.set_category(runtime, s, t, v.split(":", 1)[1], u),
    )

    def change_severity(
        session: Any, ticket: Any, user: str, value: str, body: Any, client: Any, respond: Any
    ) -> None:
        severity = value.split(":", 1)[1]
        if severity == "critical" and ticket.severity != "critical":
            # The critical gate asks two questions first; the form's answer sets the severity.
            client.views_open(trigger_id=body["trigger_id"], view=forms.critical_modal(ticket))
            return
        lifecycle.set_severity(runtime, session, ticket, severity, user)

    def opens_critical_gate(body: dict[str, Any]) -> bool:
        action = (body.get("actions") or [{}])[0]
        value = action.get("value") or (action.get("selected_option") or {}).get("value", "")
        return value.endswith(":critical")

    ticket_action("severity", change_severity, at_once=opens_critical_gate)

    def rate(
        session: Any, ticket: Any, user: str, value: str, body: Any, client: Any, respond: Any
    ) -> None:
        lifecycle.rate(runtime, session, ticket, user, int(value.split(":", 1)[1]))
        respond(
            replace_original=True,
            text=f"You rated ticket #{ticket.id} {ticket.rating}/5.",
            blocks=forms.rated_blocks(ticket),
        )
        client.views_open(trigger_id=body["trigger_id"], view=forms.rating_comment_modal(ticket))

    # One button per score; a block may not repeat an action id.
    ticket_action("rate", rate, re.compile(r"^support\.rate\.[1-5]$"), at_once=lambda _: True)

    @app.view("support.critical")
    def on_critical_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = _values(view)
        problems = intake.critical_problems(values.get("impact"), values.get("why_now"))
        if problems:
            ack(response_action="errors", errors=problems)
            return
        ack()
        ticket_id = json.loads(view.get("private_metadata") or "{}").get("ticket")
        user = body["user"]["id"]
        try:
            with runtime.db.session() as session:
                ticket = service.get_ticket(session, int(ticket_id))
                lifecycle.set_severity(
                    runtime,
                    session,
                    ticket,
                    "critical",
                    user,
                    business_impact=values.get("impact"),
                    why_now=values.get("why_now"),
                )
        except OpsbotError as exc:
            tell_user(runtime.slack, None, user, f":warning: {escape(str(exc))}")

    @app.view("support.rating_comment")
    def on_rating_comment(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        ack()
        ticket_id = json.loads(view.get("private_metadata") or "{}").get("ticket")
        with runtime.db.session() as session:
            ticket = service.get_ticket(session, int(ticket_id))
            lifecycle.comment_on_rating(
                runtime, session, ticket, body["user"]["id"], _values(view).get("comment") or ""
            )


def home_section(runtime: Runtime, user_id: str) -> list[dict[str, Any]]:
    with runtime.db.session() as session:
        assigned = service.tickets_assigned_to(session, user_id)
        asked = service.tickets_asked_by(session, user_id, runtime.clock.now())
    zone = runtime.org.zone(assigned[0].team_id if assigned else None)
    return blocks.home_section(assigned, asked, zone)


def _help(runtime: Runtime) -> str:
    channels = (
        ", ".join(f"<#{c}>" for q in runtime.org.support.queues for c in q.channels)
        or "a support channel"
    )
    return blocks.HELP.format(channels=channels)


def _report(runtime: Runtime, respond: Any, channel: str | None, args: list[str]) -> None:
    org = runtime.org
    queue = service.queue_for_channel(org, channel) or service.default_queue(org)
    weeks = 1
    for arg in args:
        if arg.isdigit():
            weeks = int(arg)
            if not 1 <= weeks <= MAX_REPORT_WEEKS:
                raise InvalidInput(f"Weeks must be from 1 to {MAX_REPORT_WEEKS}.")
        else:
            queue = org.queue(arg)
    now = runtime.clock.now()
    start, end = reporting.current_window(now, weeks)
    with runtime.db.session() as session:
        found = reporting.report(runtime, session, queue.id, start, end)
    zone = org.zone(queue.team)
    ephemeral(respond, blocks.report_text(found, zone), blocks.report_blocks(found, zone))


def _values(view: dict[str, Any]) -> dict[str, str | None]:
    """block_id -> the submitted value (text input or the selected option)."""
    out: dict[str, str | None] = {}
    for block_id, actions in ((view.get("state") or {}).get("values") or {}).items():
        for state in actions.values():
            if state.get("selected_option"):
                out[block_id] = state["selected_option"].get("value")
            else:
                value = state.get("value")
                out[block_id] = value.strip() if isinstance(value, str) else value
    return out


def _filed_text(ticket: Any, by: str) -> str:
    return (
        f"<@{by}> turned your message into support ticket #{ticket.id} in "
        f"`{escape(ticket.queue_id)}` (<#{ticket.thread_channel}>): {blocks.shown(ticket.summary)}"
    )
