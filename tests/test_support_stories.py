"""Support as its users meet it, at awkward moments: an application engineer at 16:50, a
requester who is also on the support rotation, a bot restarted mid-SLA, stale buttons, other
zones, holidays and DST."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import select

from bot.support.models import Ticket, TicketEvent

NY = ZoneInfo("America/New_York")
HELP = "C0HELP00001"
TRIAGE = "C0TRIAGE001"
APP_DEV = "U0APP00001"
T1 = "U0ENG00004"  # infra-support, week of 16 Nov
T2 = "U0ENG00003"  # infra-oncall from Mon 16 Nov 10:00
ENGINEERS = [f"U0ENG000{n:02d}" for n in range(1, 13)] + ["U0MGR00001"]


def ticket(world, number=1) -> Ticket:
    with world.db.session() as session:
        return session.get(Ticket, number)


def kinds(world, number=1) -> list[str]:
    with world.db.session() as session:
        rows = session.exec(select(TicketEvent).where(TicketEvent.ticket_id == number)).all()
        return [e.kind for e in rows]


def card(world, number=1):
    from bot.support import service

    with world.db.session() as session:
        ref = service.outbox.message_ref(session, service.card_key(session.get(Ticket, number)))
    return world.fake.message(*ref)


def file_critical(world, summary, application, user=APP_DEV):
    world.slack.command("/support", "", user=user, channel=HELP)
    state = {
        "summary": {"value": summary},
        "severity": {"value": {"type": "static_select", "selected_option": {"value": "critical"}}},
        "application": {
            "value": {"type": "static_select", "selected_option": {"value": application}}
        },
        "impact": {"value": {"type": "static_select", "selected_option": {"value": "deadline"}}},
        "why_now": {"value": "The audit evidence is due tonight"},
    }
    world.slack.submit_view(world.opened_view(), user, state)


def ticket_dms(world) -> list:
    """Every DM about a support ticket or a page, to anyone on the engineering side."""
    return [
        m
        for person in ENGINEERS
        for m in world.fake.dms(person)
        if "ticket" in m.text.lower() or m.text.startswith("Page #")
    ]


def test_critical_request_at_1650_not_paged_waits_for_the_morning_as_it_is_told(world):
    world.advance(hours=7, minutes=20)  # Mon 16 Nov 16:50
    file_critical(world, "Wiki search is broken", "wiki")
    found = ticket(world)
    assert found.page_id is None
    notice = json.dumps(card(world).blocks)
    assert "not paged" in notice and "today until" in notice
    # 10 business minutes today and 5 tomorrow: the first response is due Tue 09:05.
    assert found.first_response_due == datetime(2026, 11, 17, 9, 5, tzinfo=NY)
    assert "First response by" in notice and "|Tue 17 Nov 09:05 EST>" in notice
    before = len(ticket_dms(world))
    world.advance(hours=15)  # through the evening and the night, to Tue 07:50
    assert len(ticket_dms(world)) == before  # nobody is reminded or escalated to
    assert not world.fake.posts(TRIAGE)
    assert ticket(world).tier == 1 and "escalated" not in kinds(world)
    world.advance(hours=1, minutes=16)  # Tue 09:06: now it is late, in business hours
    found = ticket(world)
    assert found.first_response_breached and found.tier == 2 and found.assignee == T2


def test_critical_request_at_1701_pages_because_it_is_after_hours(world):
    world.advance(hours=7, minutes=31)  # Mon 16 Nov 17:01
    file_critical(world, "Wiki search is broken", "wiki")
    assert ticket(world).page_id is not None
