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

from sqlmodel import Session

from bot import outbox
from bot.clock import wall_time_to_utc
from bot.config import NudgeBand, OrgConfig, WorkingHours
from bot.platform_migrations import blocks, flows, steps
from bot.platform_migrations.blocks import WorkItem
from bot.platform_migrations.models import Migration
from bot.platform_migrations.targets import targets

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
RUN_EVERY = timedelta(minutes=30)
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


def next_run(after: datetime) -> datetime:
    """Every half hour on the UTC clock, so half-hour zones start their day on time too."""
    step = int(RUN_EVERY.total_seconds())
    seconds = int(after.timestamp()) // step * step + step
    return datetime.fromtimestamp(seconds, tz=after.tzinfo)


def due_work(runtime: Runtime, session: Session) -> dict[str, list[WorkItem]]:
    """person -> released, unfinished work in migrations that may nudge now."""
    org, now = runtime.org, runtime.clock.now()
    found: dict[str, list[WorkItem]] = defaultdict(list)
    for migration in flows.live_migrations(session):
        if interval(org, migration, now) is None:
            continue
        for target in targets(session, migration.id):
            if not steps.in_pilot_scope(session, org, migration, target.service):
                continue
            items = flows.work_items(session, migration, target.service)
            if not items:
                continue
            owners = flows.owners_by_person(runtime, session, migration, [target.service])
            for person in owners:
                found[person] += items
    return found


def run_nudges(runtime: Runtime, session: Session) -> list[str]:
    """Send the nudges due now; returns who was nudged."""
    org, now = runtime.org, runtime.clock.now()
    settings = org.platform_migrations
    days = list(org.business_hours.days)
    nudged = []
    for person, items in sorted(due_work(runtime, session).items()):
        zone = runtime.directory.zone(person, session) or ZoneInfo(org.timezone)
        if not in_working_hours(now, zone, settings.working_hours, days):
            continue
        by_migration: dict[str, list[WorkItem]] = defaultdict(list)
        for item in items:
            by_migration[item.migration.id].append(item)
        included: list[WorkItem] = []
        any_due = False
        for migration_id, its in by_migration.items():
            row = flows.nudge_row(session, migration_id, person)
            if row.snoozed_until is not None and row.snoozed_until > now:
                continue
            every = interval(org, its[0].migration, now)
            assert every is not None
            last = row.last_nudged_at
            if last is None or last + every <= now:
                any_due = True
            included += its
        if not any_due or not included:
            continue
        deadlines = {i.migration.id: blocks.deadline_text(i.migration) for i in included}
        text, body = blocks.nudge(included, deadlines)
        outbox.post(
            session,
            f"migration:nudge:{person}:{now.isoformat()}",
            person,
            text,
            now,
            blocks=body,
            unfurl_links=False,
        )
        for migration_id in {i.migration.id for i in included}:
            row = flows.nudge_row(session, migration_id, person)
            row.last_nudged_at = now
            row.unanswered += 1
            steps.record(session, migration_id, "nudged", now, actor=person)
        nudged.append(person)
    return nudged
