"""Support's scheduled work: SLA reminder and breach timers, the weekly report, and its providers."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import Session

from bot.paging.lifecycle import on_response
from bot.paging.models import Page
from bot.scheduler import RecurringJob, Timer
from bot.support import lifecycle, reporting, service

if TYPE_CHECKING:
    from bot.runtime import Runtime


def install(runtime: Runtime) -> None:
    def on_sla(session: Session, timer: Timer, now: datetime) -> None:
        lifecycle.handle_sla_timer(runtime, session, timer.ref, timer.due_at)

    runtime.scheduler.on_timer(service.SLA_TIMER, on_sla)

    # A person answering the page of a critical ticket is the ticket's first response.
    def on_page_answered(
        session: Session, page: Page, status: str, user: str, now: datetime
    ) -> None:
        lifecycle.page_answered(runtime, session, page, user, now)

    on_response(runtime, on_page_answered)

    for queue in runtime.org.support.queues:
        runtime.scheduler.add_job(weekly_report_job(runtime, queue.id))

    # The on-call handoff report lists what the incoming person inherits from support.
    runtime.extras["oncall.open_tickets"] = service.open_tickets_for_team


def weekly_report_job(runtime: Runtime, queue_id: str) -> RecurringJob:
    queue = runtime.org.queue(queue_id)

    def next_due(after: datetime) -> datetime:
        return reporting.weekly_report_due(runtime.org, queue, after)

    def run(session: Session, due: datetime) -> None:
        reporting.post_weekly_report(runtime, session, queue_id, due)

    return RecurringJob(name=f"support.weekly_report:{queue_id}", next_due=next_due, run=run)
