"""Cycle arithmetic: deadlines every `cadence` of local wall time from `first_deadline`, in the
org's zone, so 15:00 stays 15:00 across DST changes and year ends (no week-number parity)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.clock import wall_time_to_utc
from bot.config import OrgConfig, Wins


@dataclass(frozen=True)
class CycleCalendar:
    first_deadline: datetime  # naive local wall time
    cadence: timedelta
    zone: ZoneInfo

    @classmethod
    def of(cls, org: OrgConfig) -> CycleCalendar:
        wins = _wins(org)
        return cls(wins.first_deadline, wins.cadence, ZoneInfo(org.timezone))

    def deadline(self, number: int) -> datetime:
        """The UTC instant cycle `number` closes (cycle 0 closes at `first_deadline`)."""
        return wall_time_to_utc(self.first_deadline + number * self.cadence, self.zone)

    def start(self, number: int) -> datetime:
        """A cycle covers the cadence before its deadline: it starts at the previous deadline."""
        return self.deadline(number - 1)

    def number_at(self, instant: datetime) -> int:
        """The cycle collecting at `instant`: the first whose deadline is after it (never < 0)."""
        local = instant.astimezone(self.zone).replace(tzinfo=None)
        guess = max(0, (local - self.first_deadline) // self.cadence)
        while guess > 0 and self.deadline(guess - 1) > instant:
            guess -= 1
        while self.deadline(guess) <= instant:
            guess += 1
        return guess

    def next_deadline_after(self, instant: datetime) -> datetime:
        return self.deadline(self.number_at(instant))

    def before_each_deadline(self, lead: timedelta):  # -> Callable[[datetime], datetime]
        """next_due for "`lead` before every deadline": the first such instant after t."""

        def next_due(t: datetime) -> datetime:
            return self.deadline(self.number_at(t + lead)) - lead

        return next_due

    def numbers_in(self, first_day: date, last_day: date) -> list[int]:
        """Cycles whose deadline falls on a local day in [first_day, last_day]."""
        start = wall_time_to_utc(datetime.combine(first_day, datetime.min.time()), self.zone)
        number = self.number_at(start - timedelta(microseconds=1))
        found = []
        while self.deadline(number).astimezone(self.zone).date() <= last_day:
            if self.deadline(number).astimezone(self.zone).date() >= first_day:
                found.append(number)
            number += 1
        return found


def _wins(org: OrgConfig) -> Wins:
    if org.wins is None:
        raise ValueError("Wins and Challenges is not configured (no `wins:` in the org config)")
    return org.wins


_PERIODS = {timedelta(weeks=1): "week", timedelta(weeks=2): "two weeks"}


def period_text(org: OrgConfig) -> str:
    """What a cycle covers in people's words: "two weeks", "week", or the cadence as written."""
    from bot.durations import format_duration

    cadence = _wins(org).cadence
    return _PERIODS.get(cadence) or format_duration(cadence)


def quarter_days(quarter: str) -> tuple[date, date]:
    """'2026Q4' -> (1 Oct 2026, 31 Dec 2026)."""
    text = quarter.strip().upper()
    if len(text) != 6 or text[4] != "Q" or not text[:4].isdigit() or text[5] not in "1234":
        raise ValueError(f"'{quarter}' is not a quarter (write it like 2026Q4)")
    year, q = int(text[:4]), int(text[5])
    first = date(year, 3 * q - 2, 1)
    last = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
    return first, last - timedelta(days=1)


def quarter_of(day: date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"
