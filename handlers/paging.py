"""/page, the page buttons (Acknowledge, Escalate, Resolve, Classify, Read the runbook) and their
modals. Thin: parse, ack, call bot.paging (service, lifecycle), render."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import App
from slack_sdk.errors import SlackApiError

from bot import mrkdwn
from bot.errors import OpsbotError
from bot.paging import lifecycle, service, targets
from bot.paging.access import require_responder
from bot.paging.blocks import person, when
from bot.paging.models import CLASSIFICATIONS
from bot.runbooks import runbook_index
from bot.runtime import Runtime
from handlers.acks import after_ack
from handlers.responses import ephemeral, friendly_errors, tell_user

log = logging.getLogger(__name__)

MANIFEST: dict[str, Any] = {
    "commands": [
        {
            "command": "/page",
            "description": "Page the person on call for a rotation or team",
            "usage_hint": "<rotation|team> <what is wrong>  ·  help",
        }
    ],
    "scopes": ["chat:write", "im:write", "commands"],
    "events": [],
}

HELP = (
    "*Paging*\n"
    "• `/page <rotation|team> <what is wrong>`: page whoever is on call. A form asks for the "
    "business impact and why paging a person helps, since a page wakes someone up.\n"
    "• `/page help`: this text.\n"
    "A page is a DM to the person on call and a post in the team channel, with *Acknowledge*, "
    "*Escalate* and *Resolve*. Nobody acknowledging in time escalates along the policy. "
    "On resolve you classify the page (business-impacting, false alarm, noise during our own "
    "deploy) so `/oncall load` measures what matters.\n"
    "Alerts arrive at `POST /alerts/alertmanager`, `/alerts/grafana` and `/alerts/generic`."
)

RESOLVE_CALLBACK, CLASSIFY_CALLBACK, REQUEST_CALLBACK = (
    "page.resolve",
    "page.classify",
    "page.request",
)


# ---- views ---------------------------------------------------------------------------------


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def _text_input(
    block_id: str,
    label: str,
    *,
    placeholder: str,
    multiline: bool = False,
    initial: str | None = None,
    optional: bool = False,
    max_length: int = 3000,
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": "value",
        "multiline": multiline,
        "max_length": max_length,
        "placeholder": _plain(placeholder),
    }
    if initial:
        element["initial_value"] = initial[:max_length]
    return {
        "type": "input",
        "block_id": block_id,
        "label": _plain(label),
        "element": element,
        "optional": optional,
    }


def reached_text(reached: targets.StepTarget) -> str:
    if reached.webhook:
        return f"the `{mrkdwn.escape(reached.webhook)}` webhook"
    return person(reached.user)


def request_view(
    target: targets.PageTarget, summary: str, preview: targets.Preview, channel: str
) -> dict:
    problems = "; ".join(mrkdwn.escape(p) for p in preview.problems)
    if preview.first is not None and not preview.problems:
        reaches = f"It reaches {reached_text(preview.first)} first."
    elif preview.first is not None:
        reaches = f"It reaches {reached_text(preview.first)} first ({problems})."
    else:
        reaches = (
            f":warning: *Right now this page reaches nobody* ({problems}). It will still be "
            "posted in the team channel, but call someone from the team directly."
        )
    return {
        "type": "modal",
        "callback_id": REQUEST_CALLBACK,
        "private_metadata": json.dumps(
            {"policy": target.policy_id, "team": target.team_id, "channel": channel}
        ),
        "title": _plain("Page on-call"),
        "submit": _plain("Page now"),
        "close": _plain("Cancel"),
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"Paging *{mrkdwn.escape(target.label)}*. {reaches}\n"
                    "A page wakes a person up: say what the business is losing and why a "
                    "person from this team can help.",
                },
            },
            _text_input(
                "summary",
                "What is wrong",
                placeholder="Checkout returns 502s for every customer",
                initial=summary,
                max_length=service.SUMMARY_LIMIT,
            ),
            _text_input(
                "impact",
                "Business impact",
                placeholder="Who is affected, how badly, since when",
                multiline=True,
            ),
            _text_input(
                "why",
                "Why paging helps",
                placeholder="What the on-call person can do that cannot wait for business hours",
                multiline=True,
            ),
        ],
    }


def classify_view(page_id: int, summary: str, resolving: bool) -> dict[str, Any]:
    options = [{"text": _plain(label), "value": value} for value, label in CLASSIFICATIONS.items()]
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*Page #{page_id}*: {mrkdwn.escape(summary)}"},
        },
        {
            "type": "input",
            "block_id": "classification",
            "label": _plain("What was it?"),
            "element": {"type": "radio_buttons", "action_id": "value", "options": options},
        },
    ]
    if resolving:
        blocks.append(
            _text_input(
                "note",
                "Note for the timeline",
                placeholder="Rolled back the ingress config; postmortem to follow",
                multiline=True,
                optional=True,
                max_length=400,
            )
        )
    return {
        "type": "modal",
        "callback_id": RESOLVE_CALLBACK if resolving else CLASSIFY_CALLBACK,
        "private_metadata": str(page_id),
        "title": _plain(f"{'Resolve' if resolving else 'Classify'} page #{page_id}"[:24]),
        "submit": _plain("Resolve" if resolving else "Save"),
        "close": _plain("Cancel"),
        "blocks": blocks,
    }


def runbook_view(title: str, body: str) -> dict[str, Any]:
    chunks = [body[i : i + 2900] for i in range(0, min(len(body), 2900 * 20), 2900)] or [""]
    return {
        "type": "modal",
        "title": _plain("Runbook"),
        "close": _plain("Close"),
        "blocks": [
            {"type": "header", "text": _plain(title[:150])},
            *(
                {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn.escape(c) or " "}}
                for c in chunks
            ),
        ],
    }


def conflict_text(exc: Any) -> str:
    """The core's refusal, plus who got there first (a mention the core cannot write)."""
    by = f" (by {person(exc.by)})" if exc.by else ""
    return f":information_source: {exc.mrkdwn}{by}"


def _value(view: dict[str, Any], block_id: str) -> str:
    state = view.get("state", {}).get("values", {}).get(block_id, {}).get("value", {})
    if state.get("selected_option"):
        return state["selected_option"].get("value", "")
    return (state.get("value") or "").strip()


def _open(client: Any, trigger_id: str, view: dict[str, Any]) -> None:
    try:
        client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:
        log.warning("could not open a modal: %s", exc.response.get("error"))


# ---- listeners -----------------------------------------------------------------------------


def register(app: App, runtime: Runtime) -> None:
    @app.command("/page")
    @friendly_errors
    def page_command(ack: Any, body: dict[str, Any], respond: Any, client: Any) -> None:
        ack()
        text = (body.get("text") or "").strip()
        if not text or text.lower() in ("help", "-h", "--help", "?"):
            ephemeral(respond, HELP)
            return
        name, _, summary = text.partition(" ")
        target = targets.page_target(runtime.org, name)
        with runtime.db.session() as session:
            preview = targets.preview(runtime, session, target)
        _open(
            client,
            body["trigger_id"],
            request_view(target, summary.strip(), preview, body.get("channel_id", "")),
        )

    @app.view(REQUEST_CALLBACK)
    def page_request_submitted(
        ack: Any, body: dict[str, Any], view: dict[str, Any], client: Any
    ) -> None:
        errors = {
            block: "Required: a page must say this."
            for block in ("summary", "impact", "why")
            if not _value(view, block)
        }
        if errors:
            ack(response_action="errors", errors=errors)
            return
        ack()
        meta = json.loads(view.get("private_metadata") or "{}")
        user = body["user"]["id"]
        try:
            with runtime.db.session() as session:
                page = service.trigger_page(
                    runtime,
                    session,
                    policy_id=meta["policy"],
                    team_id=meta.get("team"),
                    summary=_value(view, "summary"),
                    requested_by=user,
                    business_impact=_value(view, "impact"),
                    why_page=_value(view, "why"),
                )
                events = service.page_events(session, page.id or 0)
                text = requester_text(runtime, session, page, events)
        except OpsbotError as exc:
            tell_user(client, meta.get("channel"), user, f":warning: {mrkdwn.escape(str(exc))}")
            return
        tell_user(client, meta.get("channel"), user, text)

    def _page_id(body: dict[str, Any]) -> int:
        return int(body["actions"][0]["value"])

    @after_ack(app.action("page.acknowledge"))
    @friendly_errors
    def acknowledge(ack: Any, body: dict[str, Any], respond: Any, client: Any) -> None:
        ack()
        page_id, user = _page_id(body), body["user"]["id"]
        try:
            # Most presses in an incident come after the first: each is refused from reads
            # alone, without a pinged connection and a write transaction opened for nothing.
            runtime.db.read(lambda s: lifecycle.check_acknowledge(runtime, s, page_id, user))
            with runtime.db.session() as session:
                lifecycle.acknowledge(runtime, session, page_id, user)
        except lifecycle.PageConflict as exc:
            ephemeral(respond, conflict_text(exc))

    @after_ack(app.action("page.escalate"))
    @friendly_errors
    def escalate(ack: Any, body: dict[str, Any], respond: Any, client: Any) -> None:
        ack()
        try:
            with runtime.db.session() as session:
                done = lifecycle.escalate(runtime, session, _page_id(body), body["user"]["id"])
        except lifecycle.PageConflict as exc:
            ephemeral(respond, conflict_text(exc))
            return
        if done.reached:
            who = ", ".join(_reached_mention(r) for r in done.reached)
            ephemeral(respond, f":arrow_up: Page #{done.page.id} escalated: {who} notified.")
        else:
            ephemeral(
                respond,
                f":warning: Page #{done.page.id} escalated, but nobody further could be reached "
                "(see its timeline). Call someone from the team directly.",
            )

    @app.action("page.resolve")
    @friendly_errors
    def resolve(ack: Any, body: dict[str, Any], respond: Any, client: Any) -> None:
        ack()
        with runtime.db.session() as session:
            page = service.get_page(session, _page_id(body))
            require_responder(runtime, session, page, body["user"]["id"], "resolve")
        if not page.is_open:
            ephemeral(respond, f":information_source: Page #{page.id} is already resolved.")
            return
        _open(client, body["trigger_id"], classify_view(page.id or 0, page.summary, resolving=True))

    @app.action("page.classify")
    @friendly_errors
    def classify(ack: Any, body: dict[str, Any], respond: Any, client: Any) -> None:
        ack()
        with runtime.db.session() as session:
            page = service.get_page(session, _page_id(body))
            require_responder(runtime, session, page, body["user"]["id"], "classify")
        _open(
            client, body["trigger_id"], classify_view(page.id or 0, page.summary, resolving=False)
        )

    @app.action("page.runbook")
    @friendly_errors
    def read_runbook(ack: Any, body: dict[str, Any], respond: Any, client: Any) -> None:
        ack()
        with runtime.db.session() as session:
            page = service.get_page(session, _page_id(body))
        runbook = runbook_index(runtime).get(page.runbook)
        if runbook is None:
            ephemeral(respond, ":warning: That runbook is no longer in runbooks/.")
            return
        _open(client, body["trigger_id"], runbook_view(runbook.title, runbook.body))

    def _classified(ack: Any, body: dict[str, Any], view: dict[str, Any], resolving: bool) -> None:
        page_id = int(view.get("private_metadata") or 0)
        classification = _value(view, "classification")
        if not classification:
            ack(response_action="errors", errors={"classification": "Choose what the page was."})
            return
        user = body["user"]["id"]
        try:
            with runtime.db.session() as session:
                if resolving:
                    lifecycle.resolve(
                        runtime,
                        session,
                        page_id,
                        user,
                        classification=classification,
                        note=_value(view, "note") or None,
                    )
                else:
                    lifecycle.classify(runtime, session, page_id, user, classification)
        except OpsbotError as exc:
            ack(response_action="errors", errors={"classification": str(exc)[:150]})
            return
        ack()

    @app.view(RESOLVE_CALLBACK)
    def resolve_submitted(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        _classified(ack, body, view, resolving=True)

    @app.view(CLASSIFY_CALLBACK)
    def classify_submitted(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        _classified(ack, body, view, resolving=False)


def _reached_mention(reached: str) -> str:
    kind, _, ref = reached.partition(":")
    return f"the `{mrkdwn.escape(ref)}` webhook" if kind == "webhook" else person(reached)


def requester_text(runtime: Runtime, session: Any, page: Any, events: list[Any]) -> str:
    """What the person who paged is told: who was reached, or that nobody was and what now."""
    reached = [e for e in events if e.kind == "notified"]
    problems = [e.detail for e in events if e.kind in ("skipped", "unreachable") and e.detail]
    channel = _team_channel(runtime, page.team_id)
    where = f" in <#{channel}>" if channel else ""
    if reached:
        who = ", ".join(
            person(e.actor) if e.actor else mrkdwn.escape(e.detail.partition(", ")[2] or e.detail)
            for e in reached
        )
        return (
            f":rotating_light: Page #{page.id} reached {who}. You will see it{where}; each "
            "acknowledgement or escalation updates it there."
        )
    why = "; ".join(mrkdwn.escape(p) for p in problems) or "no step of the policy reached anyone"
    managers = _managers(runtime, session, page.team_id)
    call = (
        f" Call {managers} or someone from the team directly"
        if managers
        else (" Call someone from the team directly")
    )
    return (
        f":warning: *Nobody could be reached* for page #{page.id}: {why}. The page is open"
        f"{where or ' in opsbot'}, but nobody has been notified.{call}, or page another "
        "rotation with `/page`."
    )


def _team_channel(runtime: Runtime, team_id: str | None) -> str | None:
    team = next((t for t in runtime.org.teams if t.id == team_id), None)
    return team.channel if team else None


def _managers(runtime: Runtime, session: Any, team_id: str | None) -> str:
    # The caller's session: a second one would wait on its write lock (SQLite) to cache e-mails.
    team = next((t for t in runtime.org.teams if t.id == team_id), None)
    if team is None or not team.managers:
        return ""
    return " or ".join(person(runtime.directory.user_id(m, session=session)) for m in team.managers)


# ---- App Home ------------------------------------------------------------------------------


def home_section(runtime: Runtime, user_id: str) -> list[dict[str, Any]]:
    """Your open pages: ones that notified you or that you acknowledged."""
    with runtime.db.session() as session:
        pages = service.open_pages_for(session, user_id)
    if not pages:
        return []
    lines = []
    for page in pages[:10]:
        opened = when(page.opened_at, service.page_zone(runtime, page))
        lines.append(f"• *#{page.id}* {mrkdwn.escape(page.summary)} · {page.status} since {opened}")
    return [
        {"type": "header", "text": _plain("Your open pages")},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
    ]
