"""Wires platform migrations into the runtime: the sync timer, the nudge run, the daily summary."""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot import outbox
from bot.clock import wall_time_to_utc
from bot.platform_migrations import flows, nudges, reports
from bot.platform_migrations.loading import get_migration
from bot.platform_migrations.models import LIVE_STAGES
from bot.scheduler import RecurringJob, Timer

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

SUMMARY_AT = time(9, 0)
WEEKDAYS = nudges.WEEKDAYS


def install(runtime: Runtime) -> None:
    def on_sync(session: Session, timer: Timer, now: datetime) -> None:
        ids = [m.id for m in flows.live_migrations(session)] if timer.ref == "*" else [timer.ref]
        for migration_id in ids:
            flows.sync(runtime, session, get_migration(session, migration_id))
        nudges.schedule(runtime, session)

    def on_nudge(session: Session, timer: Timer, now: datetime) -> None:
        nudges.run_nudges(runtime, session)
        nudges.schedule(runtime, session)

    runtime.scheduler.on_timer(flows.SYNC_TIMER, on_sync)
    runtime.scheduler.on_timer(nudges.NUDGE_TIMER, on_nudge)
    runtime.scheduler.add_job(
        RecurringJob(
            "migration.daily",
            lambda after: daily_due(runtime, after),
            lambda session, due: daily(runtime, session),
            grace=timedelta(hours=3),
        )
    )


def summary_zone(runtime: Runtime) -> ZoneInfo:
    return runtime.org.zone(runtime.org.platform_migrations.platform_team)


def daily_due(runtime: Runtime, after: datetime) -> datetime:
    """09:00 on each working day in the platform team's zone."""
    zone = summary_zone(runtime)
    days = runtime.org.business_hours.days
    day = after.astimezone(zone).date()
    for offset in range(0, 15):
        candidate = day + timedelta(days=offset)
        if WEEKDAYS[candidate.weekday()] not in days:
            continue
        due = wall_time_to_utc(datetime.combine(candidate, SUMMARY_AT), zone)
        if due > after:
            return due
    raise ValueError("no working day in two weeks")


def daily(runtime: Runtime, session: Session) -> None:
    """Re-check every live migration (catalog facts, expired exemptions), then tell the
    platform team what moved."""
    now = runtime.clock.now()
    summaries = []
    for migration in flows.live_migrations(session):
        flows.sync(runtime, session, migration)
        if migration.stage in LIVE_STAGES:
            summary = reports.daily_summary(session, migration, now)
            if not summary.empty:
                summaries.append(summary)
    nudges.schedule(runtime, session)
    team_id = runtime.org.platform_migrations.platform_team
    if not summaries or not team_id:
        return
    team = runtime.org.team(team_id)
    where = team.channel or (team.managers[0] if team.managers else None)
    if where is None:
        log.info("no channel or manager for the platform team; daily summary not sent")
        return
    text = reports.summary_mrkdwn(summaries)
    outbox.post(session, f"migration:daily:{now.date().isoformat()}", where, text, now)
