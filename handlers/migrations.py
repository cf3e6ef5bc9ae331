"""Platform-migration listeners: /migration, the owners' buttons and forms, App Home, and
POST /migrations/{id}/progress for CI."""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any

import anyio
from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError, SlackClientError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.errors import Conflict, InvalidInput, NotAllowed, NotFound, OpsbotError
from bot.mrkdwn import escape
from bot.platform_migrations import blocks, flows, reports
from bot.platform_migrations.loading import (
    MigrationFileError,
    UnknownMigration,
    get_migration,
    parse_migration_data,
    save_spec,
)
from bot.platform_migrations.models import Migration
from bot.platform_migrations.steps import report as report_progress
from bot.runtime import Runtime
from handlers.alerts import _authorized, _error
from handlers.responses import ephemeral, friendly_errors, tell_user

log = logging.getLogger(__name__)

MANIFEST: dict[str, Any] = {
    "commands": [
        {
            "command": "/migration",
            "description": "Platform migrations: status, new, pilot, activate",
            "usage_hint": "[list | status <id> | new | pilot <id> | activate <id> | help]",
        }
    ],
    "scopes": ["chat:write", "files:write", "im:write"],
    "events": [],
}

HELP = (
    "*Platform migrations*\n"
    "• `/migration list`: migrations and their stage\n"
    "• `/migration status <id>`: progress (counts, projected finish, burn-up chart by DM)\n"
    "• `/migration new`: start a migration from a form (or `opsbot migration load FILE`)\n"
    "• `/migration pilot <id>` · `/migration activate <id>`: platform team only\n"
    "Owners answer with the buttons in their notices: Done, In progress, Blocked, Need help, "
    "Request an exemption, Snooze a week."
)


def register(app: App, runtime: Runtime) -> None:
    @app.command("/migration")
    @friendly_errors
    def on_command(ack: Ack, body: dict[str, Any], respond: Any, client: Any) -> None:
        words = (body.get("text") or "").split()
        sub = words[0].lower() if words else "help"
        user = body["user_id"]
        if sub == "help":
            ack(text=HELP, response_type="ephemeral")
            return
        if sub == "new":
            ack()
            _require_platform(runtime, user)
            client.views_open(trigger_id=body["trigger_id"], view=blocks.new_migration_modal())
            return
        ack()
        if sub == "list":
            ephemeral(respond, _list_text(runtime))
        elif sub == "status" and len(words) == 2:
            _status(runtime, respond, client, user, words[1])
        elif sub in ("pilot", "activate") and len(words) == 2:
            _require_platform(runtime, user)
            _change_stage(runtime, respond, user, words[1], "pilot" if sub == "pilot" else "active")
        else:
            ephemeral(respond, f"I don't know `/migration {escape(' '.join(words))}`.\n\n{HELP}")

    @app.view("migration.new")
    def on_new(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        values = _values(view)
        try:
            data = _form_to_data(values)
            spec = parse_migration_data(data, runtime.org)
        except MigrationFileError as exc:
            ack(response_action="errors", errors=_form_errors(exc))
            return
        except InvalidInput as exc:
            ack(response_action="errors", errors={"plan": str(exc)[:150]})
            return
        ack()
        with runtime.db.session() as session:
            saved = save_spec(session, spec, runtime.clock.now(), by=user)
            flows.request_sync(session, saved.migration.id, runtime.clock.now())
        verb = "created" if saved.created else "updated"
        tell_user(
            runtime.slack,
            None,
            user,
            f"Migration `{escape(spec.id)}` {verb} as a draft. Try it with a pilot team first: "
            f"`/migration pilot {escape(spec.id)}`.",
        )

    def item_action(name: str) -> None:
        @app.action(f"migration.{name}")
        @friendly_errors
        def listener(
            ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Any, client: Any
        ) -> None:
            ack()
            user = body["user"]["id"]
            value = action.get("value") or ""
            migration_id, service, step = blocks.parse_item_value(value)
            if name in ("blocked", "help", "exempt"):
                _open_reason_form(runtime, client, body, name, value)
                return
            state = {"done": "done", "progress": "in_progress"}[name]
            with runtime.db.session() as session:
                migration = get_migration(session, migration_id)
                flows.owner_reports(runtime, session, migration, service, step, state, user)
                title = migration.title
            word = "done" if state == "done" else "in progress"
            ephemeral(
                respond,
                f":white_check_mark: Recorded: *{escape(step)}* for *{escape(service)}* is "
                f"{word} ({escape(title)}). Thank you.",
            )

        listener.__name__ = f"on_migration_{name}"

    for name in ("done", "progress", "blocked", "help", "exempt"):
        item_action(name)

    @app.action("migration.snooze")
    @friendly_errors
    def on_snooze(ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        ack()
        with runtime.db.session() as session:
            migration = get_migration(session, action.get("value") or "")
            until = flows.snooze(runtime, session, migration, body["user"]["id"])
        ephemeral(
            respond,
            f"Snoozed: no reminders about *{escape(migration.title)}* until "
            f"{until.date().isoformat()}.",
        )

    @app.view("migration.blocked")
    def on_blocked(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        migration_id, service, step = blocks.parse_item_value(view.get("private_metadata") or "")
        reason = _values(view).get("reason") or ""
        if not reason.strip():
            ack(response_action="errors", errors={"reason": "Say what blocks you."})
            return
        try:
            with runtime.db.session() as session:
                migration = get_migration(session, migration_id)
                ticket = flows.block(runtime, session, migration, service, step, user, reason)
        except OpsbotError as exc:
            ack(response_action="errors", errors={"reason": str(exc)[:150]})
            return
        ack()
        extra = f" Support ticket #{ticket} is open for the platform team." if ticket else ""
        tell_user(
            runtime.slack,
            None,
            user,
            f"Recorded: *{escape(service)}* is blocked at *{escape(step)}*. The platform team "
            f"will work on what blocks you; you will not be reminded meanwhile.{extra}",
        )

    @app.view("migration.help")
    def on_help(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        migration_id, service, step = blocks.parse_item_value(view.get("private_metadata") or "")
        question = _values(view).get("reason") or ""
        try:
            with runtime.db.session() as session:
                migration = get_migration(session, migration_id)
                where = flows.ask_for_help(
                    runtime, session, migration, service, step, user, question
                )
        except OpsbotError as exc:
            ack(response_action="errors", errors={"reason": str(exc)[:150]})
            return
        ack()
        tell_user(runtime.slack, None, user, f"Asked for you in <#{where}>.")

    @app.view("migration.exempt")
    def on_exempt(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        migration_id, service, step = blocks.parse_item_value(view.get("private_metadata") or "")
        values = _values(view)
        try:
            until = date.fromisoformat(values["until"]) if values.get("until") else None
            with runtime.db.session() as session:
                migration = get_migration(session, migration_id)
                where = flows.request_exemption(
                    runtime,
                    session,
                    migration,
                    service,
                    step,
                    user,
                    values.get("reason") or "",
                    until,
                )
        except (OpsbotError, ValueError) as exc:
            ack(response_action="errors", errors={"reason": str(exc)[:150]})
            return
        ack()
        asked = f"<@{where}>" if where.startswith(("U", "W")) else f"<#{where}>"
        tell_user(
            runtime.slack,
            None,
            user,
            f"Your exemption request went to {asked}; you will hear the decision.",
        )

    def decision(approve: bool) -> None:
        @app.action("migration.exempt_approve" if approve else "migration.exempt_decline")
        @friendly_errors
        def listener(ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
            ack()
            try:
                data = json.loads(action.get("value") or "")
                until = date.fromisoformat(data["u"])
            except (ValueError, KeyError, TypeError):
                raise InvalidInput("That button is from an older message.") from None
            with runtime.db.session() as session:
                migration = get_migration(session, data["m"])
                flows.decide_exemption(
                    runtime,
                    session,
                    migration,
                    data["s"],
                    data["t"],
                    data["o"],
                    until,
                    body["user"]["id"],
                    approve,
                )
            verb = "Approved" if approve else "Declined"
            respond(
                replace_original=True,
                text=f"{verb} by <@{body['user']['id']}>: exemption of {escape(data['s'])} "
                f"from {escape(data['t'])} until {until.isoformat()}.",
            )

        listener.__name__ = f"on_migration_exempt_{'approve' if approve else 'decline'}"

    decision(True)
    decision(False)

    @app.action("migration.activate_confirm")
    @friendly_errors
    def on_activate(ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        ack()
        user = body["user"]["id"]
        _require_platform(runtime, user)
        _change_stage(runtime, respond, user, action.get("value") or "", "active", confirmed=True)


# ---- commands -------------------------------------------------------------------------------


def _require_platform(runtime: Runtime, user: str) -> None:
    with runtime.db.session() as session:
        if not flows.is_platform(runtime, session, user):
            raise NotAllowed("Only the platform team can create, pilot or activate migrations.")


def _list_text(runtime: Runtime) -> str:
    with runtime.db.session() as session:
        from sqlmodel import select

        found = list(session.exec(select(Migration).order_by(Migration.deadline)).all())
    if not found:
        return "No migrations yet. `/migration new` or `opsbot migration load FILE` starts one."
    return "\n".join(
        f"• `{escape(m.id)}` {escape(m.title)}: {m.stage.replace('_', ' ')}, deadline "
        f"{m.deadline.isoformat()}"
        for m in found
    )


def _change_stage(
    runtime: Runtime,
    respond: Any,
    user: str,
    migration_id: str,
    stage: str,
    confirmed: bool = False,
) -> None:
    with runtime.db.session() as session:
        migration = get_migration(session, migration_id)
        try:
            accepted = flows.change_stage(
                session,
                runtime.org,
                migration,
                stage,
                runtime.clock.now(),
                confirmed=confirmed,
                by=user,
            )
        except flows.NeedsConfirmation as exc:
            ephemeral(respond, str(exc), blocks.confirm_activation(migration, exc.warnings))
            return
        title = migration.title
    runtime.scheduler.tick()  # the sync timer is due now: announce without waiting
    runtime.outbox.wake()
    note = f" (accepted: {'; '.join(accepted)})" if accepted else ""
    ephemeral(respond, f"*{escape(title)}* is now {stage.replace('_', ' ')}{escape(note)}.")


def _status(runtime: Runtime, respond: Any, client: Any, user: str, migration_id: str) -> None:
    now = runtime.clock.now()
    with runtime.db.session() as session:
        migration = get_migration(session, migration_id)
        found = reports.status(session, migration, now)
        sponsor = migration.sponsor and runtime.directory.user_id(migration.sponsor, session)
        detailed = user == sponsor or flows.is_platform(runtime, session, user)
    text = reports.status_text(found, detailed=detailed)
    ephemeral(respond, f"```{escape(text)}```")
    from bot.platform_migrations.chart import burn_up_png  # matplotlib: loaded when first needed

    png = burn_up_png(found, now)
    try:
        channel = client.conversations_open(users=user)["channel"]["id"]
        client.files_upload_v2(
            channel=channel,
            content=png,
            filename=f"{migration.id}-burn-up.png",
            title=f"{migration.title}: burn-up",
            initial_comment=f"Burn-up of *{escape(migration.title)}*: {escape(found.projection_text())}",
        )
    except (SlackApiError, SlackClientError) as exc:
        log.warning("could not upload the burn-up chart: %s", exc)
        ephemeral(respond, "The burn-up chart could not be uploaded; the counts above stand.")


def _open_reason_form(
    runtime: Runtime, client: Any, body: dict[str, Any], name: str, value: str
) -> None:
    if name == "blocked":
        view = blocks.reason_modal("migration.blocked", "Blocked", "What blocks you?", value)
    elif name == "help":
        view = blocks.reason_modal(
            "migration.help", "Ask for help", "What do you need? (posted to the channel)", value
        )
    else:
        from datetime import timedelta

        until = (runtime.clock.now() + flows.DEFAULT_EXEMPTION - timedelta(days=0)).date()
        view = blocks.reason_modal(
            "migration.exempt",
            "Request exemption",
            "Why should this service be exempt?",
            value,
            [blocks.date_input("until", "Exempt until", until)],
        )
    client.views_open(trigger_id=body["trigger_id"], view=view)


# ---- the form -------------------------------------------------------------------------------


def _values(view: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for block_id, actions in ((view.get("state") or {}).get("values") or {}).items():
        for state in actions.values():
            if "selected_date" in state:
                out[block_id] = state.get("selected_date")
            elif "selected_user" in state:
                out[block_id] = state.get("selected_user")
            elif "selected_conversation" in state:
                out[block_id] = state.get("selected_conversation")
            elif "selected_options" in state:
                out[block_id] = [o.get("value") for o in state.get("selected_options") or []]
            else:
                value = state.get("value")
                out[block_id] = value.strip() if isinstance(value, str) else value
    return out


def _form_to_data(values: dict[str, Any]) -> dict[str, Any]:
    import yaml

    try:
        plan = yaml.safe_load(values.get("plan") or "") or {}
    except yaml.YAMLError as exc:
        raise InvalidInput(f"Targets and steps are not valid YAML: {exc}") from None
    if not isinstance(plan, dict):
        raise InvalidInput("Targets and steps must be a YAML mapping with targets: and steps:.")
    data: dict[str, Any] = {
        "id": (values.get("id") or "").lower(),
        "title": values.get("title") or "",
        "why": values.get("why") or "",
        "deadline": values.get("deadline"),
        "deadline_reason": values.get("deadline_reason"),
        "mandated": "mandated" in (values.get("mandated") or []),
        "sponsor": values.get("sponsor"),
        "channel": values.get("channel"),
        "docs": {"on_ramp": values.get("on_ramp"), "off_ramp": values.get("off_ramp")},
        "pilot_teams": [
            t.strip() for t in (values.get("pilot_teams") or "").split(",") if t.strip()
        ],
        **{k: v for k, v in plan.items() if k in ("targets", "steps")},
    }
    return data


_FORM_FIELDS = {
    "id",
    "title",
    "why",
    "deadline",
    "deadline_reason",
    "sponsor",
    "channel",
    "pilot_teams",
}


def _form_errors(exc: MigrationFileError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for issue in exc.issues:
        head = str(issue.loc[0]) if issue.loc else "plan"
        block = head if head in _FORM_FIELDS else ("on_ramp" if head == "docs" else "plan")
        if head == "mandated":
            block = "mandated"
        message = f"{issue.field}: {issue.message}" if block == "plan" else issue.message
        errors.setdefault(block, message[:150])
    return errors


# ---- App Home -------------------------------------------------------------------------------


def home_section(runtime: Runtime, user_id: str) -> list[dict[str, Any]]:
    from bot.platform_migrations import home

    with runtime.db.session() as session:
        items, others = home.for_person(runtime, session, user_id)
    return blocks.home_section(items, others)


# ---- HTTP: progress from CI -----------------------------------------------------------------


def http_routes(runtime: Runtime) -> list[BaseRoute]:
    async def progress(request: Request) -> Response:
        if not runtime.settings.alert_token:
            return _error(401, "progress is refused: OPSBOT_ALERT_TOKEN is not set on this server")
        if not _authorized(runtime, request.headers.get("authorization")):
            return _error(401, "missing or wrong bearer token (Authorization: Bearer <token>)")
        raw = await request.body()
        try:
            body = json.loads(raw or b"")
        except ValueError:
            return _error(400, 'the body must be JSON: {"service", "step", "state"}')
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object")
        for key in ("service", "step", "state"):
            if not isinstance(body.get(key), str) or not body[key].strip():
                return _error(400, f"'{key}' is required (a string)", field=key)
        migration_id = request.path_params["id"]

        def work() -> dict[str, Any]:
            with runtime.db.session() as session:
                migration = get_migration(session, migration_id)
                step = _step_for(migration, body["step"])
                result = report_progress(
                    session,
                    runtime.org,
                    migration,
                    body["service"],
                    step,
                    body["state"],
                    runtime.clock.now(),
                    source="ci",
                    by=body.get("by") or "ci",
                    reason=body.get("reason"),
                )
                flows.after_progress(runtime, session, migration, result)
                return {
                    "status": "accepted",
                    "service": result.row.service,
                    "step": result.row.step,
                    "state": result.row.state,
                    "released": [f"{r.service}/{r.step}" for r in result.released],
                    "stage": migration.stage,
                }

        try:
            answer = await anyio.to_thread.run_sync(work)
        except UnknownMigration as exc:
            return _error(404, str(exc))
        except NotFound as exc:
            return _error(400, str(exc), field="service" if "target" in str(exc) else "step")
        except (InvalidInput, Conflict) as exc:
            return _error(400, str(exc), field="state")
        runtime.outbox.wake()
        return JSONResponse(answer, status_code=200)

    return [Route("/migrations/{id}/progress", progress, methods=["POST"])]


def _step_for(migration: Migration, name: str) -> str:
    """A step by its id, or by the CI check its `done_when` names."""
    from bot.platform_migrations.loading import steps_of

    for step in steps_of(migration):
        if step.id == name or (step.done_when and step.done_when.check == name):
            return step.id
    raise NotFound(f"Migration '{migration.id}' has no step or check '{name}'.")
