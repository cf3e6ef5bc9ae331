"""Cycle arithmetic: deadlines every cadence of local wall time, exact across DST and New Year."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.wins.cycles import CycleCalendar, quarter_days, quarter_of

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
SYDNEY = ZoneInfo("Australia/Sydney")


def cal(first: str, zone: ZoneInfo, cadence: timedelta = timedelta(weeks=2)) -> CycleCalendar:
    return CycleCalendar(datetime.strptime(first, "%Y-%m-%d %H:%M"), cadence, zone)


@pytest.mark.parametrize(
    ("first", "zone", "number", "local", "utc"),
    [
        # New York falls back on 1 Nov 2026: 15:00 EDT (19:00Z) then 15:00 EST (20:00Z).
        ("2026-10-28 15:00", NY, 0, "2026-10-28 15:00", "2026-10-28 19:00"),
        ("2026-10-28 15:00", NY, 1, "2026-11-11 15:00", "2026-11-11 20:00"),
        # ... and springs forward on 14 Mar 2027.
        ("2026-11-25 15:00", NY, 7, "2027-03-03 15:00", "2027-03-03 20:00"),
        ("2026-11-25 15:00", NY, 8, "2027-03-17 15:00", "2027-03-17 19:00"),
        # A cycle across New Year: 23 Dec 2026 -> 6 Jan 2027, no ISO-week parity games.
        ("2026-11-25 15:00", NY, 2, "2026-12-23 15:00", "2026-12-23 20:00"),
        ("2026-11-25 15:00", NY, 3, "2027-01-06 15:00", "2027-01-06 20:00"),
        # 2026 has 53 ISO weeks; a two-week cadence keeps its weekday through 2027 and 2028.
        ("2026-11-25 15:00", NY, 30, "2028-01-19 15:00", "2028-01-19 20:00"),
        # London moves on 29 Mar 2026: 09:00 GMT is 09:00Z, 09:00 BST is 08:00Z.
        ("2026-03-18 09:00", LONDON, 1, "2026-04-01 09:00", "2026-04-01 08:00"),
        # Southern hemisphere: Sydney leaves daylight time on 5 Apr 2026.
        ("2026-03-25 17:00", SYDNEY, 1, "2026-04-08 17:00", "2026-04-08 07:00"),
        # A weekly cadence across a DST change.
        ("2026-10-28 15:00", NY, 1, "2026-11-04 15:00", "2026-11-04 20:00"),
    ],
)
def test_deadline_stays_at_local_wall_time(first, zone, number, local, utc):
    cadence = timedelta(weeks=1) if "2026-11-04" in local else timedelta(weeks=2)
    calendar = cal(first, zone, cadence)
    deadline = calendar.deadline(number)
    assert deadline.astimezone(zone).strftime("%Y-%m-%d %H:%M") == local
    assert deadline.astimezone(UTC).strftime("%Y-%m-%d %H:%M") == utc


def test_a_cycle_covers_the_cadence_before_its_deadline():
    calendar = cal("2026-11-25 15:00", NY)
    assert calendar.start(0) == calendar.deadline(-1)
    assert calendar.start(0).astimezone(NY).strftime("%Y-%m-%d %H:%M") == "2026-11-11 15:00"
    assert calendar.start(3) == calendar.deadline(2)


@pytest.mark.parametrize(
    ("instant", "number"),
    [
        (datetime(2026, 1, 1, tzinfo=UTC), 0),  # long before the first deadline: cycle 0
        (datetime(2026, 11, 25, 19, 59, tzinfo=UTC), 0),  # 14:59 EST
        (datetime(2026, 11, 25, 20, 0, tzinfo=UTC), 1),  # the deadline itself closes cycle 0
        (datetime(2027, 1, 6, 19, 59, tzinfo=UTC), 3),
        (datetime(2027, 1, 6, 20, 0, tzinfo=UTC), 4),
        (datetime(2027, 3, 17, 18, 59, tzinfo=UTC), 8),  # 14:59 EDT
        (datetime(2027, 3, 17, 19, 0, tzinfo=UTC), 9),
    ],
)
def test_the_cycle_collecting_at_an_instant(instant, number):
    assert cal("2026-11-25 15:00", NY).number_at(instant) == number


def test_reminders_fall_the_lead_before_each_deadline_across_dst():
    calendar = cal("2026-11-25 15:00", NY)
    next_due = calendar.before_each_deadline(timedelta(days=2))
    t = datetime(2027, 3, 1, tzinfo=UTC)
    due = next_due(t)
    assert due == calendar.deadline(7) - timedelta(days=2)
    after = next_due(due)
    assert after == calendar.deadline(8) - timedelta(days=2)
    # 48 hours before 15:00 EDT on Wed 17 Mar is 15:00 EDT on Mon 15 Mar.
    assert after.astimezone(NY).strftime("%a %d %b %H:%M") == "Mon 15 Mar 15:00"


def test_cycles_of_a_quarter_are_those_whose_deadline_falls_in_it():
    calendar = cal("2026-11-25 15:00", NY)
    first, last = quarter_days("2026q4")
    assert (first, last) == (date(2026, 10, 1), date(2026, 12, 31))
    numbers = calendar.numbers_in(first, last)
    days = [calendar.deadline(n).astimezone(NY).date().isoformat() for n in numbers]
    assert days == ["2026-11-25", "2026-12-09", "2026-12-23"]
    assert quarter_of(date(2027, 1, 6)) == "2027Q1"


@pytest.mark.parametrize("text", ["2026", "2026Q5", "Q4 2026", "26Q4"])
def test_a_quarter_that_does_not_parse_says_how_to_write_it(text):
    with pytest.raises(ValueError, match="2026Q4"):
        quarter_days(text)
