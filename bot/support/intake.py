"""Support intake: a request from any door becomes a ticket, routed to office hours, the SLA clock
or the critical gate's page; posts in the experts channel by people who may not post there."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from bot import outbox
from bot.business_hours import BusinessCalendar, Holidays
from bot.clock import wall_time_to_utc
from bot.config import WEEKDAYS, OrgConfig, Queue
from bot.errors import InvalidInput, NotFound
from bot.mrkdwn import split_lines, to_plain
from bot.paging.service import trigger_page
from bot.support import blocks
from bot.support.models import (
    BUSINESS_IMPACTS,
    CATEGORIES,
    NEW,
    SEVERITIES,
    Ticket,
)
from bot.support.service import (
    arm,
    card,
    card_key,
    disarm,
    may_post_in_experts,
    queue_for_text,
    record,
    rotation_person,
    sla_state,
)

if TYPE_CHECKING:
    from bot.runtime import Runtime


class CriticalGateNotMet(InvalidInput):
    """A request asked to be critical without the two conditions the book asks for."""


# ---- intake ---------------------------------------------------------------------------------


@dataclass
class Request:
    """What someone asked for, from any door: a channel message, /support, a shortcut."""

    queue_id: str
    requester: str
    summary: str
    intake: str
    details: str = ""
    category: str | None = None
    severity: str = "normal"
    application_id: str | None = None
    business_impact: str | None = None
    why_now: str | None = None
    source_channel: str | None = None
    source_ts: str | None = None


@dataclass
class Opened:
    ticket: Ticket
    created: bool
    notices: list[str] = field(default_factory=list)


def summary_of(text: str) -> str:
    """The first line of a request, up to 150 characters, never cut inside a token or entity."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first if len(first) <= 150 else split_lines(first, 147)[0].rstrip() + "..."


def critical_problems(business_impact: str | None, why_now: str | None) -> dict[str, str]:
    """The seeds' two conditions for a critical request; field -> what is missing."""
    problems = {}
    if business_impact not in BUSINESS_IMPACTS:
        problems["impact"] = "Critical needs the type of business impact."
    if not (why_now or "").strip():
        problems["why_now"] = "Critical needs why engaging an engineer now would help."
    return problems


def validate(org: OrgConfig, request: Request) -> None:
    if not request.summary.strip():
        raise InvalidInput("A support request needs a summary.")
    if request.category is not None and request.category not in CATEGORIES:
        raise InvalidInput(
            f"'{request.category}' is not a category (one of: {', '.join(CATEGORIES)})."
        )
    if request.severity not in SEVERITIES:
        raise InvalidInput(
            f"'{request.severity}' is not a severity (one of: {', '.join(SEVERITIES)})."
        )
    if request.application_id and org.application(request.application_id) is None:
        raise InvalidInput(f"There is no application '{request.application_id}' in the org config.")
    if request.severity == "critical":
        problems = critical_problems(request.business_impact, request.why_now)
        if problems:
            raise CriticalGateNotMet(" ".join(problems.values()))


def existing_ticket(session: Session, channel: str | None, ts: str | None) -> Ticket | None:
    if not channel or not ts:
        return None
    return session.exec(
        select(Ticket).where(Ticket.source_channel == channel, Ticket.source_ts == ts)
    ).first()


def open_ticket(runtime: Runtime, session: Session, request: Request) -> Opened:
    """Create the ticket, assign T1, route it (SLA, office hours, critical page), post its card."""
    org = runtime.org
    now = runtime.clock.now()
    validate(org, request)
    queue = org.queue(request.queue_id)
    found = existing_ticket(session, request.source_channel, request.source_ts)
    if found is not None:
        return Opened(found, created=False)
    in_queue_channel = request.source_channel in queue.channels and request.source_ts
    ticket = Ticket(
        queue_id=queue.id,
        team_id=queue.team,
        requester=request.requester,
        summary=summary_of(request.summary),
        details=request.details.strip(),
        category=request.category,
        severity=request.severity,
        application_id=request.application_id or None,
        business_impact=request.business_impact if request.severity == "critical" else None,
        why_now=(request.why_now or "").strip() or None,
        intake=request.intake,
        source_channel=request.source_channel,
        source_ts=request.source_ts,
        thread_channel=request.source_channel if in_queue_channel else queue.channels[0],
        thread_ts=request.source_ts if in_queue_channel else None,
        assignee=rotation_person(runtime, session, queue.t1, besides=request.requester),
        opened_at=now,
        updated_at=now,
    )
    # The unique (source_channel, source_ts) makes a concurrent second delivery of the same
    # message fail here and roll back whole, so the first one owns the ticket.
    session.add(ticket)
    session.flush()
    record(session, ticket, "opened", now, request.requester, request.intake, state=NEW)
    notices = route(runtime, session, ticket, now)
    view = card(runtime, session, ticket, notices)
    outbox.post(
        session,
        card_key(ticket),
        ticket.thread_channel or queue.channels[0],
        blocks.card_text(view),
        now,
        blocks=blocks.ticket_card(view),
        thread_ts=ticket.thread_ts,
        unfurl_links=False,
    )
    if ticket.assignee and ticket.assignee != ticket.requester:
        outbox.post(
            session,
            f"support:ticket:{ticket.id}:assigned:{ticket.assignee}",
            ticket.assignee,
            blocks.assigned_text(ticket, queue),
            now,
        )
    return Opened(ticket, created=True, notices=notices)


def route(runtime: Runtime, session: Session, ticket: Ticket, now: datetime) -> list[str]:
    """Office hours, the critical gate's page, or the SLA clock; returns notices for the card."""
    org = runtime.org
    queue = org.queue(ticket.queue_id)
    if ticket.category == "office_hours":
        return [schedule_office_hours(runtime, session, ticket, now)]
    notices = []
    if ticket.severity == "critical":
        notices.append(route_critical(runtime, session, ticket, queue, now))
    arm(org, session, ticket, now)
    return notices


# ---- office hours ---------------------------------------------------------------------------


def next_office_hours(org: OrgConfig, queue: Queue, after: datetime) -> tuple[datetime, datetime]:
    """The queue's next office-hours slot that starts after `after` (holidays skipped)."""
    hours = queue.office_hours
    if hours is None:
        raise NotFound(f"Queue '{queue.id}' has no office hours configured.")
    zone = org.zone(queue.team)
    day = after.astimezone(zone).date()
    weekday = WEEKDAYS.index(hours.weekday)
    days_off = Holidays.for_team(org, queue.team)
    for offset in range(7 * 60):
        candidate = day + timedelta(days=offset)
        if candidate.weekday() != weekday or candidate in days_off:
            continue
        start = wall_time_to_utc(datetime.combine(candidate, hours.time), zone)
        if start > after:
            return start, start + hours.length
    raise NotFound(f"No office-hours slot of queue '{queue.id}' in the next year.")


def schedule_office_hours(runtime: Runtime, session: Session, ticket: Ticket, now: datetime) -> str:
    org = runtime.org
    queue = org.queue(ticket.queue_id)
    disarm(session, ticket)
    ticket.first_response_due = ticket.resolution_due = None
    if queue.office_hours is None:
        ticket.office_hours_at = None
        arm(org, session, ticket, now)
        return "This queue has no office hours, so the design question is handled in the queue."
    start, end = next_office_hours(org, queue, now)
    ticket.office_hours_at = start
    record(session, ticket, "office_hours", now, detail=start.isoformat())
    return blocks.office_hours_notice(start, end, org.zone(queue.team))


# ---- the critical gate ----------------------------------------------------------------------


def should_page(org: OrgConfig, ticket: Ticket, now: datetime) -> tuple[bool, str]:
    """A critical request pages for a Tier 0 or 1 application, or outside business hours."""
    app = org.application(ticket.application_id) if ticket.application_id else None
    if app is not None and app.tier <= 1:
        return True, f"{app.name} is a Tier {app.tier} application"
    if not BusinessCalendar.for_team(org, ticket.team_id).contains(now):
        return True, "it is outside business hours"
    which = f"{app.name} is Tier {app.tier}" if app else "no Tier 0 or 1 application is named"
    return False, f"{which} and it is business hours"


def route_critical(
    runtime: Runtime, session: Session, ticket: Ticket, queue: Queue, now: datetime
) -> str:
    org = runtime.org
    page_now, reason = should_page(org, ticket, now)
    if page_now and queue.critical_policy:
        page = trigger_page(
            runtime,
            session,
            policy_id=queue.critical_policy,
            # Paging escapes what it shows; the ticket's text is mrkdwn already.
            summary=f"Support #{ticket.id}: {to_plain(ticket.summary)}",
            details=to_plain(ticket.details),
            source="support",
            dedup_key=f"support:ticket:{ticket.id}",
            team_id=queue.team,
            requested_by=ticket.requester,
            business_impact=BUSINESS_IMPACTS.get(ticket.business_impact or ""),
            why_page=ticket.why_now,
            labels={
                "queue": queue.id,
                "ticket": str(ticket.id),
                "application": ticket.application_id or "",
            },
        )
        ticket.page_id = page.id
        t2 = rotation_person(runtime, session, queue.t2, besides=ticket.requester)
        if t2:
            ticket.tier, ticket.assignee = 2, t2
        record(session, ticket, "paged", now, detail=f"page {page.id} via {queue.critical_policy}")
        return blocks.paged_notice(page.id, queue.critical_policy, reason)
    calendar = BusinessCalendar.for_team(org, ticket.team_id)
    today = now.astimezone(calendar.zone).date()
    window = calendar.window(today)
    closes = window[1] if window else now
    next_day = calendar.next_open(max(closes, now) + timedelta(seconds=1))
    record(session, ticket, "not_paged", now, detail=reason)
    if page_now:  # outside hours, but the queue has nobody to page
        reason = f"{reason}, but queue {queue.id} has no critical_policy"
    state = sla_state(org, session, ticket)
    first_due = state.first_response.due_at if state and state.first_response else None
    return blocks.next_business_day_notice(reason, now, closes, next_day, first_due, calendar.zone)


# ---- the experts channel --------------------------------------------------------------------


def experts_post(
    runtime: Runtime, session: Session, channel: str, user: str, text: str, ts: str
) -> Opened | None:
    """Someone who may not post in the experts channel did: their post becomes a ticket."""
    if may_post_in_experts(runtime, session, user):
        return None
    queue = queue_for_text(runtime.org, text)
    opened = open_ticket(
        runtime,
        session,
        Request(
            queue_id=queue.id,
            requester=user,
            summary=text,
            details=text,
            intake="experts",
            source_channel=channel,
            source_ts=ts,
        ),
    )
    if opened.created:
        now = runtime.clock.now()
        outbox.enqueue(
            session,
            f"support:ticket:{opened.ticket.id}:experts-why",
            "chat.postEphemeral",
            {
                "channel": channel,
                "user": user,
                "text": blocks.experts_rule_text(opened.ticket, queue),
            },
            now,
        )
    return opened
