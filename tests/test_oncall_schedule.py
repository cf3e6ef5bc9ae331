"""Shift arithmetic: handoffs at the local wall time across DST, shifts that meet exactly."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from bot.config import Rotation
from bot.oncall.schedule import (
    Cadence,
    Roster,
    member_of,
    on_call_share,
    shift_at,
    shifts,
    start_weekday_mismatch,
)
from tests.bench.scale_org import ZONES as SCALE_ZONES


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def rotation(start: str, weekday: str, at: str, length: str = "1w", members=None) -> Rotation:
    return Rotation.model_validate(
        {
            "id": "r",
            "team": "t",
            "kind": "oncall",
            "members": members or ["U0A", "U0B", "U0C", "U0D"],
            "start": start,
            "handoff": {"weekday": weekday, "time": at},
            "length": length,
        }
    )


# (zone, first handoff, weekday, local time, index, expected UTC start of that shift)
DST_HANDOFFS = [
    # US spring forward: 02:30 does not exist on 8 Mar 2026, so 03:00 EDT.
    ("America/New_York", "2026-03-01", "sun", "02:30", 0, "2026-03-01 07:30"),
    ("America/New_York", "2026-03-01", "sun", "02:30", 1, "2026-03-08 07:00"),
    ("America/New_York", "2026-03-01", "sun", "02:30", 2, "2026-03-15 06:30"),
    # US fall back: 01:30 happens twice on 1 Nov 2026; the first (EDT) counts.
    ("America/New_York", "2026-10-25", "sun", "01:30", 0, "2026-10-25 05:30"),
    ("America/New_York", "2026-10-25", "sun", "01:30", 1, "2026-11-01 05:30"),
    ("America/New_York", "2026-10-25", "sun", "01:30", 2, "2026-11-08 06:30"),
    # Europe: 01:30 is skipped on 29 Mar 2026 (02:00 BST) and repeated on 25 Oct 2026.
    ("Europe/London", "2026-03-22", "sun", "01:30", 1, "2026-03-29 01:00"),
    ("Europe/London", "2026-10-18", "sun", "01:30", 1, "2026-10-25 00:30"),
    ("Europe/London", "2026-10-18", "sun", "01:30", 2, "2026-11-01 01:30"),
    # Southern hemisphere: Sydney springs forward in October and falls back in April.
    ("Australia/Sydney", "2026-09-27", "sun", "02:30", 1, "2026-10-03 16:00"),
    ("Australia/Sydney", "2026-03-29", "sun", "02:30", 1, "2026-04-04 15:30"),
    ("Australia/Sydney", "2026-03-29", "sun", "02:30", 2, "2026-04-11 16:30"),
    # Lord Howe moves by 30 minutes: 02:15 is skipped (to 02:30 +11), 01:45 repeats.
    ("Australia/Lord_Howe", "2026-09-27", "sun", "02:15", 0, "2026-09-26 15:45"),
    ("Australia/Lord_Howe", "2026-09-27", "sun", "02:15", 1, "2026-10-03 15:30"),
    ("Australia/Lord_Howe", "2026-03-29", "sun", "01:45", 1, "2026-04-04 14:45"),
    ("Australia/Lord_Howe", "2026-03-29", "sun", "01:45", 2, "2026-04-11 15:15"),
    # Half- and quarter-hour offsets without DST.
    ("Asia/Kolkata", "2026-03-02", "mon", "09:00", 0, "2026-03-02 03:30"),
    ("Asia/Kolkata", "2026-03-02", "mon", "09:00", 52, "2027-03-01 03:30"),
    ("Asia/Kathmandu", "2026-03-02", "mon", "09:00", 0, "2026-03-02 03:15"),
    ("Asia/Kathmandu", "2026-03-02", "mon", "00:00", 10, "2026-05-10 18:15"),
]


@pytest.mark.parametrize(("zone", "start", "weekday", "at", "index", "expected"), DST_HANDOFFS)
def test_handoff_happens_at_local_wall_time_across_dst(zone, start, weekday, at, index, expected):
    cadence = Cadence.of(rotation(start, weekday, at), ZoneInfo(zone))
    assert cadence.handoff(index) == utc(expected)


@pytest.mark.parametrize(("zone", "start", "weekday", "at", "index", "expected"), DST_HANDOFFS)
def test_bulk_handoffs_land_on_the_same_dst_instants(zone, start, weekday, at, index, expected):
    cadence = Cadence.of(rotation(start, weekday, at), ZoneInfo(zone))
    assert cadence.handoffs(index, 1) == [utc(expected)]
    assert cadence.handoffs(0, index + 2)[index] == utc(expected)


# Gaps, folds, 30-minute DST, southern hemisphere, midnight changes, a lost day (Apia 2011).
BULK_ZONES = [*SCALE_ZONES, "Pacific/Apia"]


@pytest.mark.parametrize("zone", BULK_ZONES)
def test_bulk_handoffs_equal_one_at_a_time_at_every_quarter_hour(zone):
    # Daily handoffs at every quarter hour of the day over three years: every DST change's
    # gap and fold, and the quarter hours exactly at each change, go through both paths.
    tz = ZoneInfo(zone)
    for minute in range(0, 24 * 60, 15):
        cadence = Cadence(date(2010, 1, 1), time(minute // 60, minute % 60), 1, tz)
        for first in (0, 600):  # 2010-2011 (Apia's lost day) and 2011-2013
            bulk = cadence.handoffs(first, 3 * 365 // 2)
            assert bulk == [cadence.handoff(first + i) for i in range(len(bulk))]
            assert all(instant.tzinfo is UTC for instant in bulk)


def test_a_bulk_handoff_exactly_at_a_transition():
    # New York springs forward at 02:00 EST (07:00 UTC) and falls back at 02:00 EDT (06:00 UTC).
    spring = Cadence(date(2026, 3, 1), time(2, 0), 7, ZoneInfo("America/New_York"))
    assert spring.handoffs(0, 3) == [
        utc("2026-03-01 07:00"),
        utc("2026-03-08 07:00"),
        utc("2026-03-15 06:00"),
    ]
    fall = Cadence(date(2026, 10, 25), time(1, 0), 7, ZoneInfo("America/New_York"))
    # 01:00 on 1 Nov happens twice: the first (EDT, 05:00 UTC) counts.
    assert fall.handoffs(0, 3) == [
        utc("2026-10-25 05:00"),
        utc("2026-11-01 05:00"),
        utc("2026-11-08 06:00"),
    ]


ZONES = [
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "America/Santiago",  # DST changes at midnight
]
# Handoff times chosen to fall inside DST gaps and folds in some of the zones above.
TIMES = ["00:00", "01:30", "01:45", "02:15", "02:30", "10:00", "23:30"]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("length", ["1d", "1w", "2w"])
def test_three_years_of_shifts_meet_exactly_and_start_at_the_wall_time(zone, length):
    tz = ZoneInfo(zone)
    for at in TIMES:
        rot = rotation("2025-01-05", "sun", at, length)
        wall = time.fromisoformat(at)
        found = shifts(rot, tz, utc("2025-01-05 00:00"), utc("2028-01-05 00:00"))
        assert len(found) > 70
        for earlier, later in pairwise(found):
            assert earlier.end == later.start, f"gap or overlap at {earlier.end} ({zone} {at})"
            assert later.index == earlier.index + 1
        for shift in found:
            local = shift.start.astimezone(tz)
            if local.time() != wall:
                # Only a skipped wall time may move, and only to the first instant after the gap.
                asked = datetime.combine(local.date(), wall)
                round_trip = asked.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)
                assert round_trip.replace(tzinfo=None) != asked, "moved a time that exists"
                just_before = (shift.start - timedelta(seconds=1)).astimezone(tz)
                assert just_before.replace(tzinfo=None) < asked < local.replace(tzinfo=None)
            nominal = timedelta(days=rot.length.days)
            assert abs(shift.end - shift.start - nominal) <= timedelta(hours=1)


@pytest.mark.parametrize("zone", ZONES)
def test_shift_at_agrees_with_the_shift_list_at_every_edge(zone):
    tz = ZoneInfo(zone)
    rot = rotation("2026-01-04", "sun", "02:30")
    found = shifts(rot, tz, utc("2026-01-04 00:00"), utc("2028-01-01 00:00"))
    for shift in found:
        assert shift_at(rot, tz, shift.start) == shift
        assert shift_at(rot, tz, shift.end - timedelta(microseconds=1)) == shift
        assert shift_at(rot, tz, shift.start + (shift.end - shift.start) / 2) == shift


def test_nobody_is_on_call_before_the_first_handoff():
    rot = rotation("2026-11-02", "mon", "10:00")
    tz = ZoneInfo("America/New_York")
    assert shift_at(rot, tz, utc("2026-11-02 14:59")) is None
    first = shift_at(rot, tz, utc("2026-11-02 15:00"))
    assert first is not None and first.index == 0 and first.member == "U0A"
    assert Cadence.of(rot, tz).next_handoff_after(utc("2026-01-01 00:00")) == utc(
        "2026-11-02 15:00"
    )


def test_members_take_turns_in_config_order():
    rot = rotation("2026-11-02", "mon", "10:00")
    tz = ZoneInfo("America/New_York")
    found = shifts(rot, tz, utc("2026-11-02 15:00"), utc("2026-12-28 15:00"))
    assert [s.member for s in found] == ["U0A", "U0B", "U0C", "U0D", "U0A", "U0B", "U0C", "U0D"]


def test_a_new_roster_changes_only_shifts_from_its_index():
    rosters = [Roster(0, ("U0A", "U0B", "U0C", "U0D")), Roster(6, ("U0A", "U0B", "U0C", "U0E"))]
    assert [member_of(rosters, i) for i in range(8)] == [
        "U0A",
        "U0B",
        "U0C",
        "U0D",
        "U0A",
        "U0B",
        "U0C",
        "U0E",
    ]


def test_next_handoff_is_strictly_after_the_instant():
    cadence = Cadence.of(rotation("2026-11-02", "mon", "10:00"), ZoneInfo("America/New_York"))
    assert cadence.next_handoff_after(utc("2026-11-16 15:00")) == utc("2026-11-23 15:00")
    assert cadence.next_handoff_after(utc("2026-11-16 14:59")) == utc("2026-11-16 15:00")


def test_start_must_be_on_the_handoff_weekday():
    assert start_weekday_mismatch(rotation("2026-11-02", "mon", "10:00")) is None
    message = start_weekday_mismatch(rotation("2026-11-03", "mon", "10:00"))
    assert message is not None and "is a tue" in message


def test_share_counts_a_member_listed_twice():
    assert on_call_share(["U0A", "U0B", "U0A"]) == {"U0A": 2 / 3, "U0B": 1 / 3}


def test_a_day_that_starts_in_a_gap_still_has_a_shift():
    # America/Santiago skips 00:00-01:00 on 6 Sep 2026; a midnight handoff happens at 01:00.
    rot = rotation("2026-08-30", "sun", "00:00")
    tz = ZoneInfo("America/Santiago")
    cadence = Cadence.of(rot, tz)
    assert cadence.handoff(1).astimezone(tz).replace(tzinfo=None) == datetime(2026, 9, 6, 1, 0)
    assert date(2026, 9, 6) == cadence.handoff(1).astimezone(tz).date()
