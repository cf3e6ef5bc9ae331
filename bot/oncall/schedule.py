"""Shift arithmetic for a rotation: pure functions of its config, no I/O and no clock.

A rotation's shift n starts at its n-th handoff: the local date `start + n * length` at the
handoff wall time in the team's zone, turned into UTC by `bot.clock.wall_time_to_utc` (a time
that a spring-forward skips becomes the first valid instant after it; a time that a fall-back
repeats is its first occurrence). Shift n ends exactly where shift n+1 starts, so consecutive
shifts never leave a gap or overlap, whatever the zone does in between. Before the first
handoff (`start`) the rotation has no shifts.

Who holds shift n comes from the rotation's roster history (see `Roster`): the members in effect
for that shift, cycled by the shift's index, so changing the members in the config reorders
only the shifts after the change.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.clock import wall_time_to_utc
from bot.config import WEEKDAYS, Rotation


@dataclass(frozen=True)
class Cadence:
    """When a rotation's handoffs happen: from `start`, every `length_days`, at `at` local time."""

    start: date
    at: time
    length_days: int
    zone: ZoneInfo

    @classmethod
    def of(cls, rotation: Rotation, zone: ZoneInfo) -> Cadence:
        return cls(
            start=rotation.start,
            at=rotation.handoff.time,
            length_days=rotation.length.days,
            zone=zone,
        )

    def handoff(self, index: int) -> datetime:
        """The UTC instant of the index-th handoff (index 0 is `start`)."""
        day = self.start + timedelta(days=index * self.length_days)
        return wall_time_to_utc(datetime.combine(day, self.at), self.zone)

    def handoffs(self, first: int, count: int) -> list[datetime]:
        """The UTC instants of handoffs `first` .. `first + count - 1`: each exactly
        `handoff(index)`, a few times faster (a timeline builds thousands of them).

        The zone's own offsets for the wall time's two readings (fold 0 and 1) agree exactly
        when the time exists once; then the instant is the wall time minus that offset. Only a
        handoff in a gap or a fold (where they differ) takes `wall_time_to_utc`'s careful path,
        so its rules stay the one source of truth.
        """
        zone, at, step = self.zone, self.at, timedelta(days=self.length_days)
        offset_of, combine = zone.utcoffset, datetime.combine
        at_later = at.replace(fold=1)
        day = self.start + first * step
        out = []
        for _ in range(count):
            offset = offset_of(combine(day, at))
            if offset == offset_of(combine(day, at_later)):
                out.append(combine(day, at, UTC) - offset)
            else:
                out.append(wall_time_to_utc(combine(day, at), zone))
            day += step
        return out

    def index_at(self, instant: datetime) -> int | None:
        """The index of the shift that contains `instant`, or None before the first handoff."""
        local_day = instant.astimezone(self.zone).date()
        guess = (local_day - self.start).days // self.length_days
        # The local date puts us within one shift of the answer; DST can move the edge by an hour.
        for index in (guess + 1, guess, guess - 1):
            if index >= 0 and self.handoff(index) <= instant:
                return index
        return None

    def next_handoff_after(self, instant: datetime) -> datetime:
        """The first handoff strictly after `instant`."""
        index = self.index_at(instant)
        return self.handoff(0 if index is None else index + 1)

    def spans(self, start: datetime, end: datetime) -> Iterator[tuple[int, datetime, datetime]]:
        """(index, shift start, shift end) for every shift that overlaps [start, end)."""
        index = self.index_at(start)
        index = 0 if index is None else index
        shift_start = self.handoff(index)
        while shift_start < end:
            shift_end = self.handoff(index + 1)
            if shift_end > start:
                yield index, shift_start, shift_end
            index += 1
            shift_start = shift_end


@dataclass(frozen=True)
class Roster:
    """The members (in order) in effect from shift `from_index` on."""

    from_index: int
    members: tuple[str, ...]


def member_of(rosters: Sequence[Roster], index: int) -> str:
    """Who holds shift `index`: the newest roster in effect for it, cycled by the shift's index.

    Cycling by the absolute index (not from the change) means the future after a change looks
    exactly as the new config reads, as if it had always been so; the past stays as it was.
    """
    in_effect = [r for r in rosters if r.from_index <= index] or [min(rosters, key=_from)]
    roster = max(in_effect, key=_from)
    return roster.members[index % len(roster.members)]


def _from(roster: Roster) -> int:
    return roster.from_index


@dataclass(frozen=True)
class Shift:
    """One scheduled shift of a rotation (before overrides)."""

    rotation_id: str
    index: int
    start: datetime
    end: datetime
    member: str


def shifts(
    rotation: Rotation,
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
    rosters: Sequence[Roster] | None = None,
) -> list[Shift]:
    """The scheduled shifts overlapping [start, end), in order."""
    rosters = rosters or [Roster(0, tuple(rotation.members))]
    cadence = Cadence.of(rotation, zone)
    return [
        Shift(rotation.id, index, s, e, member_of(rosters, index))
        for index, s, e in cadence.spans(start, end)
    ]


def shift_at(
    rotation: Rotation,
    zone: ZoneInfo,
    instant: datetime,
    rosters: Sequence[Roster] | None = None,
) -> Shift | None:
    """The scheduled shift containing `instant`, or None before the rotation starts."""
    rosters = rosters or [Roster(0, tuple(rotation.members))]
    cadence = Cadence.of(rotation, zone)
    index = cadence.index_at(instant)
    if index is None:
        return None
    return Shift(
        rotation.id,
        index,
        cadence.handoff(index),
        cadence.handoff(index + 1),
        member_of(rosters, index),
    )


def start_weekday_mismatch(rotation: Rotation) -> str | None:
    """Why `start` does not fit the handoff weekday, or None when it does.

    The weekday names the day of the first handoff; with a length in whole weeks every handoff
    falls on it. A start on another weekday is a config error rather than something we round,
    because rounding would silently move every shift by days.
    """
    weekday = WEEKDAYS[rotation.start.weekday()]
    if weekday == rotation.handoff.weekday:
        return None
    return (
        f"start {rotation.start.isoformat()} is a {weekday}, but handoffs are on "
        f"{rotation.handoff.weekday}: make start the date of the first handoff"
    )


def on_call_share(members: Sequence[str]) -> dict[str, float]:
    """Each member's share of the rotation's time (a member listed twice holds two shifts)."""
    counts: dict[str, int] = {}
    for member in members:
        counts[member] = counts.get(member, 0) + 1
    return {member: count / len(members) for member, count in counts.items()}
