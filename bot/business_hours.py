"""Business hours: whether an instant is inside them, and time arithmetic that only counts them.

One answer for every feature (off-hours pages, SLA clocks, "next business day" notices), computed
in the team's zone from the org config's `business_hours`, `holidays` and `public_holidays` (a
country's calendar from the `holidays` package, per team when a team names its own).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from bot.clock import wall_time_to_utc
from bot.config import WEEKDAYS, OrgConfig
from bot.durations import WrittenDuration

_MAX_DAYS = 3660  # ten years of scanning is a bug, not a calendar


@lru_cache(maxsize=32)
def _country_calendar(code: str) -> holidays.HolidayBase:
    country, _, subdivision = code.partition("-")
    return holidays.country_holidays(country, subdiv=subdivision or None)


@dataclass(frozen=True)
class Holidays:
    """The days off: the config's own dates plus, optionally, a country's public holidays."""

    dates: frozenset[date] = frozenset()
    country: str | None = None  # "US", "GB-SCT": see OrgConfig.public_holidays

    def __contains__(self, day: object) -> bool:
        if day in self.dates:
            return True
        return self.country is not None and day in _country_calendar(self.country)

    def name(self, day: date) -> str | None:
        """What the day off is called ("Thanksgiving Day", or "holiday" for a configured date)."""
        if self.country is not None and day in _country_calendar(self.country):
            return _country_calendar(self.country).get(day)
        return "holiday" if day in self.dates else None

    @classmethod
    def for_team(cls, org: OrgConfig, team_id: str | None = None) -> Holidays:
        return cls(frozenset(org.holidays), org.public_holidays_of(team_id))


@dataclass(frozen=True)
class BusinessCalendar:
    zone: ZoneInfo
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time
    holidays: Holidays = field(default_factory=Holidays)

    @classmethod
    def for_team(cls, org: OrgConfig, team_id: str | None = None) -> BusinessCalendar:
        hours = org.business_hours
        return cls(
            zone=org.zone(team_id),
            days=frozenset(WEEKDAYS.index(d) for d in hours.days),
            start=hours.start,
            end=hours.end,
            holidays=Holidays.for_team(org, team_id),
        )

    def is_business_day(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.holidays

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The day's business hours as UTC instants, or None on a weekend or holiday."""
        if not self.is_business_day(day):
            return None
        opens = _local(day, self.start, self.zone)
        closes = _local(day, self.end, self.zone)
        return opens, closes

    def windows_from(self, instant: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Business windows that end after `instant`, in order (the first may have begun)."""
        day = instant.astimezone(self.zone).date()
        for _ in range(_MAX_DAYS):
            found = self.window(day)
            if found is not None and found[1] > instant:
                yield found
            day += timedelta(days=1)

    @property
    def day_length(self) -> timedelta:
        return datetime.combine(date.min, self.end) - datetime.combine(date.min, self.start)

    def working_span(self, delta: timedelta) -> timedelta:
        """Business time for a target written in config. Weeks and days written as such mean
        business weeks and days (with 09:00-17:00 on weekdays, "1d" is 8 hours of business time
        and "1w" is 40); hours and minutes stay as written, so "24h" is 24 business hours.
        This is what "resolution within 3d, business hours" means to the people it promises."""
        if isinstance(delta, WrittenDuration):
            weeks, days, rest = delta.weeks_written, delta.days_written, delta.below_a_day
        else:  # built in code: whole days count as business days
            weeks, rest = divmod(delta, timedelta(weeks=1))
            days, rest = divmod(rest, timedelta(days=1))
        return (weeks * len(self.days) + days) * self.day_length + rest

    def contains(self, instant: datetime) -> bool:
        found = self.window(instant.astimezone(self.zone).date())
        return found is not None and found[0] <= instant < found[1]

    def next_open(self, instant: datetime) -> datetime:
        """`instant` itself when inside business hours, else when they next begin."""
        for opens, _closes in self.windows_from(instant):
            return max(opens, instant)
        raise ValueError("no business hours configured")

    def add(self, start: datetime, delta: timedelta) -> datetime:
        """The instant when `delta` of business time has passed since `start`."""
        remaining = delta
        if remaining <= timedelta(0):
            return start
        for opens, closes in self.windows_from(start):
            begin = max(opens, start)
            available = closes - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        raise ValueError("no business hours configured")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """How much business time lies between two instants (zero if end is not after start)."""
        total = timedelta(0)
        if end <= start:
            return total
        for opens, closes in self.windows_from(start):
            if opens >= end:
                break
            total += min(closes, end) - max(opens, start)
        return total


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    """A local wall time as a UTC instant; a time skipped by DST moves to the first valid instant."""
    return wall_time_to_utc(datetime.combine(day, at), zone)


def is_business_hours(org: OrgConfig, instant: datetime, team_id: str | None = None) -> bool:
    return BusinessCalendar.for_team(org, team_id).contains(instant)


def add_business_time(
    org: OrgConfig, start: datetime, delta: timedelta, team_id: str | None = None
) -> datetime:
    return BusinessCalendar.for_team(org, team_id).add(start, delta)


def business_time_between(
    org: OrgConfig, start: datetime, end: datetime, team_id: str | None = None
) -> timedelta:
    return BusinessCalendar.for_team(org, team_id).between(start, end)


def next_business_open(org: OrgConfig, instant: datetime, team_id: str | None = None) -> datetime:
    return BusinessCalendar.for_team(org, team_id).next_open(instant)
