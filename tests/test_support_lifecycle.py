"""The life of a ticket: claim, first response, waiting, SLA reminders and breaches, escalation to
T2, critical pages, resolution, satisfaction, reopening, runbook answers, duplicates, reports."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.config import parse_org
from bot.demo.story import sample_org_text
from bot.runbooks import RunbookIndex
from bot.support import intake, reporting, service
from bot.support.models import Ticket, TicketEvent

NY = ZoneInfo("America/New_York")
HELP = "C0HELP00001"
TRIAGE = "C0TRIAGE001"
INFRA = "C0INFRA0001"
APP_DEV = "U0APP00001"
T1 = "U0ENG00004"  # infra-support, week of 16 Nov
T2_BEFORE_10 = "U0ENG00002"  # infra-oncall until the Monday 10:00 handoff
T2 = "U0ENG00003"  # infra-oncall from Mon 16 Nov 10:00

DB_RUNBOOK = """---
title: How to request database access
keywords: [postgres, database, access, credentials]
owner_team: infra
---
Ask for read access to a Postgres database through the access portal; approvals take a day.
"""


@pytest.fixture
def world(world, tmp_path):
    (tmp_path / "how-to-request-database-access.md").write_text(DB_RUNBOOK)
    world.runtime.extras["runbooks"] = RunbookIndex(tmp_path)
    return world


def ticket(world, number: int = 1) -> Ticket:
    with world.db.session() as session:
        found = session.get(Ticket, number)
        assert found is not None
        return found


def history(world, number: int = 1) -> list[str]:
    with world.db.session() as session:
        rows = session.exec(select(TicketEvent).where(TicketEvent.ticket_id == number)).all()
        return [e.kind for e in rows]


def card(world, number: int = 1):
    found = ticket(world, number)
    with world.db.session() as session:
        ref = service.outbox.message_ref(session, service.card_key(found))
    assert ref is not None
    return world.fake.message(*ref)


def open_request(world, text="Deploys to staging fail with a 503 from the gateway", user=APP_DEV):
    _, ts = world.slack.message(HELP, user, text)
    return ts


def thread(world, ts):
    return [m for m in world.fake.posts(HELP) if m.thread_ts == ts]


def test_claim_puts_the_ticket_in_progress_with_the_claimer(world):
    open_request(world)
    world.slack.press(card(world), "support.claim", "U0ENG00005")
    found = ticket(world)
    assert (found.state, found.assignee) == ("in_progress", "U0ENG00005")
    assert "In progress" in json.dumps(card(world).blocks)


def test_people_outside_the_team_cannot_claim(world):
    open_request(world)
    world.slack.press(card(world), "support.claim", "U0APP00002")
    assert "Only the infra team" in world.last_response()["text"]
    assert ticket(world).state == "new"


def test_first_responder_reply_in_the_thread_is_the_first_response(world):
    ts = open_request(world)
    world.slack.message(HELP, APP_DEV, "more context: it started at 9", thread_ts=ts)
    assert ticket(world).first_response_at is None  # the requester is not a responder
    world.advance(minutes=20)
    world.slack.message(HELP, T1, "Looking now", thread_ts=ts)
    found = ticket(world)
    assert found.first_response_at == world.clock.now()
    assert found.first_response_due is None
    shown = json.dumps(card(world).blocks)
    assert f"first response <!date^{int(world.clock.now().timestamp())}^" in shown
    assert "|Mon 16 Nov 09:50 EST>" in shown


def test_waiting_on_requester_pauses_the_clock_and_their_reply_resumes_it(world):
    ts = open_request(world)  # 09:30, normal: resolution 3 business days -> Thu 09:30
    assert ticket(world).resolution_due == datetime(2026, 11, 19, 9, 30, tzinfo=NY)
    world.slack.message(HELP, T1, "Which service?", thread_ts=ts)
    world.slack.press(card(world), "support.wait", T1)
    found = ticket(world)
    assert found.state == "waiting" and found.resolution_due is None
    assert any("clock is paused" in m.text for m in thread(world, ts))
    world.advance(hours=3)  # waiting 09:30 -> 12:30
    world.slack.message(HELP, APP_DEV, "the payments-api service", thread_ts=ts)
    found = ticket(world)
    assert found.state == "in_progress"
    assert found.resolution_due == datetime(2026, 11, 19, 12, 30, tzinfo=NY)


def test_breach_escalates_to_t2_with_history_and_tells_the_triage_channel(world):
    ts = open_request(world)  # normal: first response within 4 business hours -> 13:30
    world.advance(hours=3, minutes=1)  # 12:31: past 75 %
    reminders = [m for m in world.fake.dms(T1) if "75%" in m.text]
    assert len(reminders) == 1 and "first-response SLA (4h)" in reminders[0].text
    world.advance(hours=1)  # 13:31: breached
    found = ticket(world)
    assert found.first_response_breached and found.tier == 2 and found.assignee == T2
    assert history(world)[-2:] == ["breached", "escalated"]
    [triage] = world.fake.posts(TRIAGE)
    assert "first-response SLA breached" in triage.text and T2 in triage.text
    handover = [
        m for m in world.fake.dms(T2) if m.blocks and "escalated to you" in json.dumps(m.blocks)
    ]
    assert handover and "History" in json.dumps(handover[0].blocks)
    assert any("Escalated to T2" in m.text for m in thread(world, ts))
    world.advance(hours=2)
    assert len(world.fake.posts(TRIAGE)) == 1  # a breach is announced once


def test_a_first_response_in_time_cancels_the_breach(world):
    ts = open_request(world)
    world.advance(hours=1)
    world.slack.message(HELP, T1, "On it", thread_ts=ts)
    world.advance(hours=6)
    assert not ticket(world).first_response_breached
    assert world.fake.posts(TRIAGE) == []


def test_business_hours_sla_does_not_breach_overnight(world):
    world.advance(hours=6)  # 15:30 Monday
    open_request(world)  # first response due Tue 11:30 (1.5h today, 2.5h tomorrow)
    assert ticket(world).first_response_due == datetime(2026, 11, 17, 11, 30, tzinfo=NY)
    world.advance(hours=19)  # Tue 10:30
    assert not ticket(world).first_response_breached
    world.advance(minutes=61)
    assert ticket(world).first_response_breached


def test_escalate_button_moves_the_ticket_to_t2_once(world):
    open_request(world)
    world.advance(minutes=31)  # 10:01: infra-oncall has handed over
    world.slack.press(card(world), "support.escalate", T1)
    found = ticket(world)
    assert (found.tier, found.assignee) == (2, T2)
    assert "asked for by a responder" in world.fake.posts(TRIAGE)[0].text
    world.slack.press(card(world), "support.escalate", T1)
    assert "already with T2" in world.last_response()["text"]


def test_resolve_button_then_the_requester_rates_and_comments(world):
    ts = open_request(world)
    world.slack.press(card(world), "support.resolve", T1)
    found = ticket(world)
    assert found.state == "resolved" and found.resolution == "fixed"
    assert any("resolved" in m.text for m in thread(world, ts))
    [prompt] = [
        m for m in world.fake.dms(APP_DEV) if m.blocks and "support.rate.1" in json.dumps(m.blocks)
    ]
    world.slack.press(prompt, "support.rate.4", APP_DEV)
    assert ticket(world).rating == 4
    assert "rated ticket #1" in world.last_response()["text"]
    world.slack.submit_view(world.opened_view(), APP_DEV, {"comment": {"value": "Took a while"}})
    assert ticket(world).rating_comment == "Took a while"


def test_only_the_requester_rates(world):
    open_request(world)
    world.slack.press(card(world), "support.resolve", T1)
    [prompt] = [
        m for m in world.fake.dms(APP_DEV) if m.blocks and "support.rate.1" in json.dumps(m.blocks)
    ]
    world.slack.press(prompt, "support.rate.5", T1)
    assert "Only the person who asked" in world.last_response()["text"]


def test_requesters_check_mark_resolves_and_others_do_not(world):
    ts = open_request(world)
    world.slack.reaction(T1, "white_check_mark", HELP, ts)
    assert ticket(world).state == "new"
    world.slack.reaction(APP_DEV, "white_check_mark", HELP, ts)
    assert ticket(world).state == "resolved"


def test_requester_reply_within_7_days_reopens_and_later_does_not(world):
    ts = open_request(world)
    world.slack.press(card(world), "support.resolve", T1)
    world.advance(days=6)
    world.slack.message(HELP, APP_DEV, "it is back", thread_ts=ts)
    assert ticket(world).state == "reopened"
    world.slack.press(card(world), "support.resolve", T1)
    world.advance(days=7, minutes=1)
    world.slack.message(HELP, APP_DEV, "thanks again", thread_ts=ts)
    assert ticket(world).state == "resolved"


def test_runbook_answer_is_offered_and_this_solved_it_resolves_as_answered_by_docs(world):
    open_request(world, "How do I get read access to the orders postgres database?")
    blocks = json.dumps(card(world).blocks)
    assert "How to request database access" in blocks and "support.solved" in blocks
    world.slack.press(card(world), "support.solved", APP_DEV)
    found = ticket(world)
    assert (found.state, found.resolution) == ("resolved", "docs")
    assert found.runbook == "how-to-request-database-access"


def test_similar_open_ticket_is_linked_and_can_be_merged(world):
    open_request(world, "Gateway returns 503 for the payments service")
    open_request(world, "payments service gets 503 from the gateway since 9am", user="U0APP00002")
    blocks = json.dumps(card(world, 2).blocks)
    assert "Similar open tickets" in blocks and "Merge into #1" in blocks
    world.slack.press(card(world, 2), "support.merge", T1)
    assert (ticket(world, 2).resolution, ticket(world, 2).duplicate_of) == ("duplicate", 1)
    assert "merged" in history(world, 1)


def test_similar_tickets_read_a_ticket_as_it_is_now_after_its_text_changes(world):
    open_request(world, "Gateway returns 503 for the payments service")
    open_request(world, "payments service gets 503 from the gateway since 9am", user="U0APP00002")
    now = world.clock.now()
    with world.db.session() as session:
        second = session.get(Ticket, 2)
        assert [t.id for t in service.similar_open_tickets(session, second, now)] == [1]
        first = session.get(Ticket, 1)
        first.summary = first.details = "Please review my pull request to the terraform modules"
        session.add(first)
        session.flush()
        # The terms of #1 were counted for the first answer; its new text is counted afresh.
        assert service.similar_open_tickets(session, second, now) == []


def test_similar_tickets_that_read_alike_are_listed_newest_first(world):
    for user in ("U0APP00001", "U0APP00002", "U0APP00003"):
        open_request(world, "Gateway returns 503 for the payments service", user=user)
        world.advance(minutes=5)
    with world.db.session() as session:
        third = session.get(Ticket, 3)
        found = service.similar_open_tickets(session, third, world.clock.now())
    assert [t.id for t in found] == [2, 1]


def test_unrelated_tickets_are_not_linked(world):
    open_request(world, "Gateway returns 503 for the payments service")
    open_request(world, "Please review my pull request to the terraform modules", user="U0APP00002")
    assert "Similar open tickets" not in json.dumps(card(world, 2).blocks)


def test_design_question_gets_the_next_office_hours_slot_instead_of_an_sla(world):
    open_request(world, "Should we shard the events topic per tenant?")
    world.slack.action(
        "support.category",
        T1,
        selected_option="1:office_hours",
        channel=HELP,
        message={"ts": card(world).ts, "type": "message", "text": ""},
    )
    found = ticket(world)
    assert found.office_hours_at == datetime(2026, 11, 19, 14, 0, tzinfo=NY)
    assert found.first_response_due is None
    world.advance(days=5)
    assert not ticket(world).first_response_breached


def test_office_hours_on_a_holiday_move_to_the_next_week():
    org = parse_org(sample_org_text().replace("holidays: [2026-12-25", "holidays: [2026-11-26"))
    queue = org.queue("infra-help")
    start, end = intake.next_office_hours(org, queue, datetime(2026, 11, 20, 9, 0, tzinfo=NY))
    assert start == datetime(2026, 12, 3, 14, 0, tzinfo=NY)  # Thanksgiving (26 Nov) skipped
    assert end - start == timedelta(hours=1)


def test_critical_request_for_a_tier_0_app_pages_through_the_critical_policy(world):
    world.slack.command("/support", "", user=APP_DEV, channel=HELP)
    view = world.opened_view()
    world.slack.submit_view(
        view,
        APP_DEV,
        {
            "summary": {"value": "Checkout payments failing"},
            "severity": {
                "value": {"type": "static_select", "selected_option": {"value": "critical"}}
            },
            "application": {
                "value": {"type": "static_select", "selected_option": {"value": "checkout"}}
            },
            "impact": {"value": {"type": "static_select", "selected_option": {"value": "revenue"}}},
            "why_now": {
                "value": "Card payments fail with a platform TLS error; nothing changed on our side"
            },
        },
    )
    found = ticket(world)
    assert found.page_id is not None and found.tier == 2
    assert "paged" in history(world)
    assert "paged the on-call engineer" in json.dumps(card(world).blocks)


def test_critical_request_for_a_tier_3_app_in_business_hours_gets_the_honest_notice(world):
    world.slack.command("/support", "", user=APP_DEV, channel=HELP)
    world.slack.submit_view(
        world.opened_view(),
        APP_DEV,
        {
            "summary": {"value": "Wiki search is broken"},
            "severity": {
                "value": {"type": "static_select", "selected_option": {"value": "critical"}}
            },
            "application": {
                "value": {"type": "static_select", "selected_option": {"value": "wiki"}}
            },
            "impact": {
                "value": {"type": "static_select", "selected_option": {"value": "deadline"}}
            },
            "why_now": {"value": "The audit team needs the wiki today"},
        },
    )
    found = ticket(world)
    assert found.page_id is None and found.severity == "critical"
    text = json.dumps(card(world).blocks)
    assert "not paged" in text and "next business day" in text and "Tue 17 Nov 09:00 EST" in text


def test_critical_request_outside_business_hours_pages_even_for_a_tier_3_app(world):
    world.advance(hours=10)  # 19:30
    ts = open_request(world, "wiki down")
    world.slack.action(
        "support.severity",
        APP_DEV,
        selected_option="1:critical",
        channel=HELP,
        message={"ts": card(world).ts, "type": "message", "text": ""},
    )
    view = world.opened_view()
    assert view["callback_id"] == "support.critical"
    world.slack.submit_view(
        view,
        APP_DEV,
        {"impact": {"value": {"type": "static_select", "selected_option": {"value": "deadline"}}}},
    )
    assert set(world.last_ack()["errors"]) == {"why_now"}
    world.slack.submit_view(
        view,
        APP_DEV,
        {
            "impact": {
                "value": {"type": "static_select", "selected_option": {"value": "deadline"}}
            },
            "why_now": {"value": "Audit evidence is due tonight and the wiki returns 500"},
        },
    )
    found = ticket(world)
    assert found.severity == "critical" and found.page_id is not None
    assert any("paged the on-call engineer" in m.text for m in thread(world, ts))


def test_app_home_shows_tickets_assigned_to_you_and_tickets_you_asked(world):
    open_request(world, "Need more CI runners")
    world.slack.home_opened(T1)
    home = json.dumps(world.fake.home_views[T1]["blocks"])
    assert "Support tickets assigned to you" in home and "Need more CI runners" in home
    world.slack.home_opened(APP_DEV)
    home = json.dumps(world.fake.home_views[APP_DEV]["blocks"])
    assert "Tickets you asked" in home and "Need more CI runners" in home


def test_open_tickets_are_offered_to_the_on_call_handoff_report(world):
    open_request(world, "Need more CI runners")
    provider = world.runtime.extras["oncall.open_tickets"]
    with world.db.session() as session:
        [found] = provider(session, "infra")
        assert found.title == "#1 Need more CI runners" and found.opened_at == world.clock.now()
        assert provider(session, "data") == []


def test_weekly_report_is_posted_to_the_team_channel_on_monday_morning(world):
    for text in [
        "How to get db access",
        "How to get a namespace",
        "How to add a DNS name",
        "How to rotate a secret",
    ]:
        ts = open_request(world, text)
        world.slack.action(
            "support.category",
            T1,
            selected_option=f"{ticket_count(world)}:how_to",
            channel=HELP,
            message={"ts": ts, "type": "message", "text": ""},
        )
    world.advance(days=7)  # Mon 23 Nov 09:30: the 09:00 report ran
    [report] = [
        m for m in world.fake.posts(INFRA) if m.blocks and "Support report" in json.dumps(m.blocks)
    ]
    text = json.dumps(report.blocks)
    assert "How-to / usage: 4" in text and "investigate" in text
    assert "Operational load" in text and "40%" in text  # 2 rotations held by 5 people
    assert "Still open at the end" in text


def ticket_count(world) -> int:
    with world.db.session() as session:
        return len(session.exec(select(Ticket)).all())


def test_support_report_command_answers_privately(world):
    open_request(world)
    world.slack.command("/support", "report infra-help 2", user="U0MGR00001")
    reply = world.last_response()
    assert reply["response_type"] == "ephemeral"
    assert "Support report: infra-help" in json.dumps(reply["blocks"])


def test_support_report_with_a_bad_queue_or_weeks_says_what_is_wrong(world):
    world.slack.command("/support", "report nosuch", user="U0MGR00001")
    assert "no support queue 'nosuch'" in world.last_response()["text"]
    world.slack.command("/support", "report 99", user="U0MGR00001")
    assert "Weeks must be from 1 to 26" in world.last_response()["text"]


def test_weekly_report_due_is_monday_0900_local_across_dst(world):
    queue = world.org.queue("infra-help")
    after = datetime(2026, 10, 27, 12, 0, tzinfo=NY)  # a week before New York falls back
    due = reporting.weekly_report_due(world.org, queue, after)
    assert due.astimezone(NY).strftime("%a %d %b %H:%M %Z") == "Mon 02 Nov 09:00 EST"
    spring = reporting.weekly_report_due(world.org, queue, datetime(2027, 3, 9, tzinfo=NY))
    assert spring.astimezone(NY).strftime("%a %d %b %H:%M %Z") == "Mon 15 Mar 09:00 EDT"
    assert reporting.weekly_report_due(world.org, queue, due) - due == timedelta(weeks=1)


def test_breach_across_the_fall_back_weekend_fires_at_monday_1100_est(world_factory, tmp_path):
    world = world_factory(start=datetime(2026, 10, 30, 15, 0, tzinfo=NY))  # Friday, EDT
    world.runtime.extras["runbooks"] = RunbookIndex(tmp_path)
    open_request(world)
    due = ticket(world).first_response_due
    assert due == datetime(2026, 11, 2, 11, 0, tzinfo=NY)  # 2h Friday + 2h Monday, now EST
    assert due.astimezone(NY).tzname() == "EST"
    world.advance(days=2, hours=20, minutes=59)  # Mon 10:59 EST: 69 real hours (fall back)
    assert not ticket(world).first_response_breached
    world.advance(minutes=2)
    assert ticket(world).first_response_breached


def test_raising_the_severity_re_times_the_clock(world):
    open_request(world)  # normal at 09:30: first response by 13:30
    world.slack.action(
        "support.severity",
        APP_DEV,
        selected_option="1:high",
        channel=HELP,
        message={"ts": card(world).ts, "type": "message", "text": ""},
    )
    found = ticket(world)
    assert found.severity == "high"
    assert found.first_response_due == datetime(2026, 11, 16, 10, 30, tzinfo=NY)
    world.advance(hours=1, minutes=1)
    assert ticket(world).first_response_breached


def test_the_demo_tells_the_support_story(capsys):
    from io import StringIO

    from bot.demo.story import run_demo

    out = StringIO()
    assert run_demo(out, color=False) == 0
    text = out.getvalue()
    assert "Support: tickets in tiered queues with SLAs" in text
    assert "answered by docs" in text
    assert "Escalated to T2" in text and "#infra-triage" in text
    assert "paged the on-call engineer" in text
