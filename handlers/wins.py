"""Wins and Challenges listeners: /wins, the reminder and card buttons, the STAR form, the
selection forms, and the App Home section."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from slack_bolt import Ack, App

from bot.errors import InvalidInput, NotAllowed, OpsbotError
from bot.mrkdwn import escape
from bot.runtime import Runtime
from bot.wins import blocks, checks, entries, flows, news, reading, selection, tree
from bot.wins.cycles import quarter_of
from bot.wins.digests import (
    candidates,
    cycle_text,
    messages_of,
)
from handlers.responses import ephemeral, friendly_errors, tell_user

MANIFEST: dict[str, Any] = {
    "commands": [
        {
            "command": "/wins",
            "description": "Write your team's Wins and Challenges, choose highlights, read digests",
            "usage_hint": "[help | news | none | delegate @someone | select | view [team] | archive [team] [2026Q4]]",
        }
    ],
    "scopes": ["chat:write", "im:write"],
    "events": [],
}

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def register(app: App, runtime: Runtime) -> None:
    org = runtime.org

    @app.command("/wins")
    @friendly_errors
    def on_command(
        ack: Ack, body: dict[str, Any], command: dict[str, Any], respond: Any, client: Any
    ) -> None:
        words = (command.get("text") or "").split()
        verb = words[0].lower() if words else ""
        user = command["user_id"]
        if verb == "help":
            ack(text=_help(runtime), response_type="ephemeral")
            return
        if org.wins is None:
            ack(
                text="Wins and Challenges is not set up here (no `wins:` in the org config).",
                response_type="ephemeral",
            )
            return
        if verb in ("", "news"):
            ack()
            _open_form(client, command["trigger_id"], user, None, None, with_news=verb == "news")
        elif verb in ("none", "no-update"):
            ack()
            _no_update(respond, user, words[1:])
        elif verb == "delegate":
            ack()
            _delegate(respond, user, command.get("text") or "", words[2:] if len(words) > 2 else [])
        elif verb == "select":
            ack()
            _open_selection(client, command["trigger_id"], user, None)
        elif verb == "view":
            ack()
            _view(respond, user, words[1] if len(words) > 1 else None)
        elif verb == "archive":
            ack()
            _archive(respond, words[1:])
        else:
            ack(
                text=f"I don't know `/wins {escape(words[0])}`.\n\n{_help(runtime)}",
                response_type="ephemeral",
            )

    # ---- the form -------------------------------------------------------------------------

    def _open_form(
        client: Any,
        trigger_id: str,
        user: str,
        cycle_id: int | None,
        team_id: str | None,
        *,
        with_news: bool,
    ) -> None:
        with runtime.db.session() as session:
            if cycle_id is not None:
                cycle = entries.get_cycle(session, cycle_id)
            elif team_id is not None:
                cycle = entries.target_cycle(session, runtime, team_id)
            else:
                cycle = entries.current_cycle(session, runtime)
                teams = entries.teams_for(session, runtime, user, cycle)
                if teams:
                    cycle = entries.target_cycle(session, runtime, teams[0].id)
            teams = entries.teams_for(session, runtime, user, cycle)
            if team_id is not None:
                teams = [t for t in teams if t.id == team_id]
            if not teams:
                chooses = [
                    t.name
                    for t in org.teams
                    if tree.selects(org, t) and entries.is_manager(session, runtime, user, t)
                ]
                if chooses:
                    raise InvalidInput(
                        f"You choose highlights for {chooses[0]} rather than write an "
                        "update: I will ask you when the teams below are done (`/wins select`)."
                    )
                raise NotAllowed(
                    "You are not the manager or a member of a team that writes Wins and Challenges."
                )
            proposing = not entries.can_write(session, runtime, user, cycle, teams[0].id)
            figures = news.gather(
                session,
                org,
                runtime.extras.get(news.PROVIDERS_KEY, []),
                teams[0].id,
                cycle.starts_at,
                min(cycle.deadline, runtime.clock.now() + timedelta(seconds=1)),
            )
            line = news.news_line(figures)
            prefill = None
            if with_news:
                if line is None:
                    raise InvalidInput(
                        "There is no operations news for your team this cycle (no paging or support figures)."
                    )
                weeks = (cycle.deadline - cycle.starts_at).total_seconds() / 604800
                prefill = news.news_draft(figures, weeks)
            view = blocks.entry_modal(
                org,
                [t.id for t in teams],
                {"cycle": cycle.id, "teams": [t.id for t in teams]},
                prefill=prefill,
                news=line,
                proposing=proposing,
            )
        client.views_open(trigger_id=trigger_id, view=view)

    def _form_target(action: dict[str, Any]) -> tuple[int, str]:
        cycle_id, _, team_id = (action.get("value") or "").partition(":")
        if not cycle_id.isdigit() or not team_id:
            raise InvalidInput("That button is out of date; use `/wins`.")
        return int(cycle_id), team_id

    @app.action("wins.open")
    @friendly_errors
    def on_open(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Any, client: Any
    ) -> None:
        ack()
        cycle_id, team_id = _form_target(action)
        _open_form(
            client, body["trigger_id"], body["user"]["id"], cycle_id, team_id, with_news=False
        )

    @app.action("wins.open_news")
    @friendly_errors
    def on_open_news(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Any, client: Any
    ) -> None:
        ack()
        cycle_id, team_id = _form_target(action)
        _open_form(
            client, body["trigger_id"], body["user"]["id"], cycle_id, team_id, with_news=True
        )

    @app.action("wins.no_update")
    @friendly_errors
    def on_no_update(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Any, client: Any
    ) -> None:
        ack()
        cycle_id, team_id = _form_target(action)
        with runtime.db.session() as session:
            cycle = entries.get_cycle(session, cycle_id)
            first = entries.no_update(session, runtime, body["user"]["id"], cycle, team_id)
            flows.refresh_after_submission(session, runtime, cycle, team_id)
        name = escape(org.team(team_id).name)
        text = (
            f"Noted: no update from *{name}* this cycle. Thanks for saying so."
            if first
            else f"*{name}* has already submitted this cycle; nothing changed."
        )
        respond(replace_original=True, text=text)

    @app.view("wins.entry")
    def on_entry_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        meta = json.loads(view.get("private_metadata") or "{}")
        values = _values(view)
        user = body["user"]["id"]
        team_id = values.get("team") or (meta.get("teams") or [None])[0]
        with runtime.db.session() as session:
            entry = entries.get_entry(session, int(meta["entry"])) if meta.get("entry") else None
            cycle_id = entry.cycle_id if entry is not None else meta.get("cycle")
            cycle = entries.get_cycle(session, int(cycle_id))
            if team_id is None:
                team_id = entry.team_id if entry is not None else None
            if team_id is None:
                teams = entries.teams_for(session, runtime, user, cycle)
                team_id = teams[0].id if teams else ""
        draft = checks.Draft(
            team_id=team_id or "",
            kind=values.get("kind") or "",
            summary=values.get("summary") or "",
            situation=values.get("situation") or "",
            action=values.get("action") or "",
            result=values.get("result") or "",
            visibility=values.get("visibility") or "internal",
            names_team=values.get("names_team") or None,
            raised_with_leadership="raised" in (values.get("raised") or []),
        )
        present = {b.get("block_id") for b in view.get("blocks", [])}
        problems = checks.problems(draft)
        if problems:
            ack(response_action="errors", errors=_on_blocks(problems, present))
            return
        gentle = checks.warnings(draft)
        keep = "keep" in (values.get("keep") or [])
        if gentle and not keep:
            errors = _on_blocks(gentle, present)
            errors["keep"] = "Change what is flagged, or tick “Keep it as written” and save again."
            ack(response_action="errors", errors=errors)
            return
        try:
            with runtime.db.session() as session:
                saved = entries.save_entry(
                    session,
                    runtime,
                    user,
                    cycle,
                    draft,
                    entry_id=entry.id if entry is not None else None,
                    kept_warnings=list(gentle.values()),
                )
                if gentle:
                    saved.kept_warnings_note = "Kept as written despite: " + " ".join(
                        gentle.values()
                    )
                flows.after_save(session, runtime, user, saved)
        except OpsbotError as exc:
            ack(response_action="errors", errors={"summary": str(exc)[:150]})
            return
        ack()

    # ---- entry cards ----------------------------------------------------------------------

    def _entry_id(action: dict[str, Any]) -> int:
        value = action.get("value") or ""
        if not value.isdigit():
            raise InvalidInput("That button is out of date.")
        return int(value)

    @app.action("wins.edit")
    @friendly_errors
    def on_edit(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Any, client: Any
    ) -> None:
        ack()
        user = body["user"]["id"]
        with runtime.db.session() as session:
            entry = entries.get_entry(session, _entry_id(action))
            entries.require_can_change(session, runtime, user, entry)
            view = blocks.entry_modal(
                org,
                [entry.team_id],
                {"entry": entry.id, "teams": [entry.team_id]},
                entry=entry,
                proposing=entry.status == "proposed",
            )
        client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.action("wins.delete")
    @friendly_errors
    def on_delete(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Any, client: Any
    ) -> None:
        ack()
        with runtime.db.session() as session:
            entry = entries.delete_entry(session, runtime, body["user"]["id"], _entry_id(action))
            flows.after_change(session, runtime, entry)
        respond(replace_original=True, text=f"Deleted the entry “{escape(entry.summary)}”.")

    def _decide(body: dict[str, Any], action: dict[str, Any], respond: Any, accept: bool) -> None:
        with runtime.db.session() as session:
            entry, _ = entries.decide_proposal(
                session, runtime, body["user"]["id"], _entry_id(action), accept
            )
            flows.after_decision(session, runtime, entry, body["user"]["id"])
        verb = "Included in the team's update" if accept else "Left out"
        respond(
            replace_original=True, text=f"{verb}: “{escape(entry.summary)}” by <@{entry.author}>."
        )

    @app.action("wins.accept")
    @friendly_errors
    def on_accept(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Any, client: Any
    ) -> None:
        ack()
        _decide(body, action, respond, True)

    @app.action("wins.decline")
    @friendly_errors
    def on_decline(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Any, client: Any
    ) -> None:
        ack()
        _decide(body, action, respond, False)

    # ---- selection ------------------------------------------------------------------------

    def _open_selection(
        client: Any, trigger_id: str, user: str, target: tuple[int, str] | None
    ) -> None:
        with runtime.db.session() as session:
            if target is None:
                waiting = selection.waiting_for(session, runtime, user, runtime.clock.now())
                if not waiting:
                    raise InvalidInput("No highlights are waiting for your choice right now.")
                chosen, cycle = waiting[0]
                target = (cycle.id or 0, chosen.team_id)
            cycle = entries.get_cycle(session, target[0])
            selection.require_chooser(session, runtime, user, cycle, target[1])
            items = candidates(session, runtime, target[0], target[1])
            view = blocks.select_modal(
                org, cycle, target[1], items, {"cycle": target[0], "team": target[1]}
            )
        client.views_open(trigger_id=trigger_id, view=view)

    @app.action("wins.select")
    @friendly_errors
    def on_select(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Any, client: Any
    ) -> None:
        ack()
        _open_selection(client, body["trigger_id"], body["user"]["id"], _form_target(action))

    @app.view("wins.select")
    def on_picked(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        meta = json.loads(view.get("private_metadata") or "{}")
        picked: list[int] = []
        for block_id, value in _values(view).items():
            if block_id.startswith("pick_") and isinstance(value, list):
                picked += [int(v) for v in value if v.isdigit()]
        if len(picked) > selection.MAX_PICKS:
            first = next(
                (
                    b["block_id"]
                    for b in view.get("blocks", [])
                    if str(b.get("block_id", "")).startswith("pick_")
                ),
                "",
            )
            ack(
                response_action="errors",
                errors={first: f"Pick at most {selection.MAX_PICKS}: the point is to choose."},
            )
            return
        with runtime.db.session() as session:
            items = {
                i.entry_id: i
                for i in candidates(session, runtime, int(meta["cycle"]), meta["team"])
            }
        chosen = [items[p] for p in picked if p in items]
        ack(
            response_action="update",
            view=blocks.rewrite_modal(chosen, {**meta, "picks": [i.entry_id for i in chosen]}),
        )

    @app.view("wins.rewrite")
    def on_rewritten(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        meta = json.loads(view.get("private_metadata") or "{}")
        values = _values(view)
        picks = [
            selection.Pick(
                entry_id=n,
                summary=values.get(f"summary_{n}") or "",
                situation=values.get(f"situation_{n}") or "",
                action=values.get(f"action_{n}") or "",
                result=values.get(f"result_{n}") or "",
            )
            for n in meta.get("picks", [])
        ]
        empty = {
            f"summary_{p.entry_id}": "A highlight needs a summary."
            for p in picks
            if not p.summary.strip()
        }
        if empty:
            ack(response_action="errors", errors=empty)
            return
        user = body["user"]["id"]
        try:
            with runtime.db.session() as session:
                selection.choose(session, runtime, user, int(meta["cycle"]), meta["team"], picks)
        except OpsbotError as exc:
            ack()
            tell_user(runtime.slack, None, user, f":warning: {escape(str(exc))}")
            return
        ack()
        team = org.team(meta["team"])
        above = f"to *{escape(org.team(team.parent).name)}*" if team.parent else "to stakeholders"
        tell_user(
            runtime.slack,
            None,
            user,
            f"Passed {len(picks)} highlights of *{escape(team.name)}* up {above}. Thank you.",
        )

    # ---- reading --------------------------------------------------------------------------

    def _no_update(respond: Any, user: str, args: list[str]) -> None:
        with runtime.db.session() as session:
            cycle = entries.current_cycle(session, runtime)
            teams = entries.teams_for(session, runtime, user, cycle)
            teams = [t for t in teams if entries.can_write(session, runtime, user, cycle, t.id)]
            if args:
                teams = [t for t in teams if t.id == args[0]]
            if not teams:
                raise NotAllowed(
                    "Only a team's line manager (or this cycle's delegate) submits “no update”."
                )
            done = []
            for team in teams:
                target = entries.target_cycle(session, runtime, team.id)
                if entries.no_update(session, runtime, user, target, team.id):
                    flows.refresh_after_submission(session, runtime, target, team.id)
                    done.append(team.name)
        if done:
            ephemeral(
                respond,
                f"Noted: no update from {', '.join(f'*{escape(n)}*' for n in done)} this cycle.",
            )
        else:
            ephemeral(respond, "Your team has already submitted this cycle; nothing changed.")

    def _delegate(respond: Any, user: str, text: str, rest: list[str]) -> None:
        match = _MENTION.search(text)
        if match is None:
            raise InvalidInput("Say who stands in for you: `/wins delegate @someone`.")
        to = match.group(1)
        with runtime.db.session() as session:
            delegated = entries.delegate(session, runtime, user, to, rest[0] if rest else None)
            flows.announce_delegation(session, runtime, delegated, user, to)
        lines = [
            f"<@{to}> writes and chooses for *{escape(team.name)}* for "
            f"{escape(cycle_text(runtime, cycle))}"
            for team, cycle in delegated
        ]
        ephemeral(respond, "; ".join(lines) + ". They get the reminders instead of you.")

    def _view(respond: Any, user: str, team_id: str | None) -> None:
        with runtime.db.session() as session:
            text = reading.view_text(session, runtime, user, team_id)
        _respond_long(respond, text)

    def _archive(respond: Any, args: list[str]) -> None:
        team_id = None
        quarter = quarter_of(runtime.clock.now().astimezone(org.zone()).date())
        for arg in args:
            if re.fullmatch(r"\d{4}[qQ][1-4]", arg):
                quarter = arg.upper()
            else:
                team_id = arg
        with runtime.db.session() as session:
            text = reading.archive_text(session, runtime, team_id, quarter)
        _respond_long(respond, text)


def _respond_long(respond: Any, text: str) -> None:
    for message in messages_of(text)[:5]:
        ephemeral(respond, message["text"], message["blocks"])


def home_section(runtime: Runtime, user_id: str) -> list[dict[str, Any]]:
    if runtime.org.wins is None:
        return []
    with runtime.db.session() as session:
        parts = reading.home_parts(session, runtime, user_id, runtime.clock.now())
    return blocks.home_section(parts["pending"], parts["selections"], parts["latest"])


def _help(runtime: Runtime) -> str:
    wins = runtime.org.wins
    if wins is None:
        return "Wins and Challenges is not set up here (no `wins:` in the org config)."
    from bot.durations import format_duration

    return blocks.HELP.format(
        cadence=format_duration(wins.cadence),
        deadline=wins.first_deadline.strftime("%A %H:%M") + f" {runtime.org.timezone}",
    )


def _on_blocks(found: dict[str, str], present: set[Any]) -> dict[str, str]:
    """Errors keyed by the form's block ids (a field the form lacks goes on the summary)."""
    out: dict[str, str] = {}
    for key, message in found.items():
        block = key if key in present else "summary"
        out[block] = (out[block] + " " + message) if block in out else message
    return out


def _values(view: dict[str, Any]) -> dict[str, Any]:
    """block_id -> the submitted value: text, the selected option's value, or a list of values."""
    out: dict[str, Any] = {}
    for block_id, fields in ((view.get("state") or {}).get("values") or {}).items():
        for state in fields.values():
            if "selected_options" in state:
                out[block_id] = [o.get("value") for o in state.get("selected_options") or []]
            elif state.get("selected_option"):
                out[block_id] = state["selected_option"].get("value")
            else:
                value = state.get("value")
                out[block_id] = value.strip() if isinstance(value, str) else value
    return out
