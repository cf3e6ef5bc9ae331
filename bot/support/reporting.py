"""Support reports: the facts of each ticket, the team's operational load, the weekly post."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, String, and_, case, cast, func, or_, select, type_coerce
from sqlmodel import Session

from bot import outbox
from bot.clock import wall_time_to_utc
from bot.config import OrgConfig, Queue
from bot.oncall.service import timeline
from bot.support import blocks
from bot.support.models import NEW, OPEN_STATES, REOPENED, RESOLVED, Ticket, TicketEvent
from bot.support.report import UNCATEGORISED, OperationalLoad, SupportReport, assemble_report

if TYPE_CHECKING:
    from bot.runtime import Runtime


# ---- reports --------------------------------------------------------------------------------


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
    """The queue's report for [start, end): a few aggregate queries, none per ticket."""
    queue = runtime.org.queue(queue_id)
    return ticket_report(
        session,
        queue.id,
        start,
        end,
        threshold=runtime.org.support.investigate_threshold,
        load=operational_load(runtime, session, queue.team, start, end),
    )


def ticket_report(
    session: Session,
    queue_id: str,
    start: datetime,
    end: datetime,
    *,
    threshold: int = 3,
    load: OperationalLoad | None = None,
) -> SupportReport:
    """The figures `build_report` computes from ticket facts, computed by the database: counts
    and SLA sums grouped by category and severity, the two duration columns for the medians,
    and the ids of the tickets still open at `end`."""
    t = Ticket.__table__.c  # type: ignore[attr-defined]
    opened = and_(t.queue_id == queue_id, t.opened_at >= start, t.opened_at < end)
    breached = or_(t.first_response_breached, t.resolution_breached)
    groups = session.execute(
        select(
            t.category,
            t.severity,
            func.count(),
            func.min(t.id),
            _count_where(or_(breached, t.resolved_at.is_not(None))),
            _count_where(and_(~breached, t.resolved_at.is_not(None))),
            func.count(t.rating),
            func.coalesce(func.sum(t.rating), 0),
            _count_where(t.resolution == "docs"),
        )
        .where(opened)
        .group_by(t.category, t.severity)
    ).all()
    by_category: Counter[str] = Counter()
    by_severity: Counter[str] = Counter()
    sla_met = sla_decided = rating_sum = ratings = docs = 0
    # Keys in order of their first ticket, as counting ticket by ticket would list them.
    for category, severity, count, _, decided, met, rated, rating_total, by_docs in sorted(
        groups, key=lambda g: g[3]
    ):
        by_category[category or UNCATEGORISED] += count
        by_severity[severity] += count
        if category != "office_hours":  # office hours have no SLA
            sla_decided += decided
            sla_met += met
        ratings += rated
        rating_sum += int(rating_total)
        docs += by_docs
    first_responses, resolutions = _durations(session, opened, end)
    return assemble_report(
        queue_id,
        start,
        end,
        by_category=by_category,
        by_severity=by_severity,
        sla_met=sla_met,
        sla_decided=sla_decided,
        first_responses=first_responses,
        resolutions=resolutions,
        rating_sum=rating_sum,
        ratings=ratings,
        answered_by_docs=docs,
        still_open=still_open_at(session, queue_id, start, end),
        threshold=threshold,
        load=load,
    )


def still_open_at(session: Session, queue_id: str, start: datetime, end: datetime) -> list[int]:
    """Tickets of the queue open at `end`: opened before it, and the last resolve or reopen
    before it (if any) was not a resolve. Only tickets the report window touches count: opened
    in it, open now, resolved in or after it, or reopened."""
    t = Ticket.__table__.c  # type: ignore[attr-defined]
    e = TicketEvent.__table__.c  # type: ignore[attr-defined]
    last_change = (
        select(e.state)
        .where(e.ticket_id == t.id, e.state.in_((RESOLVED, REOPENED)), e.at < end)
        .order_by(e.at.desc(), e.id.desc())
        .limit(1)
        .correlate(Ticket.__table__)
        .scalar_subquery()
    )
    touched = or_(
        t.opened_at >= start,
        t.state.in_(OPEN_STATES),
        t.resolved_at >= start,
    )
    return list(
        session.execute(
            select(t.id)
            .where(t.queue_id == queue_id, t.opened_at < end, touched)
            .where(func.coalesce(last_change, NEW) != RESOLVED)
            .order_by(t.id)
        ).scalars()
    )


def _durations(session: Session, opened: Any, end: datetime) -> tuple[list[float], list[float]]:
    """Seconds to first response, and to resolution (if before `end`), of the tickets opened in
    the window, exactly as timedelta.total_seconds() gives them. One pass over the tickets;
    converting every row's datetimes through the ORM types is what made the report slow."""
    t = Ticket.__table__.c  # type: ignore[attr-defined]
    ended = t.resolved_at < end
    if session.get_bind().dialect.name == "postgresql":

        def micros(later: Any) -> Any:
            return cast(func.extract("epoch", later - t.opened_at) * 1_000_000, BigInteger)

        rows = session.execute(
            select(micros(t.first_response_at), case((ended, micros(t.resolved_at)))).where(
                opened, or_(t.first_response_at.is_not(None), ended)
            )
        ).all()
        return (
            [m / 1_000_000 for m, _ in rows if m is not None],
            [m / 1_000_000 for _, m in rows if m is not None],
        )
    # SQLite keeps UTC as 'YYYY-MM-DD HH:MM:SS.ffffff' text: parsed here in one tight pass.
    parse = datetime.fromisoformat
    limit = end.astimezone(UTC).replace(tzinfo=None)
    first_responses: list[float] = []
    resolutions: list[float] = []
    for at, responded, resolved in session.execute(
        select(
            type_coerce(t.opened_at, String),
            type_coerce(t.first_response_at, String),
            type_coerce(t.resolved_at, String),
        ).where(opened, or_(t.first_response_at.is_not(None), ended))
    ):
        opened_at = parse(at)
        if responded is not None:
            first_responses.append((parse(responded) - opened_at).total_seconds())
        if resolved is not None and (done := parse(resolved)) < limit:
            resolutions.append((done - opened_at).total_seconds())
    return first_responses, resolutions


def _count_where(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


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
