"""The SLA clock: business time only, pauses skipped, correct across DST changes and holidays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.business_hours import BusinessCalendar
from bot.config import parse_org
from bot.support import sla

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")

ORG = parse_org(
    """
timezone: America/New_York
business_hours: {days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}
holidays: [2026-11-26, 2026-12-25]
teams:
  - {id: infra, name: Infra, members: [U0ENG00001]}
  - {id: data, name: Data, timezone: Europe/London, members: [U0ENG00011]}
  - {id: night, name: Night, timezone: America/New_York, members: [U0ENG00021]}
"""
)


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


def business(team: str = "infra") -> BusinessCalendar:
    return BusinessCalendar.for_team(ORG, team)


@pytest.mark.parametrize(
    ("case", "team", "start", "target", "expected_utc"),
    [
        (
            "same day",
            "infra",
            ny(2026, 11, 16, 10, 0),
            timedelta(hours=4),
            datetime(2026, 11, 16, 19, 0, tzinfo=UTC),
        ),
        (
            "overnight: 2h today, 2h tomorrow",
            "infra",
            ny(2026, 11, 16, 15, 0),
            timedelta(hours=4),
            datetime(2026, 11, 17, 16, 0, tzinfo=UTC),  # Tue 11:00 EST
        ),
        (
            "opened on a Saturday starts Monday at 09:00",
            "infra",
            ny(2026, 11, 14, 12, 0),
            timedelta(hours=1),
            datetime(2026, 11, 16, 15, 0, tzinfo=UTC),
        ),
        (
            "New York falls back over the weekend: Friday EDT, Monday EST",
            "infra",
            ny(2026, 10, 30, 15, 0),
            timedelta(hours=4),
            datetime(2026, 11, 2, 16, 0, tzinfo=UTC),  # Mon 11:00 EST (was 15:00 UTC in EDT)
        ),
        (
            "New York springs forward over the weekend: Friday EST, Monday EDT",
            "infra",
            ny(2026, 3, 6, 15, 0),
            timedelta(hours=4),
            datetime(2026, 3, 9, 15, 0, tzinfo=UTC),  # Mon 11:00 EDT
        ),
        (
            "London team counts London hours; London falls back a week before New York",
            "data",
            datetime(2026, 10, 23, 15, 0, tzinfo=LONDON),
            timedelta(hours=4),
            datetime(2026, 10, 26, 11, 0, tzinfo=UTC),  # Mon 11:00 GMT
        ),
        (
            "Thanksgiving is a holiday: Wednesday to Friday",
            "infra",
            ny(2026, 11, 25, 16, 0),
            timedelta(hours=2),
            datetime(2026, 11, 27, 15, 0, tzinfo=UTC),  # Fri 10:00 EST
        ),
        (
            "24 business hours are three business days",
            "infra",
            ny(2026, 11, 16, 9, 30),
            timedelta(days=1),
            datetime(2026, 11, 19, 14, 30, tzinfo=UTC),  # Thu 09:30 EST
        ),
    ],
)
def test_business_hours_deadline(case, team, start, target, expected_utc):
    assert sla.deadline(business(team), start, target) == expected_utc, case


def test_around_the_clock_deadline_counts_real_hours_through_the_repeated_hour():
    # Sun 1 Nov 2026 00:00 EDT + 4h: the 01:00 hour happens twice, so the wall clock reads 03:00.
    start = ny(2026, 11, 1, 0, 0)
    due = sla.deadline(sla.WallClock(), start, timedelta(hours=4))
    assert due == datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    assert due.astimezone(NY).strftime("%H:%M %Z") == "03:00 EST"


def test_around_the_clock_deadline_counts_real_hours_through_the_missing_hour():
    start = ny(2026, 3, 8, 0, 30)
    due = sla.deadline(sla.WallClock(), start, timedelta(hours=4))
    assert due.astimezone(NY).strftime("%H:%M %Z") == "05:30 EDT"


def test_business_hours_that_begin_in_a_spring_forward_gap_open_at_the_first_valid_instant():
    org = parse_org(
        """
timezone: America/New_York
business_hours: {days: [sun], start: "02:30", end: "05:00"}
teams: [{id: night, name: Night}]
"""
    )
    calendar = BusinessCalendar.for_team(org, "night")
    # 02:30 does not exist on 8 Mar 2026; the window is 03:00-05:00 EDT, two hours long.
    due = sla.deadline(calendar, ny(2026, 3, 8, 1, 0), timedelta(hours=1))
    assert due.astimezone(NY).strftime("%a %H:%M %Z") == "Sun 04:00 EDT"


def test_pause_moves_the_deadline_by_the_business_time_it_covered():
    start = ny(2026, 11, 16, 10, 0)
    pause = sla.Pause(ny(2026, 11, 16, 11, 0), ny(2026, 11, 16, 13, 0))
    assert sla.deadline(business(), start, timedelta(hours=4), [pause]) == ny(2026, 11, 16, 16, 0)


def test_pause_over_a_night_only_costs_its_business_hours():
    start = ny(2026, 11, 16, 10, 0)
    # Waiting from 16:00 Monday to 10:00 Tuesday covers 2 business hours (16-17, 9-10).
    pause = sla.Pause(ny(2026, 11, 16, 16, 0), ny(2026, 11, 17, 10, 0))
    due = sla.deadline(business(), start, timedelta(hours=8), [pause])
    assert due == ny(2026, 11, 17, 12, 0)


def test_an_open_pause_stops_the_clock():
    start = ny(2026, 11, 16, 10, 0)
    pause = sla.Pause(ny(2026, 11, 16, 11, 0), None)
    assert sla.deadline(business(), start, timedelta(hours=4), [pause]) is None


def test_a_pause_after_the_deadline_does_not_move_it():
    start = ny(2026, 11, 16, 10, 0)
    pause = sla.Pause(ny(2026, 11, 16, 15, 0), None)
    assert sla.deadline(business(), start, timedelta(hours=1), [pause]) == ny(2026, 11, 16, 11, 0)


def test_pause_across_the_fall_back_weekend():
    start = ny(2026, 10, 30, 14, 0)  # Friday EDT
    pause = sla.Pause(ny(2026, 10, 30, 16, 0), ny(2026, 11, 2, 10, 0))  # to Monday EST
    # 2h before the pause; the pause covers 16-17 Fri and 9-10 Mon; 2h more from Mon 10:00.
    due = sla.deadline(business(), start, timedelta(hours=4), [pause])
    assert due == ny(2026, 11, 2, 12, 0)
    assert due.astimezone(NY).tzname() == "EST"


def test_elapsed_counts_business_time_without_pauses():
    start = ny(2026, 11, 16, 10, 0)
    pause = sla.Pause(ny(2026, 11, 16, 11, 0), ny(2026, 11, 16, 12, 0))
    assert sla.elapsed(business(), start, ny(2026, 11, 17, 10, 0), [pause]) == timedelta(hours=7)


def test_pauses_come_from_waiting_and_resolved_states():
    t = [ny(2026, 11, 16, h, 0) for h in range(9, 17)]
    transitions = [
        (t[0], "new"),
        (t[1], "waiting"),
        (t[2], "in_progress"),
        (t[3], "resolved"),
        (t[4], "reopened"),
        (t[5], "waiting"),
        (t[6], "resolved"),
    ]
    assert sla.pauses_from(transitions) == [
        sla.Pause(t[1], t[2]),
        sla.Pause(t[3], t[4]),
        sla.Pause(t[5], None),
    ]


def test_reminder_comes_at_75_percent_of_the_target():
    clock = sla.clock(business(), ny(2026, 11, 16, 9, 0), timedelta(hours=4))
    assert clock.warn_at == ny(2026, 11, 16, 12, 0)
    assert clock.due_at == ny(2026, 11, 16, 13, 0)
