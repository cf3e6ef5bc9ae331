"""Every support message in one place: ticket cards, thread notes, App Home, the report.

The forms (request, critical, satisfaction) are in `bot.support.forms`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.blockkit import button, context, option, section, static_select, text
from bot.clock import local_text
from bot.config import Queue
from bot.durations import format_duration
from bot.mrkdwn import date, escape, from_event, split_lines, user
from bot.support.models import (
    CATEGORIES,
    RESOLVED,
    SEVERITIES,
    STATE_LABELS,
    Ticket,
    TicketEvent,
)
from bot.support.report import OPERATIONAL_LOAD_LIMIT, UNCATEGORISED, SupportReport
from bot.support.sla import Clock

if TYPE_CHECKING:
    from bot.support.service import TicketView

TARGET_LABELS = {"first_response": "first-response", "resolution": "resolution"}
SEVERITY_EMOJI = {
    "critical": ":red_circle:",
    "high": ":large_orange_circle:",
    "normal": ":large_blue_circle:",
    "low": ":white_circle:",
}
RESOLUTION_LABELS = {"fixed": "resolved", "docs": "answered by docs", "duplicate": "duplicate"}

HELP = """*Support requests* (`/support`)
• Post in a support channel (e.g. {channels}) and the bot opens a ticket in the thread, or use `/support` for a form, or the *Create support request* shortcut on any message.
• Each ticket gets the person on the queue's support rotation (T1), an SLA by severity, and runbook suggestions. *Escalate* (or a missed SLA) moves it to T2.
• *Critical* needs a type of business impact and why engaging an engineer now would help; it pages for Tier 0/1 applications or outside business hours.
• Reply in the thread to talk; react :white_check_mark: to your own request to resolve it.
`/support` · open the request form
`/support report [queue] [weeks]` · categories, SLA attainment, response times, satisfaction, load
`/support help` · this help"""


def shown(text: str) -> str:
    """A ticket's summary or details: Slack mrkdwn already (escaped at intake when typed into a
    form, passed through when it came in an event); broadcasts are neutralised once more."""
    return from_event(text)


def quoted(text: str, limit: int = 1500) -> str:
    """A ticket's text as a quote, whole lines only; says so when the rest is left out."""
    chunks = split_lines(shown(text), limit)
    lines = "\n".join("> " + line for line in (chunks[0] if chunks else "").splitlines())
    if len(chunks) > 1:
        lines += "\n_(continues in the request's thread)_"
    return lines or "> "


def local(instant: datetime | None, zone: ZoneInfo) -> str:
    """A time shown to a person: a Slack date token, so a reader in London sees London time;
    the fallback is the team's time with its zone."""
    if instant is None:
        return "-"
    return date(instant, local_text(instant, zone))


def until(instant: datetime, zone: ZoneInfo) -> str:
    """The end of a span that starts the same day: the time only, as a date token."""
    return date(instant, instant.astimezone(zone).strftime("%H:%M %Z"), "{time}")


def person(ref: str | None) -> str:
    if not ref:
        return "nobody (no one is on the rotation)"
    return user(ref) if "@" not in ref else escape(ref)


def thread_link(ticket: Ticket) -> str:
    if not ticket.thread_channel or not ticket.thread_ts:
        return f"#{ticket.id}"
    url = f"https://slack.com/archives/{ticket.thread_channel}/p{ticket.thread_ts.replace('.', '')}"
    return f"<{url}|#{ticket.id}>"


HISTORY_SHOWN = 20
HOME_LISTED = 10


# ---- the ticket card ------------------------------------------------------------------------


def card_text(view: TicketView) -> str:
    t = view.ticket
    return f"Ticket #{t.id} ({STATE_LABELS[t.state]}): {shown(t.summary)}"


def _sla_line(view: TicketView, zone: ZoneInfo) -> str:
    t, state = view.ticket, view.sla
    if t.category == "office_hours":
        when = local(t.office_hours_at, zone) if t.office_hours_at else "not scheduled"
        return (
            f"*Office hours:* {when} (design questions are discussed there, not on the SLA clock)"
        )
    if state is None:
        return ""
    basis = "business hours" if state.business_hours else "around the clock"
    parts = []
    if t.first_response_at is not None:
        mark = " (late)" if t.first_response_breached else ""
        parts.append(f"first response {local(t.first_response_at, zone)}{mark} :white_check_mark:")
    elif state.first_response is not None:
        parts.append(_due("first response", state.first_response, t.first_response_breached, zone))
    if t.state == RESOLVED:
        parts.append(f"resolved {local(t.resolved_at, zone)}")
    elif state.resolution is not None:
        parts.append(_due("resolution", state.resolution, t.resolution_breached, zone))
    line = f"*SLA* ({t.severity}, {basis}): " + " · ".join(parts)
    if state.paused:
        line += f"\n:double_vertical_bar: Clock paused while waiting on {person(t.requester)}."
    return line


def _due(label: str, clock: Clock, breached: bool, zone: ZoneInfo) -> str:
    if breached:
        return f":rotating_light: {label} overdue (target {format_duration(clock.target)})"
    if clock.due_at is None:
        return f"{label} paused (target {format_duration(clock.target)})"
    return f"{label} by {local(clock.due_at, zone)}"


def ticket_card(view: TicketView) -> list[dict[str, Any]]:
    t, queue = view.ticket, view.queue
    zone = ZoneInfo(view.zone_name)
    category = CATEGORIES.get(t.category or "", "not set")
    head = (
        f"{SEVERITY_EMOJI.get(t.severity, '')} *Ticket #{t.id}: {shown(t.summary)}*\n"
        f"*{STATE_LABELS[t.state]}* · queue `{escape(queue.id)}` · Tier {t.tier} · "
        f"severity *{t.severity}* · category *{category}*"
    )
    if t.application_id:
        head += f" · app `{escape(t.application_id)}`"
    rotation = queue.t2 if t.tier >= 2 else queue.t1
    blocks: list[dict[str, Any]] = [
        section(head),
        section(
            f"Asked by {person(t.requester)} · handled by {person(t.assignee)} "
            f"(`{escape(rotation or '')}`)"
        ),
    ]
    sla_line = _sla_line(view, zone)
    if sla_line:
        blocks.append(section(sla_line))
    for notice in view.notices:
        blocks.append(section(notice))
    if t.state == RESOLVED:
        how = RESOLUTION_LABELS.get(t.resolution or "", "resolved")
        extra = f" by runbook `{escape(t.runbook)}`" if t.runbook else ""
        if t.duplicate_of:
            extra = f" of #{t.duplicate_of}"
        blocks.append(
            context(
                f":white_check_mark: {how.capitalize()}{extra} on {local(t.resolved_at, zone)}. "
                "Reply in this thread within 7 days to reopen."
            )
        )
        return blocks
    if view.runbooks:
        blocks.append({"type": "divider"})
        blocks.append(section("*Maybe a runbook answers this:*"))
        for match in view.runbooks:
            runbook = match.runbook
            title = escape(runbook.title)
            if runbook.url:
                title = f"<{escape(runbook.url)}|{title.replace('|', '¦')}>"
            excerpt = escape(runbook.excerpt)
            blocks.append(
                section(
                    f":book: *{title}* (`runbooks/{escape(runbook.file_name)}`)\n{excerpt}",
                    button("This solved it", "support.solved", f"{t.id}:{runbook.slug}"),
                )
            )
    if view.similar:
        blocks.append({"type": "divider"})
        blocks.append(section("*Similar open tickets* (last 14 days):"))
        for other in view.similar:
            blocks.append(
                section(
                    f"{thread_link(other)} {shown(other.summary)} · {STATE_LABELS[other.state]}",
                    button(f"Merge into #{other.id}", "support.merge", f"{t.id}:{other.id}"),
                )
            )
    blocks.append(
        {
            "type": "actions",
            "block_id": f"support.ticket.{t.id}",
            "elements": [
                button("Claim", "support.claim", str(t.id), "primary"),
                button("Waiting on requester", "support.wait", str(t.id)),
                button("Escalate to T2", "support.escalate", str(t.id), "danger"),
                button("Resolve", "support.resolve", str(t.id)),
            ],
        }
    )
    blocks.append(
        {
            "type": "actions",
            "block_id": f"support.fields.{t.id}",
            "elements": [
                static_select(
                    "support.category",
                    "Category",
                    [option(label, f"{t.id}:{key}") for key, label in CATEGORIES.items()],
                    f"{t.id}:{t.category}" if t.category else None,
                ),
                static_select(
                    "support.severity",
                    "Severity",
                    [option(s.capitalize(), f"{t.id}:{s}") for s in SEVERITIES],
                    f"{t.id}:{t.severity}",
                ),
            ],
        }
    )
    blocks.append(
        context(
            "Responders: reply in this thread (your first reply is the first response). "
            f"{person(t.requester)}: react :white_check_mark: to your request when it is solved."
        )
    )
    return blocks


# ---- notes in the thread, DMs, the triage channel -------------------------------------------


def assigned_text(ticket: Ticket, queue: Queue) -> str:
    rotation = queue.t2 if ticket.tier >= 2 else queue.t1
    return (
        f":inbox_tray: New support ticket {thread_link(ticket)} in `{escape(queue.id)}` is yours "
        f"(you are on `{escape(rotation or '')}`, Tier {ticket.tier}): {shown(ticket.summary)}"
    )


def office_hours_notice(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    return (
        ":calendar: Design questions get the most out of a conversation: this one is booked for "
        f"the next office hours, *{local(start, zone)}* to {until(end, zone)}. "
        "Bring context (diagrams, constraints); the team will read the thread beforehand."
    )


def paged_notice(page_id: int | None, policy: str, reason: str) -> str:
    return (
        f":rotating_light: Critical: paged the on-call engineer (page #{page_id}, policy "
        f"`{escape(policy)}`) because {escape(reason)}."
    )


def next_business_day_notice(
    reason: str,
    now: datetime,
    closes: datetime,
    next_day: datetime,
    first_due: datetime | None,
    zone: ZoneInfo,
) -> str:
    """What a critical request that is not paged gets: business hours only, as its clock runs."""
    if closes > now:
        hours = (
            f"The support rotation handles it in business hours: today until {local(closes, zone)}, "
            f"then from the next business day, *{local(next_day, zone)}*."
        )
    else:
        hours = (
            "The support rotation handles it in business hours, from the next business day, "
            f"*{local(next_day, zone)}*."
        )
    due = (
        f" First response by {local(first_due, zone)} (business hours count)." if first_due else ""
    )
    return (
        f":information_source: Critical, but not paged: {escape(reason)}. {hours}{due} Nobody is "
        "paged for it after hours; if a Tier 0 or 1 application is affected, say so in this "
        "thread and a responder can escalate it to on-call (*Escalate to T2*)."
    )


def waiting_text(ticket: Ticket) -> str:
    return (
        f":hourglass: Waiting on {person(ticket.requester)}: the SLA clock is paused until you "
        "reply in this thread."
    )


def reopened_text(ticket: Ticket) -> str:
    return (
        f":arrows_counterclockwise: Ticket #{ticket.id} is reopened; {person(ticket.assignee)} "
        "has it again and the SLA clock runs."
    )


def resolved_text(ticket: Ticket, by: str, stood_down: int | None = None) -> str:
    how = RESOLUTION_LABELS.get(ticket.resolution or "", "resolved")
    extra = ""
    if ticket.resolution == "docs":
        extra = f" by the runbook `{escape(ticket.runbook or '')}`"
    if ticket.resolution == "duplicate":
        extra = f": same as #{ticket.duplicate_of}, follow it there"
    page = f" {page_stood_down_notice(stood_down)}" if stood_down is not None else ""
    return (
        f":white_check_mark: Ticket #{ticket.id} {how}{extra} (by {person(by)}).{page} "
        "Reply here within 7 days if it is not solved after all."
    )


def page_stood_down_notice(page_id: int) -> str:
    return f"Page #{page_id} stands down: its escalation stopped and nobody further is paged."


def page_answered_text(ticket: Ticket, page_id: int | None) -> str:
    return (
        f":eyes: {person(ticket.assignee)} acknowledged page #{page_id} and has this request "
        "(its first response)."
    )


def merged_text(ticket: Ticket, into: Ticket) -> str:
    return (
        f":link: {thread_link(ticket)} ({shown(ticket.summary)}) from {person(ticket.requester)} "
        f"was merged into this ticket."
    )


def escalated_text(ticket: Ticket, queue: Queue, reason: str, by: str | None = None) -> str:
    who = f" by {person(by)}" if by else ""
    return (
        f":arrow_double_up: Escalated to T2 (`{escape(queue.t2 or '')}`){who}: "
        f"{person(ticket.assignee)} has it now, with the history so far. Why: {escape(reason)}."
    )


def triage_text(ticket: Ticket, queue: Queue, reason: str) -> str:
    return (
        f":rotating_light: {thread_link(ticket)} in `{escape(queue.id)}` ({ticket.severity}): "
        f"{shown(ticket.summary)}. {escape(reason)}; now with T2, {person(ticket.assignee)}."
    )


def breach_dm_text(ticket: Ticket, reason: str) -> str:
    return f":rotating_light: {thread_link(ticket)} {shown(ticket.summary)}: {escape(reason)}."


def reminder_text(ticket: Ticket, target: str, clock: Clock, zone: ZoneInfo) -> str:
    return (
        f":alarm_clock: {thread_link(ticket)} {shown(ticket.summary)} has used 75% of its "
        f"{TARGET_LABELS[target]} SLA ({format_duration(clock.target)}); it is due "
        f"{local(clock.due_at, zone)}."
    )


def _event_line(event: TicketEvent, zone: ZoneInfo) -> str:
    who = f" by {person(event.actor)}" if event.actor else ""
    detail = f" ({escape(event.detail)})" if event.detail else ""
    return f"• {local(event.at, zone)}: {event.kind.replace('_', ' ')}{who}{detail}"


def history_text(
    ticket: Ticket, reason: str, history: Sequence[TicketEvent], zone: ZoneInfo
) -> str:
    return f"Ticket #{ticket.id} escalated to you: {shown(ticket.summary)} ({escape(reason)})"


def history_blocks(
    ticket: Ticket, reason: str, history: Sequence[TicketEvent], zone: ZoneInfo
) -> list[dict[str, Any]]:
    # The newest events matter most to whoever takes it over; say how many older ones are left out.
    shown_events = [_event_line(e, zone) for e in history[-HISTORY_SHOWN:]]
    if len(history) > HISTORY_SHOWN:
        shown_events.insert(0, f"• … {len(history) - HISTORY_SHOWN} earlier events in the thread")
    history_sections = [
        section(chunk) for chunk in split_lines("*History*\n" + "\n".join(shown_events), 3000)
    ] or [section("*History*\n• (no history)")]
    details = quoted(ticket.details) if ticket.details else "_no details_"
    return [
        section(
            f":arrow_double_up: *Ticket {thread_link(ticket)} is escalated to you (T2)*\n"
            f"*{shown(ticket.summary)}* · severity {ticket.severity} · "
            f"asked by {person(ticket.requester)}\nWhy: {escape(reason)}"
        ),
        section(f"*Request*\n{details}"),
        *history_sections,
        {
            "type": "actions",
            "elements": [button("Claim", "support.claim", str(ticket.id), "primary")],
        },
    ]


def experts_rule_text(ticket: Ticket, queue: Queue) -> str:
    return (
        "The experts channel is open to all to read, but only the platform experts and the "
        "people on call post there, so it stays a fast track for T2 questions. Your message is "
        f"now support ticket {thread_link(ticket)} in `{escape(queue.id)}`, where the support "
        "rotation will pick it up."
    )


# ---- App Home -------------------------------------------------------------------------------


def home_section(
    assigned: Sequence[Ticket], asked: Sequence[Ticket], zone: ZoneInfo
) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [section("*:ticket: Support tickets assigned to you*")]
    if assigned:
        for t in assigned[:HOME_LISTED]:
            due = t.first_response_due if t.first_response_at is None else t.resolution_due
            when = f" · due {local(due, zone)}" if due else ""
            blocks.append(
                section(
                    f"{thread_link(t)} {shown(t.summary)}\n{STATE_LABELS[t.state]} · "
                    f"{t.severity} · Tier {t.tier}{when}"
                )
            )
        if len(assigned) > HOME_LISTED:
            blocks.append(context(f"… and {len(assigned) - HOME_LISTED} more, newer ones."))
    else:
        blocks.append(context("Nothing assigned to you."))
    blocks.append(section("*:raising_hand: Tickets you asked*"))
    if asked:
        for t in asked[:HOME_LISTED]:
            blocks.append(
                section(
                    f"{thread_link(t)} {shown(t.summary)}\n{STATE_LABELS[t.state]} · "
                    f"handled by {person(t.assignee)}"
                )
            )
        if len(asked) > HOME_LISTED:
            blocks.append(context(f"… and {len(asked) - HOME_LISTED} more, older ones."))
    else:
        blocks.append(context("No open requests from you."))
    return blocks


# ---- the report -----------------------------------------------------------------------------


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _duration(value: timedelta | None) -> str:
    return "-" if value is None else format_duration(value)


def report_text(report: SupportReport, zone: ZoneInfo) -> str:
    return (
        f"Support report for {report.queue_id}: {report.total} tickets, SLA attainment "
        f"{_share(report.sla_attainment)}"
    )


def report_blocks(report: SupportReport, zone: ZoneInfo) -> list[dict[str, Any]]:
    end_shown = report.end - timedelta(seconds=1)
    period = f"{report.start.astimezone(zone):%a %d %b} to {end_shown.astimezone(zone):%a %d %b %Y}"
    weeks = "week" if report.weeks == 1 else f"{report.weeks} weeks"
    satisfaction = (
        f"{report.satisfaction:.1f}/5 ({report.ratings} rating{'s' if report.ratings != 1 else ''})"
        if report.satisfaction
        else "-"
    )
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": text(f"Support report: {report.queue_id}"[:150], "plain_text"),
        },
        context(f"{period} ({weeks}) · times in {zone.key}"),
        {
            "type": "section",
            "fields": [
                text(f"*Tickets*\n{report.total}"),
                text(
                    f"*SLA attainment*\n{_share(report.sla_attainment)} "
                    f"({report.sla_met} of {report.sla_decided} decided)"
                ),
                text(f"*Median first response*\n{_duration(report.median_first_response)}"),
                text(f"*Median resolution*\n{_duration(report.median_resolution)}"),
                text(f"*Satisfaction*\n{satisfaction}"),
                text(
                    f"*Answered by docs*\n{_share(report.docs_share)} ({report.answered_by_docs})"
                ),
            ],
        },
    ]
    if report.by_category:
        lines = []
        for category, count in report.by_category.items():
            label = CATEGORIES.get(
                category, "Uncategorised" if category == UNCATEGORISED else category
            )
            flag = " :mag: *investigate*" if category in report.investigate else ""
            lines.append(f"• {label}: {count}{flag}")
        blocks.append(section("*By category*\n" + "\n".join(lines)))
        severities = " · ".join(
            f"{s} {report.by_severity[s]}" for s in SEVERITIES if report.by_severity.get(s)
        )
        blocks.append(section(f"*By severity*: {severities}"))
    if report.investigate:
        blocks.append(
            context(
                f":mag: More than {report.threshold} a week in a category: look for repetition "
                "to remove with documentation, training or platform changes."
            )
        )
    still_open = ", ".join(f"#{n}" for n in report.still_open[:30]) or "none"
    if len(report.still_open) > 30:
        still_open += f", … {len(report.still_open) - 30} more"
    blocks.append(section(f"*Still open at the end*: {len(report.still_open)} ({still_open})"))
    if report.load is not None:
        load = report.load
        verdict = (
            f":warning: above the book's {OPERATIONAL_LOAD_LIMIT:.0%}: little time is left to "
            "improve the platform"
            if load.over_limit
            else f"within the book's {OPERATIONAL_LOAD_LIMIT:.0%}"
        )
        blocks.append(
            section(
                f"*Operational load*: {_share(load.combined)} of the team's time "
                f"(on-call {_share(load.oncall)}, support rotation {_share(load.support)}, "
                f"{load.team_size} people), {verdict}."
            )
        )
    return blocks
