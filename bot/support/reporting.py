"""Support reports: the facts of each ticket, the team's operational load, the weekly post."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from bot import outbox
from bot.clock import wall_time_to_utc
from bot.config import OrgConfig, Queue
from bot.oncall.service import timeline
from bot.support import blocks
from bot.support.models import (
    REOPENED,
    RESOLVED,
    Ticket,
)
from bot.support.report import OperationalLoad, SupportReport, TicketFacts, build_report
from bot.support.service import (
    events_of,
)

if TYPE_CHECKING:
    from bot.runtime import Runtime


# ---- reports --------------------------------------------------------------------------------


def facts_of(session: Session, ticket: Ticket) -> TicketFacts:
    lifecycle = tuple(
        (e.at, e.state) for e in events_of(session, ticket) if e.state in (RESOLVED, REOPENED)
    )
    return TicketFacts(
        number=ticket.id or 0,
        category=ticket.category,
        severity=ticket.severity,
        opened_at=ticket.opened_at,
        first_response_at=ticket.first_response_at,
        resolved_at=ticket.resolved_at,
        first_response_breached=ticket.first_response_breached,
        resolution_breached=ticket.resolution_breached,
        has_sla=ticket.category != "office_hours",
        rating=ticket.rating,
        answered_by_docs=ticket.resolution == "docs",
        lifecycle=lifecycle,  # type: ignore[arg-type]
    )


def operational_load(
    runtime: Runtime, session: Session, team_id: str, start: datetime, end: datetime
) -> OperationalLoad | None:
    """The team's time on on-call and support rotation shifts (the on-call capability's timeline)."""
    org = runtime.org
    team = org.team(team_id)
    if not team.members or end <= start:
        return None
    held = {"oncall": timedelta(0), "support": timedelta(0)}
    for rotation in org.rotations_of_team(team_id):
        for segment in timeline(session, org, rotation.id, start, end):
            held[rotation.kind] += min(segment.end, end) - max(segment.start, start)
    capacity = (end - start) * len(team.members)
    return OperationalLoad(
        team_size=len(team.members),
        oncall=held["oncall"] / capacity,
        support=held["support"] / capacity,
    )


def report(
    runtime: Runtime, session: Session, queue_id: str, start: datetime, end: datetime
) -> SupportReport:
    queue = runtime.org.queue(queue_id)
    rows = session.exec(
        select(Ticket).where(Ticket.queue_id == queue.id, Ticket.opened_at < end)
    ).all()
    relevant = [
        t
        for t in rows
        if t.opened_at >= start
        or t.is_open
        or (t.resolved_at and t.resolved_at >= start)
        or t.state == REOPENED
    ]
    return build_report(
        queue.id,
        [facts_of(session, t) for t in relevant],
        start,
        end,
        threshold=runtime.org.support.investigate_threshold,
        load=operational_load(runtime, session, queue.team, start, end),
    )


def report_window(
    org: OrgConfig, queue: Queue, now: datetime, weeks: int
) -> tuple[datetime, datetime]:
    """The last `weeks` whole weeks, Monday to Monday in the team's zone, ending this Monday."""
    zone = org.zone(queue.team)
    local = now.astimezone(zone).date()
    monday = local - timedelta(days=local.weekday())
    end = wall_time_to_utc(datetime.combine(monday, datetime.min.time()), zone)
    start_day: date = monday - timedelta(weeks=weeks)
    start = wall_time_to_utc(datetime.combine(start_day, datetime.min.time()), zone)
    return start, end


def current_window(now: datetime, weeks: int) -> tuple[datetime, datetime]:
    """The last `weeks` weeks up to and including this instant."""
    return now - timedelta(weeks=weeks), now + timedelta(microseconds=1)


def weekly_report_due(org: OrgConfig, queue: Queue, after: datetime) -> datetime:
    """Mondays at 09:00 in the team's zone, the first strictly after `after`."""
    zone = org.zone(queue.team)
    day = after.astimezone(zone).date()
    day -= timedelta(days=day.weekday())
    while True:
        due = wall_time_to_utc(datetime.combine(day, datetime.min.time().replace(hour=9)), zone)
        if due > after:
            return due
        day += timedelta(weeks=1)


def post_weekly_report(runtime: Runtime, session: Session, queue_id: str, due: datetime) -> None:
    org = runtime.org
    queue = org.queue(queue_id)
    channel = org.team(queue.team).channel
    if not channel:
        return
    start, end = report_window(org, queue, due, 1)
    found = report(runtime, session, queue.id, start, end)
    zone = org.zone(queue.team)
    outbox.post(
        session,
        f"support:report:{queue.id}:{end.isoformat()}",
        channel,
        blocks.report_text(found, zone),
        due,
        blocks=blocks.report_blocks(found, zone),
    )
