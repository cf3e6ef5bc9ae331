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


def open_request(world, text="Deploys to staging fail with a 503 from the gateway", user=APP_DEV):
    _, ts = world.slack.message(HELP, user, text)
    return ts


def test_a_requester_on_the_support_rotation_is_not_given_their_own_request(world):
    open_request(world, "I need a second pair of eyes on the ingress config", user=T1)
    found = ticket(world)
    # Next week's infra-support person takes it: they know the work, and T1 asked.
    assert found.assignee == "U0ENG00005"
    assert any("is yours" in m.text for m in world.fake.dms("U0ENG00005"))
    assert not any("is yours" in m.text for m in world.fake.dms(T1))


def test_the_secondary_who_acknowledged_the_page_can_resolve_the_ticket(world):
    file_critical(world, "Checkout payments failing", "checkout")
    world.advance(minutes=15)  # nobody acknowledged: the page reaches data-oncall
    secondary = "U0ENG00012"
    page_dm = next(m for m in world.fake.dms(secondary) if m.text.startswith("Page #"))
    world.slack.press(page_dm, "page.acknowledge", secondary)
    assert ticket(world).assignee == secondary
    world.slack.press(card(world), "support.resolve", secondary)
    assert ticket(world).state == "resolved"


def test_a_stale_merge_button_after_the_other_ticket_was_resolved_is_refused(world):
    open_request(world, "Gateway returns 503 for the payments service")
    open_request(world, "payments service gets 503 from the gateway since 9am", user="U0APP00002")
    stale = card(world, 2)
    assert "Merge into #1" in json.dumps(stale.blocks)
    world.slack.press(card(world, 1), "support.resolve", T1)
    world.slack.press(stale, "support.merge", T1)
    assert "#1 is resolved since" in world.last_response()["text"]
    assert ticket(world, 2).is_open and ticket(world, 2).duplicate_of is None


def test_back_after_a_restart_past_the_deadline_the_ticket_breaches_once_without_a_stale_reminder(
    world,
):
    open_request(world)  # 09:30, normal: reminder at 12:30, first response due 13:30
    world.clock.set(datetime(2026, 11, 16, 15, 0, tzinfo=NY))  # the bot was down until 15:00
    world.tick()
    assert not [m for m in world.fake.dms(T1) if "75%" in m.text]
    found = ticket(world)
    assert found.first_response_breached and found.tier == 2
    assert kinds(world).count("breached") == 1
    world.tick()
    assert kinds(world).count("breached") == 1


def test_the_office_hours_slot_is_shown_in_each_readers_zone(world):
    world.slack.command("/support", "", user=APP_DEV, channel=HELP)
    state = {
        "summary": {"value": "Which queue should our new service use?"},
        "category": {
            "value": {"type": "static_select", "selected_option": {"value": "office_hours"}}
        },
    }
    world.slack.submit_view(world.opened_view(), APP_DEV, state)
    text = json.dumps(card(world).blocks)
    assert "|Thu 19 Nov 14:00 EST>" in text and "^{time}|15:00 EST>" in text


def test_critical_at_1650_on_christmas_eve_waits_for_monday_after_the_holiday(world_factory):
    world = world_factory(start=datetime(2026, 12, 24, 16, 50, tzinfo=NY))  # Thursday
    file_critical(world, "Wiki search is broken", "wiki")
    found = ticket(world)
    assert found.page_id is None
    # 10 minutes on Thursday; Friday 25 Dec is a holiday, then the weekend.
    assert found.first_response_due == datetime(2026, 12, 28, 9, 5, tzinfo=NY)


def test_critical_at_1650_before_the_fall_back_weekend_is_due_monday_0905_est(world_factory):
    world = world_factory(start=datetime(2026, 10, 30, 16, 50, tzinfo=NY))  # Friday, EDT
    file_critical(world, "Wiki search is broken", "wiki")
    due = ticket(world).first_response_due
    assert due == datetime(2026, 11, 2, 9, 5, tzinfo=NY) and due.astimezone(NY).tzname() == "EST"
    world.advance(days=2, hours=17, minutes=14)  # Mon 09:04 EST: the weekend had 49 hours
    assert not ticket(world).first_response_breached
    world.advance(minutes=2)
    assert ticket(world).first_response_breached
