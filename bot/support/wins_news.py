"""Support's figures for the Wins and Challenges form: a team's tickets and SLA over a cycle."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from bot.config import OrgConfig
from bot.support.models import Ticket

if TYPE_CHECKING:
    from bot.runtime import Runtime
    from bot.wins.news import OpsNews

# Office hours bookings carry no SLA (as in the support report).
_NO_SLA = "office_hours"


def team_tickets(
    session: Session, org: OrgConfig, team_id: str, start: datetime, end: datetime
) -> OpsNews:
    from bot.wins.news import OpsNews

    queues = [q.id for q in org.support.queues if q.team == team_id]
    if not queues:
        return OpsNews()
    tickets = session.exec(
        select(Ticket).where(
            Ticket.queue_id.in_(queues),  # type: ignore[attr-defined]
            Ticket.opened_at >= start,
            Ticket.opened_at < end,
        )
    ).all()
    breached = [t.first_response_breached or t.resolution_breached for t in tickets]
    decided = [
        t
        for t, b in zip(tickets, breached, strict=True)
        if t.category != _NO_SLA and (b or t.resolved_at is not None)
    ]
    met = [t for t in decided if not (t.first_response_breached or t.resolution_breached)]
    return OpsNews(tickets=len(tickets), sla_met=len(met), sla_decided=len(decided))


def install(runtime: Runtime) -> None:
    from bot.wins.news import register

    register(runtime.extras, team_tickets)
