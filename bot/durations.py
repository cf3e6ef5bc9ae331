"""Durations as people write them in config and commands: 15m, 4h, 1d, 2w (and combinations like 1h30m)."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.errors import InvalidDuration

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PART = re.compile(r"(\d+)\s*([smhdw])")
_WHOLE = re.compile(r"^\s*(?:\d+\s*[smhdw]\s*)+$")


class WrittenDuration(timedelta):
    """A parsed duration that remembers how many weeks and days were written as such.

    Business-hours arithmetic needs it: "3d" of business time is three business days, while
    "24h" is twenty-four business hours, though both are the same timedelta.
    """

    weeks_written: int
    days_written: int

    def __new__(cls, total: timedelta, weeks: int, days: int) -> WrittenDuration:
        self = super().__new__(cls, seconds=total.total_seconds())
        self.weeks_written = weeks
        self.days_written = days
        return self

    def __reduce__(self) -> tuple:
        return (
            WrittenDuration,
            (timedelta(seconds=self.total_seconds()), self.weeks_written, self.days_written),
        )

    @property
    def below_a_day(self) -> timedelta:
        """What was written in hours, minutes and seconds."""
        return timedelta(seconds=self.total_seconds()) - timedelta(
            weeks=self.weeks_written, days=self.days_written
        )


def parse_duration(text: str | int | timedelta) -> timedelta:
    """Parse '15m', '4h', '1d', '2w', '1h30m'; a bare 0 is allowed and means no time.

    Text yields a WrittenDuration (a timedelta that also knows its written weeks and days)."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, int) and not isinstance(text, bool) and text == 0:
        return timedelta(0)
    if not isinstance(text, str) or not _WHOLE.match(text.lower()):
        raise InvalidDuration(
            f"'{text}' is not a duration (use a number and a unit: 15m, 4h, 1d, 2w)"
        )
    total = timedelta(0)
    weeks = days = 0
    for amount, unit in _PART.findall(text.lower()):
        total += timedelta(**{_UNITS[unit]: int(amount)})
        if unit == "w":
            weeks += int(amount)
        elif unit == "d":
            days += int(amount)
    return WrittenDuration(total, weeks, days)


def format_duration(delta: timedelta) -> str:
    """The shortest readable form: 2w, 1d 4h, 45m. Negative durations get a leading minus."""
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds == 0:
        return "0m"
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    if seconds and not parts:
        parts.append(f"{seconds}s")
    return sign + " ".join(parts)
