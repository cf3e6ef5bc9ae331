"""Pager load in the book's numbers, and the figures paging gives on-call's handoff report."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.paging import lifecycle, service
from bot.paging.load import STRAINED, UNSUSTAINABLE, weekly_load

NY = ZoneInfo("America/New_York")
FIRST_WEEK = datetime(2026, 11, 2, 12, 0, tzinfo=NY)  # Alice (U0ENG00001) is on call
ALICE, BOB = "U0ENG00001", "U0ENG00002"


def page_at(world, when, classification=None, fall_through=False, resolve=True):
    world.clock.set(when)
    with world.db.session() as session:
        page_id = service.trigger_page(
            world.runtime, session, policy_id="infra-default", summary=f"page at {when}"
        ).id
    if fall_through:
        world.advance(minutes=16)
    if resolve:
        with world.db.session() as session:
            lifecycle.resolve(world.runtime, session, page_id, ALICE, classification=classification)
    return page_id


def busy_fortnight(world):
    """Week 1: Alice gets 6 business-impacting pages and a false alarm. Week 2: Bob gets one
    business-impacting page at night that falls through to the secondary, and deploy noise."""
    for day in range(6):
        page_at(world, FIRST_WEEK + timedelta(days=day, hours=1), "business_impacting")
    page_at(world, FIRST_WEEK + timedelta(days=6), "false_alarm")
    page_at(
        world,
        datetime(2026, 11, 11, 2, 0, tzinfo=NY),
        "business_impacting",
        fall_through=True,
    )
    page_at(world, datetime(2026, 11, 12, 14, 0, tzinfo=NY), "deploy_noise")
    world.clock.set(datetime(2026, 11, 16, 9, 30, tzinfo=NY))


def test_weekly_load_counts_business_impacting_pages_per_week_and_per_person(world_factory):
    world = world_factory(start=FIRST_WEEK)
    busy_fortnight(world)
    now = world.clock.now()
    with world.db.session() as session:
        report = weekly_load(session, world.org, "infra-oncall", now, weeks=2)
    first, second = report.weeks
    assert (first.counts.counted, first.level) == (6, UNSUSTAINABLE)
    assert (second.counts.counted, second.level) == (1, "healthy")
    assert report.per_week == 3.5 and report.level == STRAINED
    assert report.restore_stability is False
    totals = report.totals
    assert (totals.pages, totals.business_impacting, totals.false_alarms, totals.deploy_noise) == (
        9,
        7,
        1,
        1,
    )
    # Week 1's pages at 13:00 on weekdays are in hours; Saturday's, Sunday's and 02:00 are not.
    assert totals.off_hours == 3
    assert totals.fell_through == 1 and round(report.fall_through_rate, 3) == round(1 / 9, 3)
    people = {p.person: p for p in report.people}
    assert people[ALICE].per_week == 6 and people[ALICE].level == UNSUSTAINABLE
    assert people[BOB].counts.pages == 2 and people[BOB].level == "healthy"


def test_more_than_five_a_week_flags_restore_stability(world_factory):
    world = world_factory(start=FIRST_WEEK)
    busy_fortnight(world)
    with world.db.session() as session:
        report = weekly_load(
            session, world.org, "infra-oncall", datetime(2026, 11, 9, 9, 0, tzinfo=NY), weeks=1
        )
    assert report.per_week == 6 and report.restore_stability


def test_unclassified_pages_count_until_someone_classifies_them(world_factory):
    world = world_factory(start=FIRST_WEEK)
    for hour in range(3):
        page_at(world, FIRST_WEEK + timedelta(hours=hour), classification=None)
    with world.db.session() as session:
        report = weekly_load(session, world.org, "infra-oncall", world.clock.now(), weeks=1)
    assert report.totals.unclassified == 3 and report.per_week == 3


def test_shift_figures_and_open_pages_feed_the_handoff_report(world_factory):
    world = world_factory(start=FIRST_WEEK)
    busy_fortnight(world)
    still_open = page_at(world, datetime(2026, 11, 16, 9, 0, tzinfo=NY), resolve=False)
    figures = world.runtime.extras["oncall.shift_figures"]
    open_pages = world.runtime.extras["oncall.open_pages"]
    with world.db.session() as session:
        alice = figures(
            session,
            "infra-oncall",
            datetime(2026, 11, 2, 10, 0, tzinfo=NY),
            datetime(2026, 11, 9, 10, 0, tzinfo=NY),
        )
        pending = open_pages(session, "infra-oncall")
    assert (alice.pages, alice.business_impacting, alice.false_alarms, alice.off_hours) == (
        7,
        6,
        1,
        2,
    )
    assert [p.id for p in pending] == [still_open]
    assert pending[0].summary.startswith("page at") and pending[0].opened_at is not None


def test_oncall_load_shows_the_pager_load_beside_the_on_call_shares(world_factory):
    world = world_factory(start=FIRST_WEEK)
    busy_fortnight(world)
    world.slack.command("/oncall", "load infra-oncall", user=ALICE)
    text = json.dumps(world.last_response()["blocks"])
    assert "business-impacting pages a week over the last 4 weeks" in text
    assert "Fell through to the secondary" in text and "should be rare" in text
    assert f"<@{ALICE}>: 6.0 a week on call" in text


def test_oncall_load_flags_restore_stability(world_factory):
    world = world_factory(start=FIRST_WEEK)
    for day in range(7):
        for hour in (1, 2, 3):
            page_at(world, FIRST_WEEK + timedelta(days=day, hours=hour), "business_impacting")
    world.slack.command("/oncall", "load infra-oncall", user=ALICE)
    assert "Restore stability" in json.dumps(world.last_response()["blocks"])
