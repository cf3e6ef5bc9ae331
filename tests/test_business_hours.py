"""Business hours: one answer for every feature, in the team's zone, across weekends, holidays and DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.business_hours import (
    BusinessCalendar,
    add_business_time,
    business_time_between,
    is_business_hours,
    next_business_open,
)
from bot.clock import FrozenClock, as_utc, wall_time_to_utc
from bot.config import parse_org

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
TOKYO = ZoneInfo("Asia/Tokyo")

ORG = parse_org(
    """\
timezone: America/New_York
business_hours: {days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}
holidays: [2026-12-25, 2027-01-01]
teams:
  - {id: infra, name: Infrastructure}
  - {id: data, name: Data, timezone: Europe/London}
  - {id: apac, name: APAC, timezone: Asia/Tokyo}
"""
)


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ---- is_business_hours ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "team", "inside"),
    [
        (ny(2026, 11, 16, 9, 30), None, True),  # Monday morning
        (ny(2026, 11, 16, 9, 0), None, True),  # opening minute counts
        (ny(2026, 11, 16, 8, 59), None, False),
        (ny(2026, 11, 16, 17, 0), None, False),  # closing time does not
        (ny(2026, 11, 16, 16, 59), None, True),  # the last minute does
        (ny(2026, 11, 20, 12, 0), None, True),  # Friday
        (ny(2026, 11, 21, 12, 0), None, False),  # Saturday
        (ny(2026, 11, 22, 12, 0), None, False),  # Sunday
        (ny(2026, 12, 25, 12, 0), None, False),  # holiday on a Friday
        (ny(2027, 1, 1, 10, 0), None, False),  # holiday
        (ny(2026, 11, 16, 22, 0), None, False),  # after hours
        (ny(2026, 11, 16, 3, 0), None, False),  # the small hours
        (ny(2026, 11, 16, 9, 30), "infra", True),  # a team without a zone uses the org's
        (ny(2026, 11, 16, 9, 30), "data", True),  # 14:30 in London
        (ny(2026, 11, 16, 12, 30), "data", False),  # 17:30 in London
        (ny(2026, 11, 16, 4, 30), "data", True),  # 09:30 in London, before New York wakes
        (ny(2026, 11, 15, 20, 0), "apac", True),  # Sunday evening NY is Monday 10:00 Tokyo
        (ny(2026, 11, 16, 9, 30), "apac", False),  # 23:30 in Tokyo
        (ny(2026, 11, 20, 20, 0), "apac", False),  # Saturday 10:00 in Tokyo
    ],
)
def test_is_business_hours_in_the_teams_zone(instant, team, inside):
    assert is_business_hours(ORG, instant, team) is inside


@pytest.mark.parametrize(
    ("instant", "inside"),
    [
        # New York springs forward Sun 8 Mar 2026; Monday's hours are 09:00-17:00 EDT (13-21 UTC).
        (utc(2026, 3, 9, 13, 0), True),
        (utc(2026, 3, 9, 12, 59), False),
        (utc(2026, 3, 6, 13, 59), False),  # the Friday before: 08:59 EST
        (utc(2026, 3, 6, 14, 0), True),
        # New York falls back Sun 1 Nov 2026; Monday opens at 14:00 UTC again.
        (utc(2026, 11, 2, 13, 30), False),
        (utc(2026, 11, 2, 14, 0), True),
        (utc(2026, 10, 30, 13, 0), True),  # the Friday before: 09:00 EDT
    ],
)
def test_business_hours_follow_new_york_dst(instant, inside):
    assert is_business_hours(ORG, instant) is inside


@pytest.mark.parametrize(
    ("instant", "inside"),
    [
        # London springs forward Sun 29 Mar 2026 (New York already has, 8 Mar).
        (utc(2026, 3, 27, 9, 0), True),  # Friday 09:00 GMT
        (utc(2026, 3, 30, 8, 0), True),  # Monday 09:00 BST
        (utc(2026, 3, 30, 16, 30), False),  # Monday 17:30 BST
        (utc(2026, 3, 27, 16, 30), True),  # Friday 16:30 GMT
        # London falls back Sun 25 Oct 2026, a week before New York.
        (utc(2026, 10, 26, 8, 30), False),  # Monday 08:30 GMT
        (utc(2026, 10, 26, 9, 0), True),
    ],
)
def test_business_hours_follow_london_dst_for_a_london_team(instant, inside):
    assert is_business_hours(ORG, instant, "data") is inside


# ---- add_business_time ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "delta", "team", "expected"),
    [
        (ny(2026, 11, 16, 10, 0), timedelta(hours=2), None, ny(2026, 11, 16, 12, 0)),
        (ny(2026, 11, 16, 16, 0), timedelta(hours=2), None, ny(2026, 11, 17, 10, 0)),  # overnight
        (ny(2026, 11, 20, 16, 0), timedelta(hours=2), None, ny(2026, 11, 23, 10, 0)),  # weekend
        (ny(2026, 11, 21, 11, 0), timedelta(hours=1), None, ny(2026, 11, 23, 10, 0)),  # from Sat
        (ny(2026, 11, 16, 20, 0), timedelta(minutes=15), None, ny(2026, 11, 17, 9, 15)),
        (ny(2026, 11, 16, 6, 0), timedelta(hours=8), None, ny(2026, 11, 16, 17, 0)),  # whole day
        (
            ny(2026, 11, 16, 9, 0),
            timedelta(days=3),
            None,
            ny(2026, 11, 26, 17, 0),
        ),  # 72h = 9 working days
        (ny(2026, 11, 16, 10, 0), timedelta(hours=40), None, ny(2026, 11, 23, 10, 0)),  # one week
        (ny(2026, 12, 24, 16, 0), timedelta(hours=2), None, ny(2026, 12, 28, 10, 0)),  # holiday
        (ny(2026, 12, 31, 16, 0), timedelta(hours=2), None, ny(2027, 1, 4, 10, 0)),  # new year
        (ny(2026, 11, 16, 10, 0), timedelta(0), None, ny(2026, 11, 16, 10, 0)),
        (ny(2026, 11, 21, 10, 0), timedelta(0), None, ny(2026, 11, 21, 10, 0)),
        # DST weeks: the clock change happens on the weekend in between.
        (ny(2026, 3, 6, 16, 0), timedelta(hours=2), None, utc(2026, 3, 9, 14, 0)),  # 10:00 EDT
        (ny(2026, 10, 30, 16, 0), timedelta(hours=2), None, utc(2026, 11, 2, 15, 0)),  # 10:00 EST
        (london(2026, 3, 27, 16, 0), timedelta(hours=2), "data", utc(2026, 3, 30, 9, 0)),
        (london(2026, 10, 23, 16, 0), timedelta(hours=2), "data", utc(2026, 10, 26, 10, 0)),
        # A team in another zone counts its own hours.
        (ny(2026, 11, 16, 12, 0), timedelta(hours=1), "data", london(2026, 11, 17, 10, 0)),
        (
            ny(2026, 11, 16, 10, 0),
            timedelta(hours=1),
            "apac",
            datetime(2026, 11, 17, 10, 0, tzinfo=TOKYO),
        ),
    ],
)
def test_add_business_time(start, delta, team, expected):
    assert add_business_time(ORG, start, delta, team) == expected


def test_adding_business_time_then_measuring_it_gives_it_back():
    start = ny(2026, 3, 5, 11, 17)
    for hours in (1, 7, 8, 9, 23, 41, 100):
        end = add_business_time(ORG, start, timedelta(hours=hours))
        assert business_time_between(ORG, start, end) == timedelta(hours=hours)


# ---- business_time_between ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "team", "expected"),
    [
        (ny(2026, 11, 16, 10, 0), ny(2026, 11, 16, 12, 30), None, timedelta(hours=2, minutes=30)),
        (ny(2026, 11, 16, 16, 0), ny(2026, 11, 17, 10, 0), None, timedelta(hours=2)),
        (ny(2026, 11, 20, 16, 0), ny(2026, 11, 23, 10, 0), None, timedelta(hours=2)),
        (ny(2026, 11, 21, 0, 0), ny(2026, 11, 23, 0, 0), None, timedelta(0)),  # a weekend
        (ny(2026, 11, 16, 0, 0), ny(2026, 11, 23, 0, 0), None, timedelta(hours=40)),
        (ny(2026, 12, 21, 0, 0), ny(2026, 12, 28, 0, 0), None, timedelta(hours=32)),  # Christmas
        (ny(2026, 11, 16, 18, 0), ny(2026, 11, 16, 20, 0), None, timedelta(0)),  # after hours
        (ny(2026, 11, 16, 12, 0), ny(2026, 11, 16, 10, 0), None, timedelta(0)),  # backwards
        # A DST week still has 40 business hours in it, not 39 or 41.
        (ny(2026, 3, 2, 0, 0), ny(2026, 3, 16, 0, 0), None, timedelta(hours=80)),
        (ny(2026, 10, 26, 0, 0), ny(2026, 11, 9, 0, 0), None, timedelta(hours=80)),
        (london(2026, 3, 23, 0, 0), london(2026, 4, 6, 0, 0), "data", timedelta(hours=80)),
        # New York 10:00-12:00 is London 15:00-17:00: all of it inside London's day.
        (ny(2026, 11, 16, 10, 0), ny(2026, 11, 16, 12, 0), "data", timedelta(hours=2)),
        (ny(2026, 11, 16, 11, 0), ny(2026, 11, 16, 13, 0), "data", timedelta(hours=1)),
    ],
)
def test_business_time_between(start, end, team, expected):
    assert business_time_between(ORG, start, end, team) == expected


# ---- next_business_open ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "team", "expected"),
    [
        (ny(2026, 11, 16, 10, 0), None, ny(2026, 11, 16, 10, 0)),  # already open: itself
        (ny(2026, 11, 16, 7, 0), None, ny(2026, 11, 16, 9, 0)),
        (ny(2026, 11, 16, 17, 0), None, ny(2026, 11, 17, 9, 0)),
        (ny(2026, 11, 20, 18, 0), None, ny(2026, 11, 23, 9, 0)),  # Friday evening
        (ny(2026, 12, 24, 18, 0), None, ny(2026, 12, 28, 9, 0)),  # over a holiday weekend
        (ny(2026, 3, 7, 12, 0), None, utc(2026, 3, 9, 13, 0)),  # 09:00 EDT after springing forward
        (ny(2026, 11, 16, 12, 30), "data", london(2026, 11, 17, 9, 0)),
    ],
)
def test_next_business_open(instant, team, expected):
    assert next_business_open(ORG, instant, team) == expected


def test_a_calendar_with_no_business_days_says_so_instead_of_looping():
    org = parse_org("business_hours: {days: [], start: '09:00', end: '17:00'}\n")
    with pytest.raises(ValueError):
        next_business_open(org, ny(2026, 11, 16, 10, 0))


def test_hours_that_open_inside_a_dst_gap_open_at_the_first_valid_instant():
    org = parse_org(
        'timezone: America/New_York\nbusiness_hours: {days: [sun], start: "02:30", end: "04:00"}\n'
    )
    calendar = BusinessCalendar.for_team(org)
    # Sun 8 Mar 2026: 02:00 EST jumps to 03:00 EDT, so the day opens at 03:00 EDT, for one hour.
    assert calendar.window(ny(2026, 3, 8).date()) == (utc(2026, 3, 8, 7, 0), utc(2026, 3, 8, 8, 0))
    assert calendar.window(ny(2026, 3, 1).date()) == (utc(2026, 3, 1, 7, 30), utc(2026, 3, 1, 9, 0))


# ---- wall_time_to_utc -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "wall", "expected"),
    [
        # ordinary times
        ("America/New_York", datetime(2026, 11, 16, 10, 0), utc(2026, 11, 16, 15, 0)),
        ("Europe/London", datetime(2026, 7, 1, 10, 0), utc(2026, 7, 1, 9, 0)),
        ("Asia/Kolkata", datetime(2026, 3, 8, 2, 30), utc(2026, 3, 7, 21, 0)),
        # spring-forward gaps: the first valid instant after
        ("America/New_York", datetime(2026, 3, 8, 2, 30), utc(2026, 3, 8, 7, 0)),  # 03:00 EDT
        ("America/New_York", datetime(2026, 3, 8, 2, 0), utc(2026, 3, 8, 7, 0)),
        ("Europe/London", datetime(2026, 3, 29, 1, 30), utc(2026, 3, 29, 1, 0)),  # 02:00 BST
        ("Australia/Sydney", datetime(2026, 10, 4, 2, 30), utc(2026, 10, 3, 16, 0)),  # 03:00
        ("Australia/Lord_Howe", datetime(2026, 10, 4, 2, 15), utc(2026, 10, 3, 15, 30)),
        ("Australia/Lord_Howe", datetime(2026, 10, 4, 2, 0), utc(2026, 10, 3, 15, 30)),
        ("Australia/Lord_Howe", datetime(2026, 10, 4, 2, 30), utc(2026, 10, 3, 15, 30)),
        ("Pacific/Apia", datetime(2011, 12, 30, 12, 0), utc(2011, 12, 30, 10, 0)),  # a lost day
        # fall-back folds: the first occurrence
        ("America/New_York", datetime(2026, 11, 1, 1, 30), utc(2026, 11, 1, 5, 30)),  # EDT
        ("Europe/London", datetime(2026, 10, 25, 1, 30), utc(2026, 10, 25, 0, 30)),  # BST
        ("Europe/Dublin", datetime(2026, 10, 25, 1, 30), utc(2026, 10, 25, 0, 30)),
        ("Australia/Sydney", datetime(2026, 4, 5, 2, 30), utc(2026, 4, 4, 15, 30)),  # AEDT
        ("Australia/Lord_Howe", datetime(2026, 4, 5, 1, 45), utc(2026, 4, 4, 14, 45)),  # +11
        ("Australia/Lord_Howe", datetime(2026, 4, 5, 1, 30), utc(2026, 4, 4, 14, 30)),
        ("Australia/Lord_Howe", datetime(2026, 4, 5, 2, 0), utc(2026, 4, 4, 15, 30)),  # after
    ],
)
def test_wall_time_to_utc(zone, wall, expected):
    assert wall_time_to_utc(wall, ZoneInfo(zone)) == expected


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/London", "Australia/Lord_Howe"])
def test_every_existing_wall_time_round_trips(zone):
    tz = ZoneInfo(zone)
    instant = utc(2026, 1, 1)
    while instant < utc(2027, 1, 1):
        wall = instant.astimezone(tz).replace(tzinfo=None)
        back = wall_time_to_utc(wall, tz)
        assert back.astimezone(tz).replace(tzinfo=None) == wall
        assert back <= instant  # a repeated time gives its first occurrence
        instant += timedelta(minutes=30)


# ---- the clock ------------------------------------------------------------------------------------


def test_the_frozen_clock_only_moves_when_told():
    clock = FrozenClock(ny(2026, 11, 16, 9, 30))
    assert clock.now() == utc(2026, 11, 16, 14, 30)
    assert clock.now().tzinfo == UTC
    assert clock.advance(minutes=15) == utc(2026, 11, 16, 14, 45)
    clock.set(london(2026, 11, 16, 16, 0))
    assert clock.now() == utc(2026, 11, 16, 16, 0)
    with pytest.raises(ValueError):
        clock.set(datetime(2026, 11, 16, 16, 0))


def test_as_utc_restores_the_zone_sqlite_forgets():
    assert as_utc(datetime(2026, 11, 16, 14, 30)) == utc(2026, 11, 16, 14, 30)
    assert as_utc(ny(2026, 11, 16, 9, 30)) == utc(2026, 11, 16, 14, 30)


def test_business_targets_read_written_days_as_business_days_and_hours_as_hours(sample_org):
    from bot.business_hours import BusinessCalendar
    from bot.durations import parse_duration

    calendar = BusinessCalendar.for_team(sample_org, "infra")  # 09:00-17:00, Mon-Fri
    assert calendar.working_span(parse_duration("3d")) == timedelta(hours=24)
    assert calendar.working_span(parse_duration("2w")) == timedelta(hours=80)
    assert calendar.working_span(parse_duration("24h")) == timedelta(hours=24)
    assert calendar.working_span(parse_duration("1d4h")) == timedelta(hours=12)
    assert sample_org.support.sla["normal"].resolution.days_written == 3  # kept through config


# ---- public holidays from a country's calendar ---------------------------------------------------

HOLIDAY_ORG = parse_org(
    """\
timezone: America/New_York
public_holidays: US-NY
holidays: [2026-12-24]
teams:
  - {id: infra, name: Infrastructure}
  - {id: data, name: Data, timezone: Europe/London, public_holidays: GB-ENG}
"""
)


def test_a_countrys_public_holidays_are_not_business_days():
    thanksgiving = ny(2026, 11, 26, 11, 0)
    assert not is_business_hours(HOLIDAY_ORG, thanksgiving, "infra")
    assert is_business_hours(ORG, thanksgiving, "infra")  # an org without public_holidays
    # An SLA clock started on Wednesday afternoon skips Thanksgiving.
    start = ny(2026, 11, 25, 16, 0)
    assert add_business_time(HOLIDAY_ORG, start, timedelta(hours=2), "infra") == ny(
        2026, 11, 27, 10, 0
    )


def test_configured_dates_still_count_beside_the_countrys_calendar():
    calendar = BusinessCalendar.for_team(HOLIDAY_ORG, "infra")
    assert not calendar.is_business_day(datetime(2026, 12, 24).date())
    assert calendar.holidays.name(datetime(2026, 12, 24).date()) == "holiday"
    assert calendar.holidays.name(datetime(2026, 11, 26).date()) == "Thanksgiving Day"


def test_a_team_with_its_own_public_holidays_follows_them_not_the_orgs():
    london = BusinessCalendar.for_team(HOLIDAY_ORG, "data")
    assert london.is_business_day(datetime(2026, 11, 26).date())  # not a holiday in England
    assert not london.is_business_day(datetime(2026, 12, 28).date())  # Boxing Day, substitute
    assert next_business_open(
        HOLIDAY_ORG, datetime(2026, 12, 24, 17, 0, tzinfo=LONDON), "data"
    ) == datetime(2026, 12, 29, 9, 0, tzinfo=LONDON)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("XX", "'XX' is not a known country or subdivision"),
        ("US-ZZ", "'US-ZZ' is not a known country or subdivision"),
    ],
)
def test_an_unknown_public_holiday_calendar_is_a_config_error(value, message):
    from bot.config import check_org_text

    report = check_org_text(f"timezone: UTC\npublic_holidays: {value}\n")
    (error,) = report.errors
    assert str(error).startswith(f"opsbot.yaml:2 public_holidays: {message}")
    assert str(error).endswith("use an ISO code like US, GB-SCT or DE-BY")
