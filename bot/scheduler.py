"""Scheduling: recurring jobs and one-off timers, each firing claimed in the database so it runs once.

Wall-clock cadences (handoffs at 10:00 local, digests every other Wednesday) are computed by the
capability's own `next_due` function, which knows the zone and DST; APScheduler only wakes the
process at the next instant with a one-off date trigger. Each firing is claimed by
(job name, due time) in the same transaction as its work, so it runs exactly once across restarts
and replicas, and firings missed while the process was down run on start within a grace window.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint, and_, event, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Field, Session, SQLModel, col, select

from bot import metrics
from bot.clock import Clock
from bot.db import Database, UTCDateTime

log = logging.getLogger(__name__)

# The soonest timer a session set, so a running scheduler in this process can wake for it once
# the session commits (timers other processes set are found by the capped wake-ups).
_SOONEST_TIMER = "opsbot.soonest_timer"


class JobRun(SQLModel, table=True):
    __tablename__ = "job_runs"

    job: str = Field(primary_key=True, max_length=200)
    due_at: datetime = Field(primary_key=True, sa_type=UTCDateTime)
    ran_at: datetime = Field(sa_type=UTCDateTime)


class Timer(SQLModel, table=True):
    """A one-off instant at which a capability wants to act (an escalation step, an SLA reminder)."""

    __tablename__ = "timers"
    __table_args__ = (UniqueConstraint("kind", "ref", "due_at", name="uq_timers_kind_ref_due"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=64, index=True)
    ref: str = Field(max_length=200, index=True)
    due_at: datetime = Field(sa_type=UTCDateTime, index=True)
    status: str = Field(default="pending", max_length=16, index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    attempts: int = 0
    created_at: datetime = Field(sa_type=UTCDateTime)
    fired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)


def set_timer(
    session: Session,
    kind: str,
    ref: str,
    due_at: datetime,
    now: datetime,
    payload: dict[str, Any] | None = None,
) -> Timer:
    """Schedule a one-off; setting the same (kind, ref, due_at) twice keeps one timer."""
    existing = session.exec(
        select(Timer).where(Timer.kind == kind, Timer.ref == ref, Timer.due_at == due_at)
    ).first()
    if existing is not None:
        if existing.status == "cancelled":
            existing.status = "pending"
        return existing
    timer = Timer(kind=kind, ref=ref, due_at=due_at, payload=payload or {}, created_at=now)
    session.add(timer)
    session.flush()
    soonest = session.info.get(_SOONEST_TIMER)
    if soonest is None or due_at < soonest:
        session.info[_SOONEST_TIMER] = due_at
    return timer


def set_timers(
    session: Session, kind: str, wanted: Sequence[tuple[str, datetime]], now: datetime
) -> list[Timer]:
    """`set_timer` for several (ref, due_at) of one kind: one look-up and one flush for all of
    them instead of a round trip each (an SLA arms four timers per ticket)."""
    if not wanted:
        return []
    found = session.exec(
        select(Timer).where(
            Timer.kind == kind,
            or_(*(and_(Timer.ref == ref, Timer.due_at == due_at) for ref, due_at in wanted)),
        )
    ).all()
    existing = {(t.ref, t.due_at): t for t in found}
    timers, added = [], []
    for ref, due_at in wanted:
        timer = existing.get((ref, due_at))
        if timer is not None:
            if timer.status == "cancelled":
                timer.status = "pending"
        else:
            timer = existing[(ref, due_at)] = Timer(
                kind=kind, ref=ref, due_at=due_at, payload={}, created_at=now
            )
            session.add(timer)
            added.append(due_at)
        timers.append(timer)
    if added:
        session.flush()
        soonest = session.info.get(_SOONEST_TIMER)
        first = min(added)
        if soonest is None or first < soonest:
            session.info[_SOONEST_TIMER] = first
    return timers


def cancel_timers(session: Session, kind: str, ref: str | Sequence[str]) -> int:
    """Cancel every pending timer of this kind for this reference (e.g. a page that was acked),
    or for each of several references at once."""
    refs = [ref] if isinstance(ref, str) else list(ref)
    result = session.exec(
        update(Timer)
        .where(col(Timer.kind) == kind, col(Timer.ref).in_(refs), col(Timer.status) == "pending")
        .values(status="cancelled")
    )
    return result.rowcount or 0


def pending_timers(session: Session, kind: str, ref: str | None = None) -> list[Timer]:
    query = select(Timer).where(Timer.kind == kind, Timer.status == "pending")
    if ref is not None:
        query = query.where(Timer.ref == ref)
    return list(session.exec(query.order_by(col(Timer.due_at))).all())


@dataclass
class RecurringJob:
    """A job whose due instants come from `next_due(t)`: the first due instant strictly after t."""

    name: str
    next_due: Callable[[datetime], datetime | None]
    run: Callable[[Session, datetime], None]
    grace: timedelta = timedelta(hours=1)


TimerHandler = Callable[[Session, Timer, datetime], None]


class Scheduler:
    """Runs due work on `tick()`; `start()` adds the APScheduler wake-ups around it."""

    def __init__(self, db: Database, clock: Clock, *, timer_max_attempts: int = 5) -> None:
        self.db = db
        self.clock = clock
        self.jobs: dict[str, RecurringJob] = {}
        self.timer_handlers: dict[str, TimerHandler] = {}
        self.timer_max_attempts = timer_max_attempts
        self.after_tick: list[Callable[[], None]] = []
        self._aps: Any = None
        self._failures = 0
        # The planned wake-up; None while a wake-up runs (it plans the next one when it ends).
        self._planned: datetime | None = None
        self._plan_lock = threading.Lock()

    def add_job(self, job: RecurringJob) -> None:
        self.jobs[job.name] = job

    def on_timer(self, kind: str, handler: TimerHandler) -> None:
        self.timer_handlers[kind] = handler

    # -- the work -----------------------------------------------------------------------------

    def tick(self) -> int:
        """Run every firing due now (and missed ones within their grace); returns how many ran."""
        now = self.clock.now()
        ran = 0
        for job in list(self.jobs.values()):
            try:
                due = job.next_due(now - job.grace)
                while due is not None and due <= now:
                    if self._run_job(job, due, now):
                        ran += 1
                    due = job.next_due(due)
            except Exception:  # one job's broken cadence must not stop the others
                log.exception("job %s: could not compute its next firing", job.name)
        ran += self._fire_timers(now)
        for hook in self.after_tick:
            hook()
        return ran

    def _run_job(self, job: RecurringJob, due: datetime, now: datetime) -> bool:
        try:
            with self.db.session() as session:
                session.add(JobRun(job=job.name, due_at=due, ran_at=now))
                try:
                    session.flush()  # the claim: a second replica fails here, or waits and fails
                except IntegrityError:
                    # Already ran (this process before a restart, or another replica). Only the
                    # claim counts as that: the job's own integrity errors are failures below.
                    session.rollback()
                    return False
                job.run(session, due)
        except Exception:
            log.exception(
                "job %s due %s failed; it will be retried while within grace",
                job.name,
                due.isoformat(),
            )
            metrics.job_runs.labels(job.name.split(":")[0], "error").inc()
            return False
        metrics.job_runs.labels(job.name.split(":")[0], "ok").inc()
        metrics.observe_lag(job.name.split(":")[0], due, now)
        return True

    def _fire_timers(self, now: datetime) -> int:
        with self.db.session() as session:
            due_ids = list(
                session.exec(
                    select(Timer.id)
                    .where(Timer.status == "pending", Timer.due_at <= now)
                    .order_by(col(Timer.due_at), col(Timer.id))
                ).all()
            )
        fired = 0
        for timer_id in due_ids:
            if self._fire(timer_id, now):
                fired += 1
        return fired

    def _fire(self, timer_id: int, now: datetime) -> bool:
        kind = "?"
        try:
            with self.db.session() as session:
                claimed = session.exec(
                    update(Timer)
                    .where(col(Timer.id) == timer_id, col(Timer.status) == "pending")
                    .values(status="done", fired_at=now, attempts=Timer.attempts + 1)
                )
                if claimed.rowcount != 1:
                    return False
                timer = session.get(Timer, timer_id)
                assert timer is not None
                kind, due_at = timer.kind, timer.due_at
                handler = self.timer_handlers.get(timer.kind)
                if handler is None:
                    timer.status = "failed"
                    timer.last_error = "no handler registered for this kind"
                    return False
                handler(session, timer, now)
        except Exception as exc:
            log.exception("timer %s (%s) failed", timer_id, kind)
            with self.db.session() as session:
                timer = session.get(Timer, timer_id)
                if timer is not None:
                    timer.attempts += 1
                    timer.last_error = str(exc)[:500]
                    timer.status = (
                        "failed" if timer.attempts >= self.timer_max_attempts else "pending"
                    )
            metrics.timers_fired.labels(kind, "error").inc()
            return False
        metrics.timers_fired.labels(kind, "ok").inc()
        metrics.observe_lag(kind, due_at, now)
        return True

    def next_wake(self, cap: timedelta | None = timedelta(seconds=30)) -> datetime | None:
        """The earliest instant anything is due. Capped (30 s by default) in a running process, so
        timers that other replicas add are seen; uncapped it may be None (nothing is scheduled)."""
        now = self.clock.now()
        soonest = now + cap if cap is not None else None
        for job in self.jobs.values():
            try:
                due = job.next_due(now)
            except Exception:
                log.exception("job %s: could not compute its next firing", job.name)
                continue
            if due is not None and (soonest is None or due < soonest):
                soonest = due
        with self.db.session() as session:
            timer_due = session.exec(
                select(Timer.due_at).where(Timer.status == "pending").order_by(col(Timer.due_at))
            ).first()
        if timer_due is not None and (soonest is None or timer_due < soonest):
            soonest = max(timer_due, now)
        return soonest

    # -- APScheduler wake-ups -----------------------------------------------------------------

    def start(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        aps = BackgroundScheduler(timezone="UTC")
        aps.start()
        self.run_with(aps)

    def run_with(self, aps: Any) -> None:
        """Plan wake-ups with `aps` (APScheduler, or a stand-in that records them)."""
        self._aps = aps
        event.listen(OrmSession, "after_commit", self._timer_committed)
        self._wake()

    def _wake(self) -> None:
        """Run what is due and plan the next wake-up. Nothing here may end the chain: a failure
        (the database is away) is logged and retried with a capped, jittered backoff, and what
        fell due meanwhile runs once the database answers again."""
        with self._plan_lock:
            self._planned = None
        try:
            self.tick()
            wake_at = self.next_wake()
            self._failures = 0
        except Exception:
            self._failures += 1
            delay = min(60.0, 2.0**self._failures) * random.uniform(0.5, 1.0)
            log.exception(
                "scheduler wake-up failed (%s in a row); retrying in %.1f s", self._failures, delay
            )
            wake_at = self.clock.now() + timedelta(seconds=delay)
        with self._plan_lock:
            # A timer committed meanwhile may be due sooner than what this wake-up read.
            self._plan(wake_at if self._planned is None else min(wake_at, self._planned))

    def _plan(self, wake_at: datetime) -> None:
        self._planned = wake_at
        if self._aps is not None:
            self._aps.add_job(
                self._wake,
                "date",
                run_date=wake_at,
                id="opsbot-wake",
                replace_existing=True,
                misfire_grace_time=None,
            )

    def _timer_committed(self, session: OrmSession) -> None:
        """A unit of work in this process set a timer: wake for it if it is due before the
        planned wake-up (an escalation step a minute away must not wait for the 30 s poll)."""
        if session.bind is not self.db.engine or _SOONEST_TIMER not in session.info:
            return
        due = session.info.pop(_SOONEST_TIMER)
        with self._plan_lock:
            if self._planned is None:  # a wake-up is running; it plans for this when it ends
                self._planned = due
            elif due < self._planned:
                self._plan(due)

    def stop(self) -> None:
        if self._aps is not None:
            if event.contains(OrmSession, "after_commit", self._timer_committed):
                event.remove(OrmSession, "after_commit", self._timer_committed)
            self._aps.shutdown(wait=False)
            self._aps = None
