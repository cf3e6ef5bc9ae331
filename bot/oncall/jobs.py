"""Wires on-call into the runtime: handoff, notes-prompt and reminder jobs, timers, roster sync.

Every wall-clock instant comes from the rotation's `Cadence` (zone- and DST-aware); the
scheduler only runs the job at that instant, claimed once across replicas.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from bot.config import Rotation
from bot.oncall import flows, service
from bot.oncall.schedule import Cadence
from bot.runtime import Runtime
from bot.scheduler import RecurringJob, Timer

log = logging.getLogger(__name__)

NOTES_PROMPT_LEAD = timedelta(hours=1)
# A firing missed while no process ran is still worth doing this late, not later.
HANDOFF_GRACE = timedelta(minutes=15)


def install(runtime: Runtime) -> None:
    org = runtime.org
    resolve = runtime.directory.user_id
    for rotation in org.rotations:
        _add_rotation_jobs(runtime, rotation)

    def on_edge(session: Session, timer: Timer, now: datetime) -> None:
        # An override's edge is a change of hands like a scheduled handoff (the report's keys
        # are the same, so an edge on a handoff reports once).
        flows.handoff(
            session, org, timer.payload["rotation"], timer.due_at, now, resolve, runtime.extras
        )
        flows.sync_presence(session, org, timer.payload["rotation"], now, resolve)

    def on_override_reminder(session: Session, timer: Timer, now: datetime) -> None:
        flows.on_override_reminder(session, org, timer, now, resolve)

    def on_swap_expiry(session: Session, timer: Timer, now: datetime) -> None:
        swap = service.expire_swap(session, int(timer.payload["swap"]), now)
        if swap is not None:
            flows.announce_swap_expired(session, org, swap, now, resolve)

    runtime.scheduler.on_timer(flows.EDGE_TIMER, on_edge)
    runtime.scheduler.on_timer(flows.OVERRIDE_REMINDER_TIMER, on_override_reminder)
    runtime.scheduler.on_timer(flows.SWAP_EXPIRY_TIMER, on_swap_expiry)

    def sync() -> None:
        try:
            sync_rosters(runtime)
        except DBAPIError as exc:  # e.g. `serve` before `db upgrade` has created the tables
            log.info("on-call roster sync skipped: %s", exc.__class__.__name__)

    sync()
    runtime.scheduler.after_tick.append(sync)
    try:
        reconcile_presence(runtime)
    except DBAPIError as exc:
        log.info("on-call user group and topic sync skipped: %s", exc.__class__.__name__)


def reconcile_presence(runtime: Runtime) -> None:
    """On start, set every rotation's user group and channel topic from who is on call now: a
    handoff missed while the bot was down (or a first start) is put right at once."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        for rotation in runtime.org.rotations:
            flows.sync_presence(session, runtime.org, rotation.id, now, runtime.directory.user_id)


def sync_rosters(runtime: Runtime) -> None:
    """Record config member changes (they reorder only future shifts) and tell who moved."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        for change in service.sync_rosters(session, runtime.org, now):
            flows.announce_roster_change(
                session, runtime.org, change, now, runtime.directory.user_id
            )


def _add_rotation_jobs(runtime: Runtime, rotation: Rotation) -> None:
    org = runtime.org
    resolve = runtime.directory.user_id
    cadence = Cadence.of(rotation, org.rotation_zone(rotation.id))

    def run_handoff(session: Session, due: datetime) -> None:
        flows.handoff(session, org, rotation.id, due, runtime.clock.now(), resolve, runtime.extras)

    def run_prompt(session: Session, due: datetime) -> None:
        flows.prompt_for_notes(
            session, org, rotation.id, due + NOTES_PROMPT_LEAD, runtime.clock.now(), resolve
        )

    runtime.scheduler.add_job(
        RecurringJob(
            f"oncall.handoff:{rotation.id}", cadence.next_handoff_after, run_handoff, HANDOFF_GRACE
        )
    )
    runtime.scheduler.add_job(
        RecurringJob(
            f"oncall.notes_prompt:{rotation.id}",
            _before(cadence, NOTES_PROMPT_LEAD),
            run_prompt,
            HANDOFF_GRACE,
        )
    )
    for lead in rotation.reminders:

        def run_reminder(session: Session, due: datetime, lead: timedelta = lead) -> None:
            flows.remind(session, org, rotation.id, due + lead, lead, runtime.clock.now(), resolve)

        runtime.scheduler.add_job(
            RecurringJob(
                f"oncall.reminder:{rotation.id}:{int(lead.total_seconds())}s",
                _before(cadence, lead),
                run_reminder,
                HANDOFF_GRACE,
            )
        )


def _before(cadence: Cadence, lead: timedelta):  # -> Callable[[datetime], datetime]
    """next_due for "`lead` before every handoff": the first such instant strictly after t."""

    def next_due(t: datetime) -> datetime:
        return cadence.next_handoff_after(t + lead) - lead

    return next_due
