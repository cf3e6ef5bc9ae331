"""A critical support request and its page, as the people involved meet them: the on-call
engineer's acknowledgement is the ticket's first response, and closing the request (or lowering
it) stands its page down so nobody further is woken."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlmodel import select

from bot.paging import lifecycle as paging_lifecycle
from bot.paging import service as paging
from bot.paging.models import Page
from bot.support import lifecycle, reporting, service
from bot.support.models import Ticket, TicketEvent

HELP = "C0HELP00001"
TRIAGE = "C0TRIAGE001"
APP_DEV = "U0APP00001"
ONCALL = "U0ENG00002"  # infra-oncall until the Monday 10:00 handoff (the clock starts 09:30)
SECONDARY = "U0ENG00012"  # data-oncall, the policy's second step
MANAGER = "U0MGR00001"  # the policy's third step


def file_critical(world, summary="Checkout payments failing", application="checkout"):
    world.slack.command("/support", "", user=APP_DEV, channel=HELP)
    world.slack.submit_view(
        world.opened_view(),
        APP_DEV,
        {
            "summary": {"value": summary},
            "severity": {
                "value": {"type": "static_select", "selected_option": {"value": "critical"}}
            },
            "application": {
                "value": {"type": "static_select", "selected_option": {"value": application}}
            },
            "impact": {"value": {"type": "static_select", "selected_option": {"value": "revenue"}}},
            "why_now": {
                "value": "Card payments fail with a TLS error; nothing changed on our side"
            },
        },
    )
    with world.db.session() as session:
        return session.exec(select(Ticket).order_by(Ticket.id.desc())).first()  # type: ignore[union-attr]


def ticket(world, number=1) -> Ticket:
    with world.db.session() as session:
        return session.get(Ticket, number)


def page(world, page_id) -> Page:
    with world.db.session() as session:
        return paging.get_page(session, page_id)


def page_dms(world, user):
    return [m for m in world.fake.dms(user) if m.text.startswith("Page #")]


def card(world, number=1):
    with world.db.session() as session:
        ref = service.outbox.message_ref(session, service.card_key(session.get(Ticket, number)))
    return world.fake.message(*ref)


def thread_texts(world, number=1) -> list[str]:
    found = ticket(world, number)
    return [m.text for m in world.fake.posts(HELP) if m.thread_ts == found.thread_ts]


def test_acknowledging_the_page_within_a_minute_is_the_tickets_first_response(world):
    filed = file_critical(world)
    assert filed.page_id is not None
    world.advance(seconds=50)
    (dm,) = page_dms(world, ONCALL)
    world.slack.press(dm, "page.acknowledge", ONCALL)
    found = ticket(world)
    assert found.first_response_at == world.clock.now()
    assert (found.state, found.assignee) == ("in_progress", ONCALL)
    assert any("acknowledged page" in t for t in thread_texts(world))
    world.advance(hours=1)  # well past the 15-minute first-response target
    assert not ticket(world).first_response_breached
    assert not world.fake.posts(TRIAGE)
    world.slack.press(card(world), "support.resolve", ONCALL)
    world.advance(hours=5)
    found = ticket(world)
    assert not found.first_response_breached and not found.resolution_breached
    assert not world.fake.posts(TRIAGE)
    with world.db.session() as session:
        start = found.opened_at - timedelta(hours=1)
        report = reporting.report(world.runtime, session, "infra-help", start, world.clock.now())
    assert (report.sla_met, report.sla_decided) == (1, 1)
    assert report.median_first_response == timedelta(seconds=50)


def test_resolving_a_critical_ticket_stands_its_page_down_and_wakes_nobody_else(world):
    filed = file_critical(world)
    world.advance(minutes=5)
    world.slack.press(card(world), "support.resolve", APP_DEV)
    stood = page(world, filed.page_id)
    assert stood.status == "resolved"
    world.advance(hours=3)  # the policy would have reached the secondary, the manager, and repeated
    assert not page_dms(world, SECONDARY) and not page_dms(world, MANAGER)
    assert len(page_dms(world, ONCALL)) == 1  # no repeat of the chain
    text = json.dumps(page_dms(world, ONCALL)[0].blocks)
    assert "stood down" in text and f"support ticket #{filed.id} was resolved" in text
    assert "page.acknowledge" not in text
    assert any(f"Page #{filed.page_id} stands down" in t for t in thread_texts(world))


def test_lowering_a_paged_ticket_from_critical_stands_its_page_down(world):
    filed = file_critical(world)
    with world.db.session() as session:
        t = session.get(Ticket, filed.id)
        lifecycle.set_severity(world.runtime, session, t, "normal", APP_DEV)
        session.commit()
    world.settle()
    assert page(world, filed.page_id).status == "resolved"
    world.advance(hours=1)
    assert not page_dms(world, SECONDARY)
    assert ticket(world).page_id is None


def test_a_page_resolved_by_the_on_call_answers_the_ticket_but_does_not_close_it(world):
    filed = file_critical(world)
    with world.db.session() as session:
        paging_lifecycle.resolve(world.runtime, session, filed.page_id, ONCALL, classification=None)
        session.commit()
    found = ticket(world)
    assert found.is_open and found.first_response_at is not None
    with world.db.session() as session:
        kinds = [
            e.kind
            for e in session.exec(select(TicketEvent).where(TicketEvent.ticket_id == filed.id))
        ]
    assert "first_response" in kinds
