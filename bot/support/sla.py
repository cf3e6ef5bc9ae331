"""The SLA clock: when a target is due, counting only business time (or all time) and not pauses.

Pure arithmetic over a *measure* (how time is counted: `bot.business_hours.BusinessCalendar` for
business-hours SLAs, `WallClock` for around-the-clock ones) and the ticket's pauses (waiting on
the requester, resolved). One answer to "when is this ticket's SLA due", used by the timers, the
ticket card, App Home and the weekly report.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.business_hours import BusinessCalendar
from bot.config import OrgConfig, SlaTarget

WARN_AT = 0.75  # the assignee is reminded when this share of a target has been used
PAUSED_STATES = frozenset({"waiting", "resolved"})


class Measure(Protocol):
    def add(self, start: datetime, delta: timedelta) -> datetime: ...

    def between(self, start: datetime, end: datetime) -> timedelta: ...


class WallClock:
    """Every minute counts: critical requests are around the clock."""

    # In UTC: adding to an aware datetime in a DST zone would add wall-clock time instead.
    def add(self, start: datetime, delta: timedelta) -> datetime:
        return start.astimezone(UTC) + max(delta, timedelta(0))

    def between(self, start: datetime, end: datetime) -> timedelta:
        return max(end.astimezone(UTC) - start.astimezone(UTC), timedelta(0))


def measure_for(org: OrgConfig, target: SlaTarget, team_id: str | None) -> Measure:
    return BusinessCalendar.for_team(org, team_id) if target.business_hours else WallClock()


def counted(measure: Measure, target: timedelta) -> timedelta:
    """The target in the measure's time: in business hours, days are business days."""
    if isinstance(measure, BusinessCalendar):
        return measure.working_span(target)
    return target


@dataclass(frozen=True, order=True)
class Pause:
    start: datetime
    end: datetime | None = None  # None: still paused


def pauses_from(transitions: Iterable[tuple[datetime, str]]) -> list[Pause]:
    """Pauses from a ticket's state changes (instant, new state), in order."""
    pauses: list[Pause] = []
    paused_since: datetime | None = None
    for at, state in sorted(transitions, key=lambda t: t[0]):
        if state in PAUSED_STATES and paused_since is None:
            paused_since = at
        elif state not in PAUSED_STATES and paused_since is not None:
            pauses.append(Pause(paused_since, at))
            paused_since = None
    if paused_since is not None:
        pauses.append(Pause(paused_since, None))
    return pauses


def _in_utc(pauses: Sequence[Pause]) -> list[Pause]:
    # Same-zone aware datetimes subtract as wall time; UTC keeps every hour one hour long.
    return sorted(
        Pause(p.start.astimezone(UTC), p.end.astimezone(UTC) if p.end else None) for p in pauses
    )


def deadline(
    measure: Measure, start: datetime, target: timedelta, pauses: Sequence[Pause] = ()
) -> datetime | None:
    """The instant `target` of counted time has run since `start`, skipping pauses.

    None when the clock is paused now (an open pause begins before the target is reached).
    """
    cursor, remaining = start.astimezone(UTC), target
    for pause in _in_utc(pauses):
        if pause.end is not None and pause.end <= cursor:
            continue
        candidate = measure.add(cursor, remaining)
        if candidate <= pause.start:
            return candidate
        remaining -= measure.between(cursor, pause.start)
        if pause.end is None:
            return None
        cursor = max(cursor, pause.end)
    return measure.add(cursor, remaining)


def elapsed(
    measure: Measure, start: datetime, at: datetime, pauses: Sequence[Pause] = ()
) -> timedelta:
    """Counted time between start and `at`, not counting pauses."""
    start, at = start.astimezone(UTC), at.astimezone(UTC)
    total = measure.between(start, at)
    for pause in _in_utc(pauses):
        begin = max(pause.start, start)
        end = min(pause.end or at, at)
        total -= measure.between(begin, end)
    return max(total, timedelta(0))


@dataclass(frozen=True)
class Clock:
    """A ticket's SLA instants for one target: the reminder and the deadline (None if paused)."""

    target: timedelta
    warn_at: datetime | None
    due_at: datetime | None


def clock(
    measure: Measure, start: datetime, target: timedelta, pauses: Sequence[Pause] = ()
) -> Clock:
    return Clock(
        target=target,
        warn_at=deadline(measure, start, target * WARN_AT, pauses),
        due_at=deadline(measure, start, target, pauses),
    )
