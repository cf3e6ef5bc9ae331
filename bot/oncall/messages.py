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

from bot.durations import format_duration
from bot.mrkdwn import escape, quote
from bot.oncall.service import OnCall, PersonLoad, Segment

Mention = Callable[[str], str]  # config reference -> mrkdwn mention

MAX_LISTED = 10


def when(instant: datetime, zone: ZoneInfo) -> str:
    """An instant as a Slack date token: rendered in the reader's zone, with a fallback."""
    fallback = instant.astimezone(zone).strftime("%a %d %b %H:%M %Z")
    return f"<!date^{int(instant.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def local(instant: datetime, zone: ZoneInfo) -> str:
    return instant.astimezone(zone).strftime("%a %d %b %H:%M %Z")


def age(since: datetime, now: datetime) -> str:
    return format_duration(timedelta(minutes=int((now - since).total_seconds() // 60)))


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150]}}


def button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }
    if style:
        element["style"] = style
    return element


def percent(share: float) -> str:
    return f"{share:.0%}"


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
        line += (
            f" · secondary {mention(current.secondary)} "
            f"({escape(current.secondary_rotation_id or '')})"
        )
    return line


def now_blocks(lines: Sequence[str]) -> list[dict[str, Any]]:
    if not lines:
        return [section("No rotations match.")]
    blocks = [section(":telephone_receiver: *Who is on call now*")]
    blocks += [section(line) for line in lines[:45]]
    return blocks


def schedule_blocks(
    rotation_id: str, segments: Sequence[Segment], zone: ZoneInfo, mention: Mention
) -> list[dict[str, Any]]:
    lines = []
    for segment in segments[:40]:
        line = f"{when(segment.start, zone)} → {when(segment.end, zone)}  {mention(segment.person)}"
        if segment.override_id is not None:
            line += f"  _(override #{segment.override_id}"
            if segment.scheduled != segment.person:
                line += f", scheduled: {mention(segment.scheduled)}"
            line += ")_"
        lines.append(line)
    body = "\n".join(lines) if lines else "No shifts in that period."
    return [
        section(f":calendar: *{escape(rotation_id)}*: upcoming shifts (in your time zone)"),
        section(body),
        context(f"Handoffs are local time in {zone.key}."),
    ]


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
    off = mention(outgoing.primary) if outgoing.primary else "nobody"
    on = mention(incoming.primary) if incoming.primary else "nobody"
    text = f"Handoff for {rotation_id}: {off} hands over to {on}"
    who = f"{off} hands over to {on}"
    if incoming.shift_end is not None:
        who += f", on call until {when(incoming.shift_end, zone)}"
    if incoming.secondary is not None:
        who += (
            f".\nSecondary: {mention(incoming.secondary)} "
            f"({escape(incoming.secondary_rotation_id or '')})"
        )
    blocks: list[dict[str, Any]] = [
        header(f"Handoff: {rotation_id}"),
        section(who),
        context(f"Handoff at {when(at, zone)}"),
        {"type": "divider"},
        section(
            "*Outgoing shift*\n"
            f"Pages: {figures.pages} · business-impacting: {figures.business_impacting} · "
            f"false alarms: {figures.false_alarms} · off-hours: {figures.off_hours}"
        ),
    ]
    if open_pages:
        lines = [
            f"• {escape(p.summary)} (open {age(p.opened_at, now)})" for p in open_pages[:MAX_LISTED]
        ]
        if len(open_pages) > MAX_LISTED:
            lines.append(f"…and {len(open_pages) - MAX_LISTED} more")
        blocks.append(section(f"*Open pages ({len(open_pages)})*\n" + "\n".join(lines)))
    else:
        blocks.append(section("*Open pages*: none"))
    if open_tickets:
        lines = [
            f"• {escape(t.title)} (open {age(t.opened_at, now)})" for t in open_tickets[:MAX_LISTED]
        ]
        if len(open_tickets) > MAX_LISTED:
            lines.append(f"…and {len(open_tickets) - MAX_LISTED} more")
        blocks.append(section(f"*Open support tickets ({len(open_tickets)})*\n" + "\n".join(lines)))
    else:
        blocks.append(section("*Open support tickets*: none"))
    if notes:
        by = f" from {mention(notes_author)}" if notes_author else ""
        blocks.append(section(f"*Handoff notes{by}*\n{quote(notes)}"))
    else:
        blocks.append(section("*Handoff notes*: none were written"))
    if loads:
        shares = " · ".join(
            f"{mention(r.person)} {percent(r.share)} (off-hours {percent(r.off_hours_share)})"
            for r in loads
        )
        blocks.append(context(f"On-call share over the last quarter: {shares}"))
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
    """A draft of the weekly operational review agenda for the person who just came off call."""
    pages = [f"  ◦ still open: {escape(p.summary)}" for p in open_pages[:MAX_LISTED]]
    tickets = [
        f"  ◦ {escape(t.title)} (open {age(t.opened_at, now)})" for t in open_tickets[:MAX_LISTED]
    ]
    agenda = "\n".join(
        [
            f"*1. Pages* ({figures.pages} this shift; {figures.business_impacting} "
            f"business-impacting, {figures.false_alarms} false alarms, {figures.off_hours} "
            "off-hours). For each: why did it page at all? What removes the next one?",
            *pages,
            f"*2. Customer support issues* ({len(open_tickets)} open). Repeated categories?",
            *tickets,
            "*3. Incidents and postmortems*: follow-through on remediation items",
            "*4. Production changes*: what shipped, what went wrong, what needs automation",
            "*5. SLIs and SLOs*: dashboard review, trends and outliers",
        ]
    )
    text = f"Draft agenda for the weekly operational review ({rotation_id})"
    return text, [
        header("Operational review: draft agenda"),
        section(
            f"You just came off *{escape(rotation_id)}* "
            f"({local(start, zone)} → {local(end, zone)}), so preparing the weekly operational "
            "review is yours. Here is a draft to start from:"
        ),
        section(agenda),
        context("Sustainable on-call: fewer than 5 business-impacting pages a week."),
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
        ],
    }


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
