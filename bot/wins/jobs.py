"""Wires Wins and Challenges into the runtime: reminder and deadline jobs on the cycle calendar,
the selection-window timer, and e-mail."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session

from bot.scheduler import RecurringJob, Timer
from bot.wins import lifecycle, selection
from bot.wins.cycles import CycleCalendar

if TYPE_CHECKING:
    from bot.runtime import Runtime

# A deadline or reminder missed while no process ran is still worth doing this late.
GRACE = timedelta(hours=12)


def install(runtime: Runtime) -> None:
    if runtime.org.wins is None:
        return
    calendar = CycleCalendar.of(runtime.org)

    def run_deadline(session: Session, due: datetime) -> None:
        lifecycle.close(session, runtime, calendar.number_at(due - timedelta(seconds=1)))

    runtime.scheduler.add_job(
        RecurringJob("wins.deadline", calendar.next_deadline_after, run_deadline, GRACE)
    )
    for lead in runtime.org.wins.reminders:

        def run_reminder(session: Session, due: datetime, lead: timedelta = lead) -> None:
            lifecycle.remind(
                session, runtime, calendar.number_at(due + lead - timedelta(seconds=1)), lead
            )

        runtime.scheduler.add_job(
            RecurringJob(
                f"wins.reminder:{int(lead.total_seconds())}s",
                calendar.before_each_deadline(lead),
                run_reminder,
                GRACE,
            )
        )

    def on_selection_due(session: Session, timer: Timer, now: datetime) -> None:
        selection.on_selection_due(session, runtime, timer.ref)

    runtime.scheduler.on_timer(selection.SELECTION_DUE_TIMER, on_selection_due)
