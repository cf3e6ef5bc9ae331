"""Block Kit and mrkdwn for on-call: handoff reports, notices, prompts, schedules, modals.

Times are Slack date tokens, so each reader sees them in their own zone; the fallback text (for
notifications and old clients) is in the rotation's zone, named.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.blockkit import button, context, header, section
from bot.clock import local_text
from bot.durations import format_duration
from bot.mrkdwn import escape, split_lines
from bot.oncall.service import OnCall, PersonLoad, Segment
from bot.rendering import Mrkdwn, render_parts

Mention = Callable[[str], str]  # config reference -> mrkdwn mention

MAX_LISTED = 10


def when(instant: datetime, zone: ZoneInfo) -> str:
    """An instant as a Slack date token: rendered in the reader's zone, with a fallback."""
    fallback = local_text(instant, zone)
    return f"<!date^{int(instant.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


local = local_text


def age(since: datetime, now: datetime) -> str:
    return format_duration(timedelta(minutes=int((now - since).total_seconds() // 60)))


def percent(share: float) -> str:
    return f"{share:.0%}"


def _template_helpers(zone: ZoneInfo, now: datetime) -> dict[str, Any]:
    """What on-call templates call for times; date tokens are mrkdwn we build, so trusted."""
    return {
        "when": lambda instant: Mrkdwn(when(instant, zone)),
        "local": lambda instant: local(instant, zone),
        "age": lambda since: age(since, now),
        "percent": percent,
    }


# ---- who is on call -------------------------------------------------------------------------


def on_call_line(current: OnCall, zone: ZoneInfo, mention: Mention) -> str:
    name = f"*{escape(current.rotation_id)}*"
    if current.primary is None:
        return f"{name}: nobody yet (the rotation has not started)"
    line = f"{name}: {mention(current.primary)}"
    if current.shift_end is not None:
        line += f" until {when(current.shift_end, zone)}"
    if current.is_override and current.scheduled and current.scheduled != current.primary:
        line += f" (covering {mention(current.scheduled)})"
    if current.secondary is not None:
        backup = escape(current.secondary_rotation_id or "")
        if current.secondary == current.primary:
            # Saying "X · secondary X" would promise a second person who does not exist.
            line += f" · no separate secondary: {mention(current.secondary)} also holds {backup}"
        else:
            line += f" · secondary {mention(current.secondary)} ({backup})"
    return line


def now_blocks(lines: Sequence[str]) -> list[dict[str, Any]]:
    if not lines:
        return [section("No rotations match.")]
    blocks = [section(":telephone_receiver: *Who is on call now*")]
    blocks += [section(line) for line in lines[:45]]
    return blocks


# Slack shows at most 50 blocks in one message; the rest of a long schedule goes in the next.
MAX_BLOCKS = 50


def schedule_messages(
    rotation_id: str, segments: Sequence[Segment], zone: ZoneInfo, mention: Mention
) -> list[list[dict[str, Any]]]:
    """Every shift, one line each, in as many sections (and messages) as they need: a line is
    never cut and no shift is left out."""
    lines = []
    for segment in segments:
        line = f"{when(segment.start, zone)} → {when(segment.end, zone)}  {mention(segment.person)}"
        if segment.override_id is not None:
            line += f"  _(override #{segment.override_id}"
            if segment.scheduled != segment.person:
                line += f", scheduled: {mention(segment.scheduled)}"
            line += ")_"
        lines.append(line)
    body = "\n".join(lines) if lines else "No shifts in that period."
    blocks = [
        section(f":calendar: *{escape(rotation_id)}*: upcoming shifts (in your time zone)"),
        *(section(chunk) for chunk in split_lines(body)),
        context(f"Handoffs are local time in {zone.key}."),
    ]
    return [blocks[i : i + MAX_BLOCKS] for i in range(0, len(blocks), MAX_BLOCKS)]


def load_blocks(
    rotation_id: str, rows: Sequence[PersonLoad], mention: Mention, window: timedelta
) -> list[dict[str, Any]]:
    lines = []
    for row in rows:
        warn = " :warning:" if row.share > 0.25 else ""
        lines.append(
            f"{mention(row.person)}: on call {format_duration(row.on_call)} "
            f"({percent(row.share)}), off-hours {format_duration(row.off_hours)} "
            f"({percent(row.off_hours_share)}){warn}"
        )
    return [
        section(
            f":bar_chart: *{escape(rotation_id)}*: share of on-call time over the last "
            f"{format_duration(window)}"
        ),
        section("\n".join(lines) or "Nobody was on call in that period."),
        context(
            "Sustainable: nobody on call more than 1 week in 4 (25%); ideally 1 in 6 to 8. "
            "Off-hours is time outside the team's business hours."
        ),
    ]


# ---- handoff --------------------------------------------------------------------------------


def handoff_blocks(
    *,
    rotation_id: str,
    at: datetime,
    zone: ZoneInfo,
    outgoing: OnCall,
    incoming: OnCall,
    figures: Any,
    open_pages: Sequence[Any],
    open_tickets: Sequence[Any],
    notes: str | None,
    notes_author: str | None,
    loads: Sequence[PersonLoad],
    mention: Mention,
    now: datetime,
) -> tuple[str, list[dict[str, Any]]]:
    """The handoff report: its prose is `templates/oncall_handoff.md.j2`, one block per section."""
    part = render_parts(
        "oncall_handoff.md.j2",
        at=at,
        outgoing=outgoing,
        incoming=incoming,
        figures=figures,
        open_pages=open_pages,
        open_tickets=open_tickets,
        notes=notes,
        notes_author=notes_author,
        loads=loads,
        max_listed=MAX_LISTED,
        mention=lambda ref: Mrkdwn(mention(ref)),  # a Slack id we resolved, never user text
        **_template_helpers(zone, now),
    )
    off = mention(outgoing.primary) if outgoing.primary else "nobody"
    on = mention(incoming.primary) if incoming.primary else "nobody"
    text = f"Handoff for {rotation_id}: {off} hands over to {on}"
    blocks: list[dict[str, Any]] = [
        header(f"Handoff: {rotation_id}"),
        section(part["who"]),
        context(part["handoff_at"]),
        {"type": "divider"},
        section(part["outgoing_shift"]),
        section(part["open_pages"]),
        section(part["open_tickets"]),
        section(part["notes"]),
    ]
    if loads:
        blocks.append(context(part["load"]))
    return text, blocks


def notes_prompt_blocks(
    rotation_id: str, handoff_at: datetime, zone: ZoneInfo, incoming: str | None, mention: Mention
) -> tuple[str, list[dict[str, Any]]]:
    to = f" to {mention(incoming)}" if incoming else ""
    text = f"Your {rotation_id} shift ends at {local(handoff_at, zone)}: write your handoff notes"
    value = json.dumps({"rotation": rotation_id, "handoff": handoff_at.isoformat()})
    return text, [
        section(
            f":memo: Your *{escape(rotation_id)}* shift ends {when(handoff_at, zone)}. "
            f"Write handoff notes{to}: what is still going on, what to watch, what you tried."
        ),
        {
            "type": "actions",
            "block_id": "oncall.notes",
            "elements": [button("Write handoff notes", "oncall.write_notes", value, "primary")],
        },
    ]


def notes_modal(
    rotation_id: str, handoff_at: datetime, zone: ZoneInfo, existing: str | None
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": "notes",
        "multiline": True,
        "max_length": 3000,
        "placeholder": {"type": "plain_text", "text": "Ongoing issues, things to watch, context"},
    }
    if existing:
        element["initial_value"] = existing
    return {
        "type": "modal",
        "callback_id": "oncall.notes",
        "private_metadata": json.dumps(
            {"rotation": rotation_id, "handoff": handoff_at.isoformat()}
        ),
        "title": {"type": "plain_text", "text": "Handoff notes"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            context(f"*{escape(rotation_id)}*, handoff {local(handoff_at, zone)}"),
            {
                "type": "input",
                "block_id": "notes",
                "label": {"type": "plain_text", "text": "Notes for the next person on call"},
                "element": element,
            },
        ],
    }


def agenda_blocks(
    *,
    rotation_id: str,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    figures: Any,
    open_pages: Sequence[Any],
    open_tickets: Sequence[Any],
    now: datetime,
) -> tuple[str, list[dict[str, Any]]]:
    """A draft of the weekly operational review agenda for the person who just came off call;
    its prose is `templates/oncall_review_agenda.md.j2`."""
    part = render_parts(
        "oncall_review_agenda.md.j2",
        rotation_id=rotation_id,
        start=start,
        end=end,
        figures=figures,
        open_pages=open_pages,
        open_tickets=open_tickets,
        max_listed=MAX_LISTED,
        **_template_helpers(zone, now),
    )
    text = f"Draft agenda for the weekly operational review ({rotation_id})"
    return text, [
        header("Operational review: draft agenda"),
        section(part["intro"]),
        section(part["agenda"]),
        context(part["footnote"]),
    ]


# ---- overrides, swaps, notices --------------------------------------------------------------


def swap_request_blocks(
    swap_id: int,
    rotation_id: str,
    requester: str,
    theirs: tuple[datetime, datetime],
    yours: tuple[datetime, datetime],
    expires_at: datetime,
    zone: ZoneInfo,
    mention: Mention,
) -> tuple[str, list[dict[str, Any]]]:
    text = f"{rotation_id}: a shift swap request"
    return text, [
        section(
            f":arrows_counterclockwise: {mention(requester)} asks to swap *{escape(rotation_id)}* "
            "shifts with you.\n"
            f"You would take theirs: {when(theirs[0], zone)} → {when(theirs[1], zone)}\n"
            f"They would take yours: {when(yours[0], zone)} → {when(yours[1], zone)}"
        ),
        context(f"Answer by {when(expires_at, zone)}; after that the request expires."),
        {
            "type": "actions",
            "block_id": f"oncall.swap.{swap_id}",
            "elements": [
                button("Accept", "oncall.swap_accept", str(swap_id), "primary"),
                button("Decline", "oncall.swap_decline", str(swap_id), "danger"),
            ],
        },
    ]


def swap_answered_blocks(text: str) -> list[dict[str, Any]]:
    return [section(text)]


def home_blocks(
    roles: Sequence[str], upcoming: Sequence[Segment], zones: dict[str, ZoneInfo], mention: Mention
) -> list[dict[str, Any]]:
    blocks = [section(":telephone_receiver: *On call*")]
    blocks.append(section("\n".join(roles) if roles else "You are not on call right now."))
    if upcoming:
        lines = [
            f"• *{escape(s.rotation_id)}*: {when(s.start, zones[s.rotation_id])} → "
            f"{when(s.end, zones[s.rotation_id])}"
            for s in upcoming
        ]
        blocks.append(section("*Your next shifts*\n" + "\n".join(lines)))
    else:
        blocks.append(context("No shifts for you in the next 8 weeks."))
    return blocks


def cover_modal(rotation_ids: Sequence[str], initial_rotation: str | None) -> dict[str, Any]:
    options = [
        {"text": {"type": "plain_text", "text": r[:75]}, "value": r} for r in rotation_ids[:100]
    ]
    select: dict[str, Any] = {"type": "static_select", "action_id": "rotation", "options": options}
    if initial_rotation in rotation_ids:
        select["initial_option"] = options[list(rotation_ids).index(initial_rotation)]
    return {
        "type": "modal",
        "callback_id": "oncall.cover",
        "title": {"type": "plain_text", "text": "Cover a shift"},
        "submit": {"type": "plain_text", "text": "Create override"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "person",
                "label": {"type": "plain_text", "text": "Who covers"},
                "element": {"type": "users_select", "action_id": "person"},
            },
            {
                "type": "input",
                "block_id": "rotation",
                "label": {"type": "plain_text", "text": "Rotation"},
                "element": select,
            },
            {
                "type": "input",
                "block_id": "start",
                "label": {"type": "plain_text", "text": "From"},
                "element": {"type": "datetimepicker", "action_id": "start"},
            },
            {
                "type": "input",
                "block_id": "end",
                "label": {"type": "plain_text", "text": "To"},
                "element": {"type": "datetimepicker", "action_id": "end"},
            },
            {
                "type": "input",
                "block_id": "reason",
                "optional": True,
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {"type": "plain_text_input", "action_id": "reason", "max_length": 300},
            },
            {
                "type": "input",
                "block_id": "outsider",
                "optional": True,
                "label": {"type": "plain_text", "text": "Someone from outside"},
                "element": {
                    "type": "checkboxes",
                    "action_id": "outsider",
                    "options": [
                        {
                            "text": {
                                "type": "plain_text",
                                "text": "They are not in this rotation or its team: cover anyway",
                            },
                            "value": "confirmed",
                        }
                    ],
                },
            },
        ],
    }


def outsider_cover_blocks(question: str, request: str) -> list[dict[str, Any]]:
    """Ask before a cover goes to someone outside the rotation and its team (`question` is
    mrkdwn the caller built and escaped)."""
    return [
        section(f":warning: {question}"),
        {
            "type": "actions",
            "elements": [
                button("Cover anyway", "oncall.cover_confirm", request, "primary"),
                button("Cancel", "oncall.cover_cancel", "cancel"),
            ],
        },
    ]


HELP = """\
*/oncall*: on-call rotations
• `/oncall` or `/oncall now [team|rotation]`: who is on call now (and the secondary)
• `/oncall schedule <rotation> [weeks]`: upcoming shifts, in your time zone (default 4 weeks)
• `/oncall cover @person <rotation> <from> <to> [reason]`: an override; with no arguments, a form
   times: `2026-11-18 18:00`, `2026-11-18T18:00`, `2026-11-18` (from midnight; as <to>: to the end of that day), `now`; <to> may also be a length like `4h` or `2d`; in your Slack time zone
• `/oncall cancel <override id>`: remove an override
• `/oncall swap @person <rotation> [your shift date] [their shift date]`: ask to exchange shifts (next ones by default)
• `/oncall notes [rotation]`: write handoff notes for your current shift
• `/oncall load [team|rotation]`: each person's share of on-call and off-hours time, last quarter
• `/oncall calendar <rotation>`: the rotation's iCalendar feed URL
• `/oncall help`: this help
Only rotation members, the team's managers and opsbot admins can change a rotation."""
