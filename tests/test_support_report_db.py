"""The report's database path (aggregate SQL) gives the answers of the reference over ticket facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select

from bot.support.models import REOPENED, RESOLVED, Ticket, TicketEvent
from bot.support.report import TicketFacts, build_report
from bot.support.reporting import ticket_report
from tests.support_samples import insert_tickets

START = datetime(2026, 11, 16, 5, 0, tzinfo=UTC)


def reference(db, queue_id: str, start: datetime, end: datetime):
    """The report as it was computed before: every ticket and its history loaded as rows."""
    with db.session() as session:
        rows = session.exec(
            select(Ticket)
            .where(Ticket.queue_id == queue_id, Ticket.opened_at < end)
            .order_by(col(Ticket.id))
        ).all()
        facts = []
        for t in rows:
            if not (
                t.opened_at >= start
                or t.is_open
                or (t.resolved_at and t.resolved_at >= start)
                or t.state == REOPENED
            ):
                continue
            events = session.exec(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == t.id)
                .order_by(col(TicketEvent.at), col(TicketEvent.id))
            ).all()
            facts.append(
                TicketFacts(
                    number=t.id or 0,
                    category=t.category,
                    severity=t.severity,
                    opened_at=t.opened_at,
                    first_response_at=t.first_response_at,
                    resolved_at=t.resolved_at,
                    first_response_breached=t.first_response_breached,
                    resolution_breached=t.resolution_breached,
                    has_sla=t.category != "office_hours",
                    rating=t.rating,
                    answered_by_docs=t.resolution == "docs",
                    lifecycle=tuple(
                        (e.at, e.state) for e in events if e.state in (RESOLVED, REOPENED)
                    ),
                )
            )
    return build_report(queue_id, facts, start, end, threshold=2)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_database_report_matches_the_reference_on_random_tickets(db, seed):
    insert_tickets(db, 400, START, START + timedelta(weeks=2), seed=seed)
    for start, end in [
        (START, START + timedelta(weeks=1)),
        (START + timedelta(days=3, hours=5), START + timedelta(weeks=2, minutes=7)),
    ]:
        expected = reference(db, "infra-help", start, end)
        with db.session() as session:
            found = ticket_report(session, "infra-help", start, end, threshold=2)
        assert found == expected
        # The order the report lists them in (most first; ties by first ticket) as well.
        assert list(found.by_category.items()) == list(expected.by_category.items())
        assert list(found.by_severity.items()) == list(expected.by_severity.items())
        assert expected.total > 50 and expected.still_open and expected.sla_decided


def test_an_empty_queue_reports_nothing(db):
    with db.session() as session:
        found = ticket_report(session, "infra-help", START, START + timedelta(weeks=1))
    assert (found.total, found.by_category, found.still_open) == (0, {}, [])
    assert found.median_first_response is None and found.satisfaction is None
    assert found.sla_attainment is None
