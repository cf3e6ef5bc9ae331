"""Durations as people write them in config and commands: 15m, 4h, 1d, 2w (and combinations like 1h30m)."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.errors import InvalidDuration

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PART = re.compile(r"(\d+)\s*([smhdw])")
_WHOLE = re.compile(r"^\s*(?:\d+\s*[smhdw]\s*)+$")


def parse_duration(text: str | int | timedelta) -> timedelta:
    """Parse '15m', '4h', '1d', '2w', '1h30m'; a bare 0 is allowed and means no time."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, int) and not isinstance(text, bool) and text == 0:
        return timedelta(0)
    if not isinstance(text, str) or not _WHOLE.match(text.lower()):
        raise InvalidDuration(
            f"'{text}' is not a duration (use a number and a unit: 15m, 4h, 1d, 2w)"
        )
    total = timedelta(0)
    for amount, unit in _PART.findall(text.lower()):
        total += timedelta(**{_UNITS[unit]: int(amount)})
    return total


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
