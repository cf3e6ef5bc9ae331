"""/oncall: who is on call, schedules, covers, swaps, notes, load and calendar feeds.

Thin: parse the command or payload, call bot.oncall, render with bot.oncall.messages.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import anyio
from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot import mrkdwn
from bot.app import inbox_worker
from bot.clock import as_utc
from bot.errors import InvalidInput, NotAllowed, NotFound, OpsbotError
from bot.oncall import calendar, flows, messages, revisions, service
from bot.oncall.when import take_date, take_end, take_instant
from bot.paging import blocks as paging_blocks
from bot.paging import load as paging_load
from bot.plain_acks import Rows
from bot.runtime import Runtime
from handlers.acks import after_ack
from handlers.responses import ephemeral, friendly_errors, tell_user

log = logging.getLogger(__name__)

MANIFEST: dict[str, Any] = {
    "commands": [
        {
            "command": "/oncall",
            "description": "Who is on call; schedules, covers, swaps and calendar feeds",
            "usage_hint": "[now | schedule | cover | swap | notes | load | calendar | help]",
            # Mentions arrive as <@U…> so we know exactly whom a cover or swap names.
            "should_escape": True,
        }
    ],
    "scopes": ["usergroups:write", "channels:manage", "groups:write", "users:read"],
    "events": [],
}

_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_SLACK_ID = re.compile(r"^@?([UW][A-Z0-9]{2,})$")
_EMAIL = re.compile(r"^(?:<mailto:[^|>]+\|)?([^@\s<>|]+@[^@\s<>|]+\.[^@\s<>|]+)>?$")
DEFAULT_WEEKS = 4
MAX_WEEKS = 26
HOME_LOOKAHEAD = timedelta(weeks=8)


def _who_now(body: dict[str, Any]) -> bool:
    """`/oncall` and `/oncall now`: one cheap lookup that changes nothing, answered in the ack
    without being stored (the person sees it at once, however much other work is queued)."""
    words = (body.get("text") or "").lower().split()
    return body.get("command") == "/oncall" and words[:1] in ([], ["now"], ["who"])


def _answered_at_once(body: dict[str, Any]) -> bool:
    """What runs on the request itself: who is on call now, and `/oncall cover` alone and
    `/oncall notes`, which open a modal while the trigger is fresh."""
    words = (body.get("text") or "").lower().split()
    return _who_now(body) or words == ["cover"] or words[:1] == ["notes"]


def register(app: App, runtime: Runtime) -> None:
    inbox_worker(runtime).answer_unstored(_who_now)

    async def now_from_memory(body: dict[str, Any], rows: Rows) -> dict[str, Any] | None:
        if not _who_now(body):
            return None
        return await _now_from_memory(runtime, _now_words(body), rows)

    @after_ack(app.command("/oncall"), at_once=_answered_at_once, from_memory=now_from_memory)
    @friendly_errors
    def oncall_command(ack: Ack, body: dict[str, Any], respond: Any, client: Any) -> None:
        words = (body.get("text") or "").split()
        sub = words.pop(0).lower() if words else "now"
        if sub in ("now", "who"):
            ack(**_now_answer(runtime, words))
            return
        ack()
        user_id = body["user_id"]
        handler = _SUBCOMMANDS.get(sub)
        if handler is None:
            raise InvalidInput(f"'{sub}' is not an /oncall command. Try `/oncall help`.")
        handler(runtime, user_id, words, respond, client, body)

    @app.action("oncall.swap_accept")
    @friendly_errors
    def swap_accept(ack: Ack, body: dict[str, Any], respond: Any, client: Any) -> None:
        ack()
        now = runtime.clock.now()
        swap_id = _int(body["actions"][0].get("value"))
        with runtime.db.session() as session:
            result = service.accept_swap(
                session, runtime.org, swap_id, body["user"]["id"], now, same=_same(runtime)
            )
            flows.announce_swap_accepted(session, runtime.org, result, now, _resolve(runtime))

    @app.action("oncall.swap_decline")
    @friendly_errors
    def swap_decline(ack: Ack, body: dict[str, Any], respond: Any, client: Any) -> None:
        ack()
        now = runtime.clock.now()
        swap_id = _int(body["actions"][0].get("value"))
        with runtime.db.session() as session:
            swap = service.decline_swap(
                session, runtime.org, swap_id, body["user"]["id"], now, same=_same(runtime)
            )
            flows.announce_swap_declined(session, runtime.org, swap, now, _resolve(runtime))

    @app.action("oncall.cover_confirm")
    @friendly_errors
    def cover_confirm(ack: Ack, body: dict[str, Any], respond: Any, client: Any) -> None:
        ack()
        try:
            request = json.loads(body["actions"][0].get("value") or "")
            start = datetime.fromtimestamp(int(request["start"]), UTC)
            end = datetime.fromtimestamp(int(request["end"]), UTC)
            person, rotation_id = str(request["person"]), str(request["rotation"])
        except (ValueError, KeyError, TypeError):
            raise InvalidInput("This confirmation is damaged; run `/oncall cover` again.") from None
        user_id = body["user"]["id"]
        result = _give_cover(
            runtime, user_id, person, rotation_id, start, end, request.get("reason"), True
        )
        respond(
            replace_original=True,
            text=_override_confirmation(runtime, result),
            response_type="ephemeral",
        )

    @app.action("oncall.cover_cancel")
    def cover_cancel(ack: Ack, respond: Any) -> None:
        ack()
        respond(replace_original=True, text="No cover was given.", response_type="ephemeral")

    @app.action("oncall.write_notes")
    @friendly_errors
    def write_notes(ack: Ack, body: dict[str, Any], respond: Any, client: Any) -> None:
        ack()
        value = json.loads(body["actions"][0].get("value") or "{}")
        handoff_at = as_utc(datetime.fromisoformat(value["handoff"]))
        _open_notes(
            runtime, client, body["trigger_id"], body["user"]["id"], value["rotation"], handoff_at
        )

    @app.view("oncall.notes")
    def notes_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: Any) -> None:
        meta = json.loads(view.get("private_metadata") or "{}")
        text = view["state"]["values"]["notes"]["notes"].get("value") or ""
        user_id = body["user"]["id"]
        try:
            with runtime.db.session() as session:
                _require_notes_author(runtime, session, meta["rotation"], user_id)
                service.save_notes(
                    session,
                    meta["rotation"],
                    as_utc(datetime.fromisoformat(meta["handoff"])),
                    user_id,
                    text,
                    runtime.clock.now(),
                )
        except OpsbotError as exc:
            ack(response_action="errors", errors={"notes": str(exc)})
            return
        ack()
        tell_user(
            client,
            None,
            user_id,
            f":memo: Saved your handoff notes for *{mrkdwn.escape(meta['rotation'])}*; "
            "they go into the handoff report.",
        )

    @app.view("oncall.cover")
    def cover_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: Any) -> None:
        values = view["state"]["values"]
        user_id = body["user"]["id"]
        person = values["person"]["person"].get("selected_user")
        rotation_id = (values["rotation"]["rotation"].get("selected_option") or {}).get("value")
        start = values["start"]["start"].get("selected_date_time")
        end = values["end"]["end"].get("selected_date_time")
        reason = (values.get("reason", {}).get("reason") or {}).get("value")
        confirmed = bool((values.get("outsider", {}).get("outsider") or {}).get("selected_options"))
        missing = {
            block: "Required"
            for block, value in (
                ("person", person),
                ("rotation", rotation_id),
                ("start", start),
                ("end", end),
            )
            if not value
        }
        if missing:
            ack(response_action="errors", errors=missing)
            return
        now = runtime.clock.now()
        try:
            with runtime.db.session() as session:
                result = service.create_override(
                    session,
                    runtime.org,
                    rotation_id,
                    person,
                    datetime.fromtimestamp(int(start), UTC),
                    datetime.fromtimestamp(int(end), UTC),
                    user_id,
                    now,
                    reason=reason,
                    same=_same(runtime),
                    outsider_confirmed=confirmed,
                )
                flows.announce_override(
                    session, runtime.org, result, user_id, now, _resolve(runtime)
                )
        except service.OutsideRotation as exc:
            ack(
                response_action="errors",
                errors={"person": f"{exc} (tick the box at the bottom)"[:150]},
            )
            return
        except NotAllowed as exc:
            ack(response_action="errors", errors={"rotation": str(exc)})
            return
        except OpsbotError as exc:
            ack(response_action="errors", errors={"end": str(exc)})
            return
        ack()
        tell_user(client, None, user_id, _override_confirmation(runtime, result))


# ---- subcommands ----------------------------------------------------------------------------


def _now_words(body: dict[str, Any]) -> list[str]:
    """The words after `/oncall now` (or `who`, or none): a team or rotation, if any."""
    words = (body.get("text") or "").split()
    return words[1:] if words else words


def _now_answer(runtime: Runtime, words: list[str]) -> dict[str, Any]:
    """`/oncall now [team or rotation]` as the ack's body: only the asker sees it."""
    now = runtime.clock.now()
    try:
        ids = _now_rotations(runtime, words)

        def read(session: Any) -> tuple[list[service.OnCall], messages.Mention]:
            answers = service.who_is_on_call_each(session, runtime.org, ids, now)
            # Everyone named, resolved at once (one query for the e-mail addresses, not one each).
            return answers, _mention_all(runtime, session, _named(answers))

        # In the ack: one round trip (the timelines' revision tokens) while they are cached.
        answers, mention = runtime.db.read(read)
    except OpsbotError as exc:
        return _now_warning(exc)
    return _now_reply(runtime, answers, mention)


async def _now_from_memory(runtime: Runtime, words: list[str], rows: Rows) -> dict[str, Any] | None:
    """`_now_answer` on the event loop, from the cached timelines and the people already
    resolved, after one read of the revision tokens; None when anything is missing from
    memory (Bolt then answers in a thread, and fills it in)."""
    now = runtime.clock.now()
    try:
        ids = _now_rotations(runtime, words)
    except OpsbotError as exc:
        return _now_warning(exc)
    tokens = dict(await rows(revisions.TOKENS_SQL))
    answers = service.who_is_on_call_cached(runtime.org, ids, now, tokens, runtime.db.engine.url)
    if answers is None:
        return None
    people = runtime.directory.known_ids(_named(answers))
    if people is None:
        return None
    return _now_reply(runtime, answers, lambda ref: mrkdwn.user(people[ref]))


def _now_rotations(runtime: Runtime, words: list[str]) -> list[str]:
    return [r.id for r in service.team_rotations(runtime.org, words[0] if words else None)]


def _now_warning(exc: OpsbotError) -> dict[str, Any]:
    return {"text": f":warning: {mrkdwn.escape(str(exc))}", "response_type": "ephemeral"}


def _now_reply(
    runtime: Runtime, answers: list[service.OnCall], mention: messages.Mention
) -> dict[str, Any]:
    lines = [
        messages.on_call_line(current, runtime.org.rotation_zone(current.rotation_id), mention)
        for current in answers
    ]
    return {
        "text": "Who is on call now",
        "blocks": messages.now_blocks(lines),
        "response_type": "ephemeral",
    }


def _schedule(runtime: Runtime, user_id: str, words: list[str], respond: Any, *_: Any) -> None:
    if not words:
        raise InvalidInput("Which rotation? `/oncall schedule <rotation> [weeks]`")
    rotation = runtime.org.rotation(words[0])
    weeks = DEFAULT_WEEKS
    if len(words) > 1:
        weeks = _int(words[1], "weeks")
        if not 1 <= weeks <= MAX_WEEKS:
            raise InvalidInput(f"Weeks must be between 1 and {MAX_WEEKS}.")
    now = runtime.clock.now()
    with runtime.db.session() as session:
        segments = service.upcoming_shifts(
            session, runtime.org, rotation.id, now, now + timedelta(weeks=weeks)
        )
    parts = messages.schedule_messages(
        rotation.id, segments, runtime.org.rotation_zone(rotation.id), _mention(runtime)
    )
    for number, blocks in enumerate(parts, start=1):
        more = f" ({number} of {len(parts)})" if len(parts) > 1 else ""
        ephemeral(respond, f"Upcoming {rotation.id} shifts{more}", blocks)


def _cover(
    runtime: Runtime,
    user_id: str,
    words: list[str],
    respond: Any,
    client: Any,
    body: dict[str, Any],
) -> None:
    if not words:
        view = messages.cover_modal([r.id for r in runtime.org.rotations], None)
        client.views_open(trigger_id=body["trigger_id"], view=view)
        return
    if len(words) < 3:
        raise InvalidInput(
            "Usage: `/oncall cover @person <rotation> <from> <to> [reason]`, "
            "or `/oncall cover` alone for a form."
        )
    person = _person(runtime, words.pop(0))
    rotation = runtime.org.rotation(words.pop(0))
    zone = _reader_zone(runtime, user_id, runtime.org.rotation_zone(rotation.id))
    now = runtime.clock.now()
    start = take_instant(words, zone, now)
    end = take_end(words, start, zone, now)
    reason = " ".join(words) or None
    try:
        result = _give_cover(runtime, user_id, person, rotation.id, start, end, reason, False)
    except service.OutsideRotation as exc:
        request = {
            "person": person,
            "rotation": rotation.id,
            "start": int(start.timestamp()),
            "end": int(end.timestamp()),
            "reason": reason,
        }
        question = (
            f"{mrkdwn.user(person)} is not a member of *{mrkdwn.escape(rotation.id)}* or of team "
            f"*{mrkdwn.escape(exc.team_id)}*, so they may not know its systems or its runbooks. "
            "Give them the cover anyway?"
        )
        ephemeral(respond, str(exc), messages.outsider_cover_blocks(question, json.dumps(request)))
        return
    ephemeral(respond, _override_confirmation(runtime, result))


def _give_cover(
    runtime: Runtime,
    user_id: str,
    person: str,
    rotation_id: str,
    start: datetime,
    end: datetime,
    reason: str | None,
    outsider_confirmed: bool,
) -> service.OverrideResult:
    now = runtime.clock.now()
    with runtime.db.session() as session:
        result = service.create_override(
            session,
            runtime.org,
            rotation_id,
            person,
            start,
            end,
            user_id,
            now,
            reason=reason,
            same=_same(runtime),
            outsider_confirmed=outsider_confirmed,
        )
        flows.announce_override(session, runtime.org, result, user_id, now, _resolve(runtime))
    return result


def _cancel(runtime: Runtime, user_id: str, words: list[str], respond: Any, *_: Any) -> None:
    if not words:
        raise InvalidInput(
            "Which override? `/oncall cancel <override id>` (see `/oncall schedule`)."
        )
    override_id = _int(words[0].lstrip("#"), "override id")
    now = runtime.clock.now()
    with runtime.db.session() as session:
        result = service.cancel_override(
            session, runtime.org, override_id, user_id, now, same=_same(runtime)
        )
        flows.announce_cancelled_override(
            session, runtime.org, result, user_id, now, _resolve(runtime)
        )
    other = result.other_half
    if other is not None:
        text = (
            f":white_check_mark: Swap #{result.override.swap_id} is cancelled, both halves "
            f"(overrides #{override_id} and #{other.id}); the schedule applies again."
        )
    else:
        text = (
            f":white_check_mark: Override #{override_id} is cancelled; the schedule applies again."
        )
    ephemeral(respond, text)


def _swap(runtime: Runtime, user_id: str, words: list[str], respond: Any, *_: Any) -> None:
    if len(words) < 2:
        raise InvalidInput(
            "Usage: `/oncall swap @person <rotation> [your shift date] [their shift date]`"
        )
    other = _person(runtime, words.pop(0))
    rotation = runtime.org.rotation(words.pop(0))
    mine, theirs = take_date(words), take_date(words)
    if words:
        raise InvalidInput(f"I did not understand '{' '.join(words)}'; dates are YYYY-MM-DD.")
    now = runtime.clock.now()
    zone = runtime.org.rotation_zone(rotation.id)
    with runtime.db.session() as session:
        swap = service.request_swap(
            session,
            runtime.org,
            rotation.id,
            user_id,
            other,
            now,
            mine=mine,
            theirs=theirs,
            same=_same(runtime),
        )
        flows.ask_for_swap(session, runtime.org, swap, now, _resolve(runtime))
        text = (
            f":arrows_counterclockwise: Asked {mrkdwn.user(other)} to swap *{rotation.id}* shifts: "
            f"yours {messages.when(as_utc(swap.requester_start), zone)} → "
            f"{messages.when(as_utc(swap.requester_end), zone)} for theirs "
            f"{messages.when(as_utc(swap.requestee_start), zone)} → "
            f"{messages.when(as_utc(swap.requestee_end), zone)}. "
            f"The request expires {messages.when(as_utc(swap.expires_at), zone)}."
        )
    ephemeral(respond, text)


def _notes(
    runtime: Runtime,
    user_id: str,
    words: list[str],
    respond: Any,
    client: Any,
    body: dict[str, Any],
) -> None:
    now = runtime.clock.now()
    same = _same(runtime)
    with runtime.db.session() as session:
        if words:
            rotation_id = runtime.org.rotation(words[0]).id
        else:
            ids = [r.id for r in runtime.org.rotations]
            mine = [
                current.rotation_id
                for current in service.who_is_on_call_each(session, runtime.org, ids, now)
                if current.primary and same(current.primary, user_id)
            ]
            if not mine:
                raise InvalidInput(
                    "You are not on call right now; name the rotation: `/oncall notes <rotation>`."
                )
            rotation_id = mine[0]
        handoff_at = service.next_handoff(session, runtime.org, rotation_id, now)
    _open_notes(runtime, client, body["trigger_id"], user_id, rotation_id, handoff_at)


def _load(runtime: Runtime, user_id: str, words: list[str], respond: Any, *_: Any) -> None:
    rotations = service.team_rotations(runtime.org, words[0] if words else None)
    if not words:
        rotations = [r for r in rotations if r.kind == "oncall"] or rotations
    now = runtime.clock.now()
    mention = _mention(runtime)
    blocks: list[dict[str, Any]] = []
    with runtime.db.session() as session:
        for rotation in rotations[:10]:
            rows = service.load(session, runtime.org, rotation.id, now)
            blocks += messages.load_blocks(rotation.id, rows, mention, service.LOAD_WINDOW)
            if rotation.kind == "oncall":  # pager load, from paging
                report = paging_load.weekly_load(session, runtime.org, rotation.id, now)
                blocks += paging_blocks.load_blocks(report, mention)
    ephemeral(respond, "On-call load over the last quarter", blocks[:50])


def _calendar(runtime: Runtime, user_id: str, words: list[str], respond: Any, *_: Any) -> None:
    if not words:
        raise InvalidInput("Which rotation? `/oncall calendar <rotation>`")
    rotation = runtime.org.rotation(words[0])
    settings = runtime.settings
    if not settings.public_url or not settings.slack_signing_secret:
        raise InvalidInput(
            "Calendar feeds need OPSBOT_PUBLIC_URL and SLACK_SIGNING_SECRET; ask your opsbot admin."
        )
    url = calendar.feed_url(settings.public_url, settings.slack_signing_secret, rotation.id)
    ephemeral(
        respond,
        f":calendar: Subscribe to *{rotation.id}* in your calendar app with this URL "
        f"(next 6 months of shifts, overrides included):\n{url}\n"
        "Treat it like a password: anyone with it can read the schedule.",
    )


def _help(runtime: Runtime, user_id: str, words: list[str], respond: Any, *_: Any) -> None:
    ephemeral(respond, messages.HELP)


_SUBCOMMANDS = {
    "schedule": _schedule,
    "cover": _cover,
    "override": _cover,
    "cancel": _cancel,
    "swap": _swap,
    "notes": _notes,
    "load": _load,
    "calendar": _calendar,
    "help": _help,
}


# ---- shared pieces --------------------------------------------------------------------------


def _resolve(runtime: Runtime) -> flows.Resolve:
    return runtime.directory.user_id


def _same(runtime: Runtime) -> service.SamePerson:
    return runtime.directory.same_person


def _mention(runtime: Runtime) -> messages.Mention:
    return lambda ref: mrkdwn.user(runtime.directory.user_id(ref))


def _named(answers: list[service.OnCall]) -> set[str]:
    return {
        ref
        for current in answers
        for ref in (current.primary, current.secondary, current.scheduled)
        if ref is not None
    }


def _mention_all(runtime: Runtime, session: Any, refs: set[str]) -> messages.Mention:
    """A mention for each of `refs`, the e-mail addresses among them resolved in one query."""
    ids = runtime.directory.user_ids(refs, session=session)
    return lambda ref: mrkdwn.user(ids.get(ref) or runtime.directory.user_id(ref))


def _int(text: str | None, what: str = "number") -> int:
    try:
        return int(text or "")
    except ValueError:
        # friendly_errors escapes the message for mrkdwn.
        raise InvalidInput(f"'{text or ''}' is not a valid {what}.") from None


def _person(runtime: Runtime, word: str) -> str:
    """A Slack id from a mention, a bare id or an e-mail address."""
    for pattern in (_MENTION, _SLACK_ID):
        match = pattern.match(word)
        if match:
            return match[1]
    match = _EMAIL.match(word)
    if match:
        resolved = runtime.directory.user_id(match[1])
        if "@" not in resolved:
            return resolved
        raise NotFound(f"No Slack user has the e-mail address {match[1]}.")
    raise InvalidInput(
        f"'{word}' does not name a person: @-mention them (pick from Slack's list) "
        "or give their e-mail address."
    )


def _reader_zone(runtime: Runtime, user_id: str, fallback: ZoneInfo) -> ZoneInfo:
    """The reader's Slack time zone, for reading the times they type."""
    try:
        tz = runtime.slack.users_info(user=user_id)["user"].get("tz")
        return ZoneInfo(tz) if tz else fallback
    except (SlackApiError, ZoneInfoNotFoundError, KeyError, ValueError):
        return fallback


def _override_confirmation(runtime: Runtime, result: service.OverrideResult) -> str:
    override = result.override
    zone = runtime.org.rotation_zone(override.rotation_id)
    covered = ", ".join(mrkdwn.user(runtime.directory.user_id(p)) for p in result.replaced)
    return (
        f":white_check_mark: Override #{override.id}: {mrkdwn.user(override.person)} covers "
        f"*{override.rotation_id}* from {messages.when(as_utc(override.start), zone)} to "
        f"{messages.when(as_utc(override.end), zone)} (instead of {covered}). Both were told. "
        f"Undo with `/oncall cancel {override.id}`."
    )


def _require_notes_author(runtime: Runtime, session: Any, rotation_id: str, user_id: str) -> None:
    same = _same(runtime)
    holder = service.who_is_on_call(session, runtime.org, rotation_id, runtime.clock.now()).primary
    if (holder is not None and same(holder, user_id)) or service.may_change(
        runtime.org, rotation_id, user_id, same
    ):
        return
    raise NotAllowed(
        f"Only the person on call for {rotation_id}, its members and managers can write its "
        "handoff notes."
    )


def _open_notes(
    runtime: Runtime,
    client: Any,
    trigger_id: str,
    user_id: str,
    rotation_id: str,
    handoff_at: datetime,
) -> None:
    with runtime.db.session() as session:
        _require_notes_author(runtime, session, rotation_id, user_id)
        note = service.notes_for(session, rotation_id, handoff_at)
    view = messages.notes_modal(
        rotation_id, handoff_at, runtime.org.rotation_zone(rotation_id), note.text if note else None
    )
    client.views_open(trigger_id=trigger_id, view=view)


# ---- App Home -------------------------------------------------------------------------------


def home_section(runtime: Runtime, user_id: str) -> list[dict[str, Any]]:
    """Your current role on every rotation, and your next shifts."""
    org = runtime.org
    now = runtime.clock.now()
    same = _same(runtime)
    mention = _mention(runtime)
    roles = []
    zones = {r.id: org.rotation_zone(r.id) for r in org.rotations}
    with runtime.db.session() as session:
        answers = service.who_is_on_call_each(session, org, [r.id for r in org.rotations], now)
        for rotation, current in zip(org.rotations, answers, strict=True):
            zone = zones[rotation.id]
            if current.primary is not None and same(current.primary, user_id):
                until = (
                    f" until {messages.when(current.shift_end, zone)}" if current.shift_end else ""
                )
                role = f"You are *on call* for *{mrkdwn.escape(rotation.id)}*{until}."
                if current.secondary is not None and same(current.secondary, user_id):
                    role += (
                        " You are also its secondary (through "
                        f"{mrkdwn.escape(current.secondary_rotation_id or '')}): nobody else "
                        "backs you up."
                    )
                roles.append(role)
            elif current.secondary is not None and same(current.secondary, user_id):
                roles.append(
                    f"You are *secondary* for *{mrkdwn.escape(rotation.id)}* (through "
                    f"{mrkdwn.escape(current.secondary_rotation_id or '')}); primary is "
                    f"{mention(current.primary) if current.primary else 'nobody'}."
                )
        upcoming = [
            s
            for s in service.shifts_of_person(
                session, org, user_id, now, now + HOME_LOOKAHEAD, same=same
            )
            if s.start > now
        ][:5]
    return messages.home_blocks(roles, upcoming, zones, mention)


# ---- the calendar feed ----------------------------------------------------------------------


def http_routes(runtime: Runtime) -> list[BaseRoute]:
    async def calendar_feed(request: Request) -> Response:
        rotation_id = request.path_params["rotation"]
        return await anyio.to_thread.run_sync(
            _calendar_response, runtime, rotation_id, request.query_params.get("token", "")
        )

    return [Route("/calendars/{rotation}.ics", calendar_feed, methods=["GET"])]


def _calendar_response(runtime: Runtime, rotation_id: str, token: str) -> Response:
    if not any(r.id == rotation_id for r in runtime.org.rotations):
        return JSONResponse({"error": f"unknown rotation '{rotation_id}'"}, 404)
    secret = runtime.settings.slack_signing_secret
    if not secret:
        return JSONResponse({"error": "calendar feeds need SLACK_SIGNING_SECRET"}, 503)
    if not token or not calendar.token_matches(secret, rotation_id, token):
        return JSONResponse({"error": "wrong or missing token"}, 403)
    rotation = runtime.org.rotation(rotation_id)
    now = runtime.clock.now()
    with runtime.db.session() as session:
        segments = service.upcoming_shifts(
            session, runtime.org, rotation_id, now, now + calendar.FEED_LENGTH
        )
    names: dict[str, str] = {}

    def name_of(ref: str) -> str:
        if ref not in names:
            names[ref] = _display_name(runtime, ref)
        return names[ref]

    body = calendar.feed(
        rotation, runtime.org.rotation_zone(rotation_id).key, segments, name_of, now
    )
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{rotation_id}.ics"'},
    )


def _display_name(runtime: Runtime, ref: str) -> str:
    user_id = runtime.directory.user_id(ref)
    try:
        found = runtime.slack.users_info(user=user_id)["user"]
    except (SlackApiError, KeyError):
        return ref
    return found.get("real_name") or found.get("name") or ref
