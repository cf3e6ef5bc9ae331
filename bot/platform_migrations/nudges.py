"""Nudges: how often owners hear about released work, and when in their own day.

More often as the deadline nears (`nudge_cadence`), never beyond the 12-month horizon
(`info_only_beyond`), only inside each owner's `working_hours` in their own zone on working days,
and batched: one DM per owner covering every migration they have released work in.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from bot import outbox
from bot.clock import wall_time_to_utc
from bot.config import NudgeBand, OrgConfig, WorkingHours
from bot.platform_migrations import blocks, flows, steps
from bot.platform_migrations.blocks import WorkItem
from bot.platform_migrations.models import Migration, OwnerNudge
from bot.platform_migrations.targets import targets
from bot.scheduler import cancel_timers, set_timer

if TYPE_CHECKING:
    from bot.runtime import Runtime

DEFAULT_CADENCE = (
    NudgeBand(until=timedelta(weeks=12), every=timedelta(weeks=2)),
    NudgeBand(until=timedelta(weeks=4), every=timedelta(weeks=1)),
    NudgeBand(until=timedelta(weeks=1), every=timedelta(days=2)),
    NudgeBand(until=timedelta(0), every=timedelta(days=1)),
)
# Inside the horizon but further out than every band: a monthly word is enough.
BEYOND_BANDS = timedelta(weeks=4)
NUDGE_TIMER = "migration.nudge"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def deadline_instant(org: OrgConfig, deadline: date) -> datetime:
    return wall_time_to_utc(datetime.combine(deadline, time(0)), ZoneInfo(org.timezone))


def interval(org: OrgConfig, migration: Migration, now: datetime) -> timedelta | None:
    """How often owners hear now; None beyond the horizon (notices only)."""
    if flows.info_only(org, migration, now):
        return None
    left = deadline_instant(org, migration.deadline) - now
    bands = org.platform_migrations.nudge_cadence or list(DEFAULT_CADENCE)
    fitting = [b for b in bands if left <= b.until]
    if not fitting:
        return BEYOND_BANDS
    return min(fitting, key=lambda b: b.until).every


def next_slot(after: datetime, zone: ZoneInfo, hours: WorkingHours, days: list[str]) -> datetime:
    """The first instant at or after `after` inside the working hours of a working day, in
    `zone` (DST-aware: a start time in a spring-forward gap moves to the first valid instant)."""
    local_day = after.astimezone(zone).date()
    for offset in range(0, 15):
        day = local_day + timedelta(days=offset)
        if WEEKDAYS[day.weekday()] not in days:
            continue
        start = wall_time_to_utc(datetime.combine(day, hours.start), zone)
        end = wall_time_to_utc(datetime.combine(day, hours.end), zone)
        if after < start:
            return start
        if after < end:
            return after
    raise ValueError("no working day in the next two weeks")  # config allows no such week


def in_working_hours(
    instant: datetime, zone: ZoneInfo, hours: WorkingHours, days: list[str]
) -> bool:
    return next_slot(instant, zone, hours, days) == instant


def candidates(org: OrgConfig, session: Session, now: datetime) -> dict[str, list[Migration]]:
    """person -> migrations whose nudge is due for them (cheap: no Slack, no ownership walk)."""
    live = {m.id: m for m in flows.live_migrations(session)}
    every = {mid: interval(org, m, now) for mid, m in live.items()}
    found: dict[str, list[Migration]] = defaultdict(list)
    if not any(every.values()):
        return found
    rows = session.exec(
        select(OwnerNudge).where(col(OwnerNudge.migration_id).in_(list(live)))
    ).all()
    due_people = set()
    for row in rows:
        gap = every[row.migration_id]
        if gap is None or (row.snoozed_until is not None and row.snoozed_until > now):
            continue
        found[row.person].append(live[row.migration_id])
        last = row.last_nudged_at
        horizon = flows.horizon_start(org, live[row.migration_id])
        # Coming within the horizon is news in itself: the first nudge goes out then.
        if last is None or last + gap <= now or last.date() < horizon:
            due_people.add(row.person)
    # A person with one due migration hears about all their others in the same DM.
    return {person: found[person] for person in sorted(due_people)}


def work_of(
    runtime: Runtime,
    session: Session,
    person: str,
    migrations: list[Migration],
    owners: dict[tuple[str, str], list[str]],
) -> list[WorkItem]:
    """The person's released, unfinished work in these migrations (owners memoised per run)."""
    org = runtime.org
    items: list[WorkItem] = []
    for migration in migrations:
        for target in targets(session, migration.id):
            key = (migration.id, target.service)
            if key not in owners:
                in_scope = steps.in_pilot_scope(session, org, migration, target.service)
                found = flows.owners_by_person(runtime, session, migration, [target.service])
                owners[key] = list(found) if in_scope else []
            if person in owners[key]:
                items += flows.work_items(session, migration, target.service, blocked=False)
    return items


def run_nudges(runtime: Runtime, session: Session) -> list[str]:
    """Send the nudges due now; returns who was nudged."""
    org, now = runtime.org, runtime.clock.now()
    settings = org.platform_migrations
    days = list(org.business_hours.days)
    owners: dict[tuple[str, str], list[str]] = {}
    nudged = []
    for person, migrations in candidates(org, session, now).items():
        zone = runtime.directory.zone(person, session) or ZoneInfo(org.timezone)
        if not in_working_hours(now, zone, settings.working_hours, days):
            continue
        items = work_of(runtime, session, person, migrations, owners)
        if not items:  # all their work is finished or waiting: look again next interval
            for migration in migrations:
                flows.nudge_row(session, migration.id, person).last_nudged_at = now
            continue
        text, body = blocks.nudge(items, {m.id: blocks.deadline_text(m) for m in migrations})
        outbox.post(
            session,
            f"migration:nudge:{person}:{now.isoformat()}",
            person,
            text,
            now,
            blocks=body,
            unfurl_links=False,
        )
        for migration_id in {i.migration.id for i in items}:
            row = flows.nudge_row(session, migration_id, person)
            row.last_nudged_at = now
            row.unanswered += 1
            steps.record(session, migration_id, "nudged", now, actor=person)
        nudged.append(person)
    return nudged


def next_nudge(runtime: Runtime, session: Session) -> datetime | None:
    """The earliest instant any owner's nudge falls due, placed inside their working hours."""
    org, now = runtime.org, runtime.clock.now()
    live = {m.id: m for m in flows.live_migrations(session)}
    if not live:
        return None
    rows = session.exec(
        select(OwnerNudge).where(col(OwnerNudge.migration_id).in_(list(live)))
    ).all()
    days = list(org.business_hours.days)
    soonest: datetime | None = None
    for row in rows:
        migration = live[row.migration_id]
        horizon = wall_time_to_utc(
            datetime.combine(flows.horizon_start(org, migration), time(0)), ZoneInfo(org.timezone)
        )
        gap = interval(org, migration, max(now, horizon))
        last = row.last_nudged_at
        due = horizon if last is None or last < horizon else last + (gap or BEYOND_BANDS)
        if row.snoozed_until is not None:
            due = max(due, row.snoozed_until)
        zone = runtime.directory.zone(row.person, session) or ZoneInfo(org.timezone)
        slot = next_slot(max(due, now), zone, org.platform_migrations.working_hours, days)
        if soonest is None or slot < soonest:
            soonest = slot
    return soonest


def schedule(runtime: Runtime, session: Session) -> datetime | None:
    """Keep one pending nudge timer, at the next instant anyone is due (so the scheduler only
    wakes when there is someone to nudge)."""
    cancel_timers(session, NUDGE_TIMER, "next")
    when = next_nudge(runtime, session)
    if when is not None:
        set_timer(session, NUDGE_TIMER, "next", when, runtime.clock.now())
    return when
