"""The clock every component reads time from, so tests and the demo can move time by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._now = instant.astimezone(UTC)

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self._now += delta if delta is not None else timedelta(**kwargs)
        return self._now


def as_utc(instant: datetime) -> datetime:
    """Normalise a datetime read back from the database (SQLite drops tzinfo) to aware UTC."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def local_text(instant: datetime, zone: ZoneInfo, *, with_day: bool = True) -> str:
    """An instant as people in `zone` read it: "Mon 16 Nov 10:00 EST" (or just "10:00")."""
    return instant.astimezone(zone).strftime("%a %d %b %H:%M %Z" if with_day else "%H:%M")


def wall_time_to_utc(naive: datetime, zone: ZoneInfo) -> datetime:
    """Local wall time -> UTC. A repeated (fall-back) time is its first occurrence; a time that
    does not exist (spring-forward gap) becomes the first valid instant after it."""
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == naive:
        return first
    # In a gap: search between the two readings of the naive time for the jump itself.
    low = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = first
    if low > high:
        low, high = high, low
    while high - low > timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(zone).replace(tzinfo=None) >= naive:
            high = mid
        else:
            low = mid
    return high.replace(microsecond=0)
