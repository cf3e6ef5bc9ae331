"""The scheduler: each firing runs once across replicas and restarts; timers fire once, in order."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import StatementError
from sqlmodel import Session, select

from bot import metrics, outbox
from bot.clock import FrozenClock
from bot.db import Database
from bot.outbox import OutboxMessage
from bot.scheduler import (
    JobRun,
    RecurringJob,
    Scheduler,
    Timer,
    cancel_timers,
    pending_timers,
    set_timer,
    set_timers,
)

START = datetime(2026, 11, 16, 10, 5, tzinfo=UTC)


def hourly(t: datetime) -> datetime:
    """Every hour on the hour: the first one strictly after t."""
    return t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


class Recorder:
    """A job body that notes each firing and leaves a trace in the database, in its transaction."""

    def __init__(self, fail_times: int = 0) -> None:
        self.runs: list[datetime] = []
        self.fail_times = fail_times
        self._lock = threading.Lock()

    def __call__(self, session: Session, due: datetime) -> None:
        with self._lock:
            if self.fail_times > 0:
                self.fail_times -= 1
                raise RuntimeError("the job failed")
            self.runs.append(due)
        outbox.post(session, f"digest:{due.isoformat()}", "C0INFRA0001", "digest", due)


def scheduler_with(
    db: Database, clock: FrozenClock, run: Callable, grace: timedelta = timedelta(hours=1)
) -> Scheduler:
    scheduler = Scheduler(db, clock)
    scheduler.add_job(RecurringJob("digest", hourly, run, grace))
    return scheduler


def outbox_keys(db: Database) -> list[str]:
    with db.session() as session:
        return sorted(session.exec(select(OutboxMessage.key)).all())


def job_runs(db: Database) -> list[datetime]:
    with db.session() as session:
        return sorted(r.due_at for r in session.exec(select(JobRun)).all())


# ---- recurring jobs -------------------------------------------------------------------------------


def test_a_firing_runs_when_due_and_not_before(db):
    clock = FrozenClock(START)  # 10:05; the 10:00 firing is 5 minutes late, within grace
    job = Recorder()
    scheduler = scheduler_with(db, clock, job)
    assert scheduler.tick() == 1
    clock.set(datetime(2026, 11, 16, 10, 59, 59, tzinfo=UTC))
    assert scheduler.tick() == 0
    clock.set(datetime(2026, 11, 16, 11, 0, tzinfo=UTC))
    assert scheduler.tick() == 1
    assert job.runs == [
        datetime(2026, 11, 16, 10, tzinfo=UTC),
        datetime(2026, 11, 16, 11, tzinfo=UTC),
    ]


def test_a_firing_runs_once_across_two_replicas(db):
    clock = FrozenClock(datetime(2026, 11, 16, 11, 0, tzinfo=UTC))
    job = Recorder()
    replica = Database(db.url)
    try:
        first, second = scheduler_with(db, clock, job), scheduler_with(replica, clock, job)
        assert first.tick() == 1
        assert second.tick() == 0
        clock.advance(minutes=30)
        assert second.tick() == 0 and first.tick() == 0
    finally:
        replica.dispose()
    assert job.runs == [datetime(2026, 11, 16, 11, tzinfo=UTC)]
    assert outbox_keys(db) == ["digest:2026-11-16T11:00:00+00:00"]


def test_a_firing_runs_once_when_two_replicas_tick_at_the_same_moment(db):
    clock = FrozenClock(datetime(2026, 11, 16, 11, 0, tzinfo=UTC))
    job = Recorder()
    replicas = [Database(db.url), Database(db.url)]
    schedulers = [scheduler_with(r, clock, job, grace=timedelta(minutes=1)) for r in replicas]
    barrier = threading.Barrier(2)
    ran: list[int] = []
    errors: list[BaseException] = []

    def tick(scheduler: Scheduler) -> None:
        try:
            barrier.wait()
            ran.append(scheduler.tick())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=tick, args=(s,)) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for r in replicas:
        r.dispose()
    assert errors == []
    assert sorted(ran) == [0, 1]
    assert job.runs == [datetime(2026, 11, 16, 11, tzinfo=UTC)]
    assert outbox_keys(db) == ["digest:2026-11-16T11:00:00+00:00"]


def test_a_firing_is_not_run_again_after_a_restart(db):
    clock = FrozenClock(datetime(2026, 11, 16, 11, 0, tzinfo=UTC))
    job = Recorder()
    assert scheduler_with(db, clock, job, grace=timedelta(minutes=30)).tick() == 1
    clock.advance(minutes=10)
    restarted = scheduler_with(db, clock, job, grace=timedelta(minutes=30))
    assert restarted.tick() == 0
    assert job.runs == [datetime(2026, 11, 16, 11, tzinfo=UTC)]
    assert job_runs(db) == [datetime(2026, 11, 16, 11, tzinfo=UTC)]


def test_firings_missed_while_down_run_on_start_within_the_grace_window(db):
    clock = FrozenClock(datetime(2026, 11, 16, 10, 0, tzinfo=UTC))
    job = Recorder()
    scheduler_with(db, clock, job, grace=timedelta(minutes=30)).tick()
    assert job.runs == [datetime(2026, 11, 16, 10, tzinfo=UTC)]
    # Down from 10:05 to 13:10: 11:00 is beyond the 90-minute grace; 12:00 and 13:00 are within.
    clock.set(datetime(2026, 11, 16, 13, 10, tzinfo=UTC))
    restarted = scheduler_with(db, clock, job, grace=timedelta(minutes=90))
    assert restarted.tick() == 2
    assert job.runs == [
        datetime(2026, 11, 16, 10, tzinfo=UTC),
        datetime(2026, 11, 16, 12, tzinfo=UTC),
        datetime(2026, 11, 16, 13, tzinfo=UTC),
    ]


def test_a_missed_firing_beyond_grace_is_skipped(db):
    clock = FrozenClock(datetime(2026, 11, 16, 13, 40, tzinfo=UTC))
    job = Recorder()
    assert scheduler_with(db, clock, job, grace=timedelta(minutes=30)).tick() == 0
    assert job.runs == []


def test_a_failing_job_is_retried_on_the_next_tick(db):
    clock = FrozenClock(datetime(2026, 11, 16, 11, 0, tzinfo=UTC))
    job = Recorder(fail_times=1)
    scheduler = scheduler_with(db, clock, job, grace=timedelta(minutes=30))
    assert scheduler.tick() == 0
    assert job_runs(db) == [] and outbox_keys(db) == []  # nothing of the failed run was kept
    clock.advance(seconds=30)
    assert scheduler.tick() == 1
    assert job.runs == [datetime(2026, 11, 16, 11, tzinfo=UTC)]
    assert outbox_keys(db) == ["digest:2026-11-16T11:00:00+00:00"]


def test_a_job_that_keeps_failing_is_abandoned_when_its_grace_ends(db):
    clock = FrozenClock(datetime(2026, 11, 16, 11, 0, tzinfo=UTC))
    job = Recorder(fail_times=1000)
    scheduler = scheduler_with(db, clock, job, grace=timedelta(minutes=10))
    for _ in range(5):
        scheduler.tick()
        clock.advance(minutes=3)
    assert clock.now() > datetime(2026, 11, 16, 11, 10, tzinfo=UTC)
    attempts_left = job.fail_times
    scheduler.tick()
    assert job.fail_times == attempts_left  # not tried again


def test_a_jobs_own_integrity_error_is_a_failure_not_an_already_ran(db):
    clock = FrozenClock(datetime(2026, 11, 16, 11, 0, tzinfo=UTC))
    attempts: list[datetime] = []

    def clashing(session: Session, due: datetime) -> None:
        attempts.append(due)
        session.add(JobRun(job="other", due_at=due, ran_at=due))
        session.add(JobRun(job="other", due_at=due, ran_at=due))
        session.flush()

    def errors() -> float:
        labels = {"job": "digest", "outcome": "error"}
        return metrics.REGISTRY.get_sample_value("opsbot_job_runs_total", labels) or 0.0

    before = errors()
    scheduler = scheduler_with(db, clock, clashing, grace=timedelta(minutes=30))
    assert scheduler.tick() == 0
    clock.advance(minutes=1)
    assert scheduler.tick() == 0
    assert len(attempts) == 2  # retried, because it never ran
    assert job_runs(db) == []
    assert errors() == before + 2  # counted (and logged) as failures


# ---- timers ---------------------------------------------------------------------------------------


def timer_log(scheduler: Scheduler, kind: str = "escalate") -> list[tuple[str, datetime]]:
    fired: list[tuple[str, datetime]] = []

    def handle(session: Session, timer: Timer, now: datetime) -> None:
        fired.append((timer.ref, timer.due_at))
        outbox.post(
            session, f"{kind}:{timer.ref}:{timer.due_at.isoformat()}", "C0X0000001", "x", now
        )

    scheduler.on_timer(kind, handle)
    return fired


def add_timer(db: Database, ref: str, due: datetime, kind: str = "escalate", **payload) -> None:
    with db.session() as session:
        set_timer(session, kind, ref, due, START, payload or None)


def test_timers_fire_once_in_due_order(db):
    clock = FrozenClock(START)
    scheduler = Scheduler(db, clock)
    fired = timer_log(scheduler)
    add_timer(db, "page:2", START + timedelta(minutes=30))
    add_timer(db, "page:1", START + timedelta(minutes=15))
    add_timer(db, "page:3", START + timedelta(minutes=45))
    assert scheduler.tick() == 0
    clock.advance(minutes=30)
    assert scheduler.tick() == 2
    assert scheduler.tick() == 0
    assert fired == [
        ("page:1", START + timedelta(minutes=15)),
        ("page:2", START + timedelta(minutes=30)),
    ]
    replica = Database(db.url)
    try:
        assert Scheduler(replica, clock).tick() == 0  # already done: another replica skips it
    finally:
        replica.dispose()


def test_setting_the_same_timer_twice_keeps_one(db):
    clock = FrozenClock(START)
    scheduler = Scheduler(db, clock)
    fired = timer_log(scheduler)
    due = START + timedelta(minutes=5)
    add_timer(db, "page:1", due, step=1)
    add_timer(db, "page:1", due, step=1)
    with db.session() as session:
        [timer] = pending_timers(session, "escalate", "page:1")
        assert timer.payload == {"step": 1}
    clock.set(due)
    scheduler.tick()
    add_timer(db, "page:1", due)  # after it fired: still the one done timer
    scheduler.tick()
    assert fired == [("page:1", due)]


def test_cancelled_timers_do_not_fire(db):
    clock = FrozenClock(START)
    scheduler = Scheduler(db, clock)
    fired = timer_log(scheduler)
    add_timer(db, "page:1", START + timedelta(minutes=5))
    add_timer(db, "page:1", START + timedelta(minutes=10))
    add_timer(db, "page:2", START + timedelta(minutes=10))
    with db.session() as session:
        assert cancel_timers(session, "escalate", "page:1") == 2
        assert cancel_timers(session, "escalate", "page:1") == 0
        assert [t.ref for t in pending_timers(session, "escalate")] == ["page:2"]
    clock.advance(hours=1)
    scheduler.tick()
    assert [ref for ref, _ in fired] == ["page:2"]


def test_a_cancelled_timer_set_again_is_pending_again(db):
    clock = FrozenClock(START)
    scheduler = Scheduler(db, clock)
    fired = timer_log(scheduler)
    due = START + timedelta(minutes=5)
    add_timer(db, "page:1", due)
    with db.session() as session:
        cancel_timers(session, "escalate", "page:1")
    add_timer(db, "page:1", due)
    clock.set(due)
    scheduler.tick()
    assert fired == [("page:1", due)]


def test_timers_set_together_act_as_each_set_alone(db):
    """One look-up for several timers: an existing one is kept (a cancelled one pending again),
    the others are added, and one cancel covers several references."""
    five, ten = START + timedelta(minutes=5), START + timedelta(minutes=10)
    add_timer(db, "page:1", five)
    with db.session() as session:
        assert cancel_timers(session, "escalate", ["page:1", "page:2"]) == 1
    with db.session() as session:
        wanted = [("page:1", five), ("page:1", ten), ("page:2", five)]
        timers = set_timers(session, "escalate", wanted, START)
        assert [(t.ref, t.due_at, t.status) for t in timers] == [
            (ref, due, "pending") for ref, due in wanted
        ]
    with db.session() as session:
        assert len(set_timers(session, "escalate", wanted, START)) == 3
        pending = {(t.ref, t.due_at) for t in pending_timers(session, "escalate")}
        assert pending == set(wanted)
        assert len(session.exec(select(Timer)).all()) == 3  # none doubled


def test_a_failing_timer_handler_is_retried_then_given_up(db):
    clock = FrozenClock(START)
    scheduler = Scheduler(db, clock, timer_max_attempts=3)
    calls: list[datetime] = []

    def broken(session: Session, timer: Timer, now: datetime) -> None:
        calls.append(now)
        outbox.post(session, f"never:{len(calls)}", "C0X0000001", "x", now)
        raise RuntimeError("downstream is broken")

    scheduler.on_timer("sla", broken)
    add_timer(db, "ticket:1", START, kind="sla")
    for _ in range(6):
        scheduler.tick()
        clock.advance(seconds=1)
    assert len(calls) == 3
    with db.session() as session:
        timer = session.exec(select(Timer)).one()
    assert timer.status == "failed"
    assert timer.attempts == 3
    assert timer.last_error == "downstream is broken"
    assert outbox_keys(db) == []  # the handler's work rolled back with it


def test_a_timer_fails_once_then_succeeds(db):
    clock = FrozenClock(START)
    scheduler = Scheduler(db, clock)
    outcomes = iter([RuntimeError("blip"), None])

    def flaky(session: Session, timer: Timer, now: datetime) -> None:
        error = next(outcomes)
        if error:
            raise error
        outbox.post(session, "sla:ticket:1", "C0X0000001", "breached", now)

    scheduler.on_timer("sla", flaky)
    add_timer(db, "ticket:1", START, kind="sla")
    assert scheduler.tick() == 0
    assert scheduler.tick() == 1
    with db.session() as session:
        timer = session.exec(select(Timer)).one()
    assert (timer.status, timer.attempts) == ("done", 2)
    assert outbox_keys(db) == ["sla:ticket:1"]


def test_a_timer_of_a_kind_nobody_handles_is_marked_failed(db):
    clock = FrozenClock(START)
    add_timer(db, "x", START, kind="nobody")
    assert Scheduler(db, clock).tick() == 0
    with db.session() as session:
        timer = session.exec(select(Timer)).one()
    assert timer.status == "failed"
    assert "no handler" in timer.last_error


def test_a_naive_due_time_is_refused(db):
    with pytest.raises(StatementError, match="naive datetime"), db.session() as session:
        set_timer(session, "escalate", "page:1", datetime(2026, 11, 16, 10, 0), START)


# ---- next_wake ------------------------------------------------------------------------------------


def test_next_wake_is_the_earliest_due_instant(db):
    clock = FrozenClock(START)
    scheduler = Scheduler(db, clock)
    assert scheduler.next_wake(cap=None) is None
    assert scheduler.next_wake() == START + timedelta(seconds=30)  # the default cap
    scheduler.add_job(RecurringJob("digest", hourly, Recorder()))
    assert scheduler.next_wake(cap=None) == datetime(2026, 11, 16, 11, tzinfo=UTC)
    add_timer(db, "page:1", START + timedelta(minutes=20))
    assert scheduler.next_wake(cap=None) == START + timedelta(minutes=20)
    assert scheduler.next_wake(cap=timedelta(minutes=5)) == START + timedelta(minutes=5)
    add_timer(db, "page:0", START - timedelta(minutes=1))  # overdue: wake now, not in the past
    assert scheduler.next_wake(cap=None) == START


def test_next_wake_ignores_cancelled_and_fired_timers(db):
    clock = FrozenClock(START)
    scheduler = Scheduler(db, clock)
    timer_log(scheduler)
    add_timer(db, "page:1", START)
    add_timer(db, "page:2", START + timedelta(minutes=10))
    scheduler.tick()
    with db.session() as session:
        cancel_timers(session, "escalate", "page:2")
    assert scheduler.next_wake(cap=None) is None


# ---- the world moves time ---------------------------------------------------------------------------


def test_world_advance_runs_everything_due_on_the_way_in_order(world):
    start = world.clock.now()
    seen: list[tuple[str, datetime, datetime]] = []

    def every_20_minutes(t: datetime) -> datetime:
        base = start.replace(second=0, microsecond=0)
        steps = int((t - base).total_seconds() // 1200) + 1
        return base + timedelta(minutes=20 * steps)

    def job(session: Session, due: datetime) -> None:
        seen.append(("job", due, world.clock.now()))

    def timer(session: Session, t: Timer, now: datetime) -> None:
        seen.append((t.ref, t.due_at, now))
        outbox.post(session, f"timer:{t.ref}", "C0TEST00001", f"timer {t.ref}", now)

    world.runtime.scheduler.add_job(
        RecurringJob("test-cadence", every_20_minutes, job, timedelta(minutes=1))
    )
    world.runtime.scheduler.on_timer("test", timer)
    with world.db.session() as session:
        for minutes in (50, 5, 30):
            set_timer(session, "test", f"t{minutes}", start + timedelta(minutes=minutes), start)
    world.advance(hours=1)
    assert [(what, due - start) for what, due, _ in seen] == [
        ("t5", timedelta(minutes=5)),
        ("job", timedelta(minutes=20)),
        ("t30", timedelta(minutes=30)),
        ("job", timedelta(minutes=40)),
        ("t50", timedelta(minutes=50)),
        ("job", timedelta(minutes=60)),
    ]
    assert all(ran_at == due for _, due, ran_at in seen)  # each ran at its own instant
    assert world.clock.now() == start + timedelta(hours=1)
    assert [m.text for m in world.fake.posts("C0TEST00001")] == [
        "timer t5",
        "timer t30",
        "timer t50",
    ]


# ---- surviving its own faults -------------------------------------------------------------------


class WakeUps:
    """Stands in for APScheduler: records each wake-up the scheduler plans."""

    def __init__(self) -> None:
        self.planned: list[datetime] = []

    def add_job(self, fn: Callable[[], None], trigger: str, run_date: datetime, **_: object):
        self.planned.append(run_date)

    def shutdown(self, wait: bool) -> None:
        pass


def test_a_timer_set_in_this_process_wakes_the_scheduler_when_due_not_at_its_next_poll(db):
    scheduler = Scheduler(db, FrozenClock(START))
    wake_ups = WakeUps()
    scheduler.run_with(wake_ups)
    try:
        assert wake_ups.planned == [START + timedelta(seconds=30)]  # nothing due: the poll
        with db.session() as session:
            set_timer(session, "page.escalate", "page:1", START + timedelta(seconds=5), START)
        assert wake_ups.planned[-1] == START + timedelta(seconds=5)
        with db.session() as session:
            set_timer(session, "page.escalate", "page:2", START + timedelta(minutes=5), START)
        assert len(wake_ups.planned) == 2  # a later timer changes nothing
    finally:
        scheduler.stop()
    with db.session() as session:
        set_timer(session, "page.escalate", "page:3", START + timedelta(seconds=1), START)
    assert len(wake_ups.planned) == 2  # a stopped scheduler no longer listens


def test_a_failed_wake_up_is_retried_with_backoff_and_timers_due_meanwhile_fire_after(db):
    clock = FrozenClock(START)
    scheduler = Scheduler(db, clock)
    fired: list[str] = []
    scheduler.on_timer("probe", lambda session, timer, now: fired.append(timer.ref))
    with db.session() as session:
        set_timer(session, "probe", "during-outage", START + timedelta(seconds=30), START)
    wake_ups = WakeUps()
    scheduler._aps = wake_ups
    original = db.session
    down = {"yes": True}

    def session_or_outage():
        if down["yes"]:
            raise ConnectionError("the database is away")
        return original()

    db.session = session_or_outage  # type: ignore[method-assign]
    try:
        for _ in range(8):
            scheduler._wake()
        clock.set(START + timedelta(minutes=5))
        down["yes"] = False
        scheduler._wake()
    finally:
        db.session = original  # type: ignore[method-assign]
    assert len(wake_ups.planned) == 9  # the chain never ended
    delays = [(t - START).total_seconds() for t in wake_ups.planned[:8]]
    assert 0 < delays[0] <= 2 and max(delays) <= 60 and delays[7] >= 30  # capped backoff
    assert fired == ["during-outage"]


def test_a_job_whose_cadence_raises_does_not_stop_the_others(db):
    clock = FrozenClock(START)
    scheduler = Scheduler(db, clock)

    def broken(t: datetime) -> datetime:
        raise ValueError("bad zone")

    recorder = Recorder()
    scheduler.add_job(RecurringJob("broken", broken, lambda s, d: None))
    scheduler.add_job(RecurringJob("hourly", hourly, recorder))
    clock.set(datetime(2026, 11, 16, 11, 0, 30, tzinfo=UTC))
    assert scheduler.tick() == 1
    assert scheduler.next_wake(cap=None) == datetime(2026, 11, 16, 12, tzinfo=UTC)
