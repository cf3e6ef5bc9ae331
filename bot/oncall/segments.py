"""A rotation's timeline: its shifts with overrides applied, computed once and asked many times.

`RotationTimeline` is pure (no I/O, no clock): built from the rotation's cadence, its roster
history and its overrides, it works out shifts lazily, one at a time, and keeps them, so every
question (who holds the rotation at an instant, a window of segments, the answer for every hour
of a year) costs a lookup once a shift is known. Its answers are, by construction and by a
property test against the straightforward per-instant computation, the same as that one's:

- a shift is cut into *fragments*: the stretches one person holds within it, after applying
  every override in force in it in creation order (a newer override wins);
- who holds the rotation at an instant is the fragment there, followed over handoffs to the
  same person, at most `MAX_STRETCH` fragments either way; its override is the nearest one at
  or before the instant within that stretch;
- a window's segments are the fragments of the shifts overlapping it, with neighbours held by
  the same person joined (so a segment ends where that person really hands over).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import NamedTuple

from bot.oncall.schedule import Cadence, Roster, member_of

MAX_STRETCH = 60  # fragments one person may hold in a row before we stop following
# Shifts one timeline keeps worked out; beyond this it starts over (a long-running process
# asked about many different years).
MAX_KEPT_SHIFTS = 20_000
HANDOFF_BLOCK = 64  # handoffs worked out together (a weekly rotation's year is about one)


@dataclass(frozen=True)
class Segment:
    """A stretch of time during which one person holds a rotation (overrides applied)."""

    rotation_id: str
    person: str
    start: datetime
    end: datetime
    shift_index: int  # the scheduled shift this stretch begins in
    scheduled: str  # who the schedule names for that shift
    override_id: int | None = None

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class OnCall:
    """Who holds a rotation at an instant: the primary, and the secondary rotation's person."""

    rotation_id: str
    at: datetime
    primary: str | None
    secondary: str | None
    shift_start: datetime | None  # when the primary took over (an override may start mid-shift)
    shift_end: datetime | None  # when the primary hands over
    scheduled: str | None = None  # who the schedule names, before overrides
    override_id: int | None = None
    secondary_rotation_id: str | None = None

    @property
    def is_override(self) -> bool:
        return self.override_id is not None


class Holder(NamedTuple):
    """Who holds a rotation over a stretch of instants: `OnCall` without the instant (a tuple:
    a year of hours for a thousand rotations makes a few hundred thousand of them)."""

    rotation_id: str
    primary: Segment | None
    secondary: str | None
    secondary_rotation_id: str | None

    def at(self, instant: datetime) -> OnCall:
        segment = self.primary
        if segment is None:
            return OnCall(
                self.rotation_id,
                instant,
                None,
                self.secondary,
                None,
                None,
                None,
                None,
                self.secondary_rotation_id,
            )
        return OnCall(
            rotation_id=self.rotation_id,
            at=instant,
            primary=segment.person,
            secondary=self.secondary,
            shift_start=segment.start,
            shift_end=segment.end,
            scheduled=segment.scheduled,
            override_id=segment.override_id,
            secondary_rotation_id=self.secondary_rotation_id,
        )


class Cover(NamedTuple):
    """An override as the timeline needs it (a copy: database rows may change under us)."""

    id: int | None
    person: str
    start: datetime
    end: datetime


def join(pieces: Sequence[Segment]) -> list[Segment]:
    """Adjacent pieces held by the same person as one segment (the first's shift, the first
    override among them)."""
    merged: list[Segment] = []
    for piece in pieces:
        last = merged[-1] if merged else None
        if last is not None and last.person == piece.person and last.end == piece.start:
            merged[-1] = replace(
                last, end=piece.end, override_id=last.override_id or piece.override_id
            )
        else:
            merged.append(piece)
    return merged


def apply_cover(
    parts: list[Segment], start: datetime, end: datetime, person: str, cover_id: int | None
) -> list[Segment]:
    """`parts` with [start, end) held by `person` instead."""
    out = []
    for part in parts:
        if end <= part.start or start >= part.end:
            out.append(part)
            continue
        if part.start < start:
            out.append(replace(part, end=start))
        out.append(
            replace(
                part,
                person=person,
                start=max(part.start, start),
                end=min(part.end, end),
                override_id=cover_id,
            )
        )
        if end < part.end:
            out.append(replace(part, start=end))
    return out


class RotationTimeline:
    """One rotation's shifts with overrides applied, worked out on demand and kept."""

    def __init__(
        self,
        rotation_id: str,
        cadence: Cadence,
        rosters: Sequence[Roster],
        covers: Sequence[Cover],
    ) -> None:
        self.rotation_id = rotation_id
        self.cadence = cadence
        self.rosters = tuple(rosters)
        self.covers = tuple(covers)  # in the order they apply: oldest first
        # One roster (the usual case): its members by index, without searching the history.
        self._members = self.rosters[0].members if len(self.rosters) == 1 else None
        self._handoffs: dict[int, list[datetime]] = {}  # by block: index // HANDOFF_BLOCK
        self._fragments: dict[int, tuple[Segment, ...]] = {}
        self._stretches: dict[tuple[int, int], Segment] = {}

    # -- shifts and fragments ------------------------------------------------------------------

    def handoff(self, index: int) -> datetime:
        block, at = divmod(index, HANDOFF_BLOCK)
        found = self._handoffs.get(block)
        if found is None:
            found = self._handoffs[block] = self.cadence.handoffs(
                block * HANDOFF_BLOCK, HANDOFF_BLOCK
            )
        return found[at]

    def index_at(self, instant: datetime) -> int | None:
        """The shift containing `instant` (None before the first handoff); as `Cadence.index_at`."""
        cadence = self.cadence
        local_day = instant.astimezone(cadence.zone).date()
        guess = (local_day - cadence.start).days // cadence.length_days
        for index in (guess + 1, guess, guess - 1):
            if index >= 0 and self.handoff(index) <= instant:
                return index
        return None

    def fragments(self, index: int) -> tuple[Segment, ...]:
        """Shift `index` cut where overrides change who holds it, same-person pieces joined."""
        found = self._fragments.get(index)
        if found is not None:
            return found
        if len(self._fragments) >= MAX_KEPT_SHIFTS:
            self._fragments.clear()
            self._stretches.clear()
            self._handoffs.clear()
        start, end = self.handoff(index), self.handoff(index + 1)
        members = self._members
        if members is not None:
            member = members[index % len(members)]
        else:
            member = member_of(self.rosters, index)
        whole = Segment(self.rotation_id, member, start, end, index, member)
        if not self.covers:  # most rotations: the shift is one fragment
            found = self._fragments[index] = (whole,)
            return found
        parts = [whole]
        for cover in self.covers:
            if cover.start < end and cover.end > start:
                parts = apply_cover(parts, cover.start, cover.end, cover.person, cover.id)
        found = self._fragments[index] = tuple(join(parts))
        return found

    def _locate(self, instant: datetime) -> tuple[int, int] | None:
        """(shift index, fragment position) of the fragment containing `instant`."""
        index = self.index_at(instant)
        if index is None:
            return None
        fragments = self.fragments(index)
        for position, fragment in enumerate(fragments):
            if fragment.start <= instant < fragment.end:
                return index, position
        raise AssertionError("fragments cover their shift")  # pragma: no cover

    def _next(self, index: int, position: int) -> tuple[int, int]:
        if position + 1 < len(self.fragments(index)):
            return index, position + 1
        return index + 1, 0

    def _previous(self, index: int, position: int) -> tuple[int, int] | None:
        if position > 0:
            return index, position - 1
        if index == 0:
            return None
        return index - 1, len(self.fragments(index - 1)) - 1

    # -- questions -------------------------------------------------------------------------------

    def stretch(self, index: int, position: int) -> Segment:
        """Who holds the rotation at any instant of fragment (index, position), as a whole
        stretch: followed over handoffs to the same person, at most MAX_STRETCH fragments."""
        key = (index, position)
        found = self._stretches.get(key)
        if found is not None:
            return found
        fragments = self.fragments(index)
        here = fragments[position]
        person, end = here.person, here.end
        # Most fragments are a whole stretch: both neighbours are someone else.
        after = fragments[position + 1] if position + 1 < len(fragments) else None
        if after is None:
            after = self.fragments(index + 1)[0]
        before = fragments[position - 1] if position > 0 else None
        if before is None and index > 0:
            before = self.fragments(index - 1)[-1]
        if after.person != person and (before is None or before.person != person):
            self._stretches[key] = here
            return here
        at = key
        for _ in range(MAX_STRETCH):
            at = self._next(*at)
            later = self.fragments(at[0])[at[1]]
            if later.person != person:
                break
            end = later.end
        start, shift_index, scheduled, override_id = (
            here.start,
            here.shift_index,
            here.scheduled,
            here.override_id,
        )
        back: tuple[int, int] | None = key
        for _ in range(MAX_STRETCH):
            back = self._previous(*back)
            if back is None:
                break
            earlier = self.fragments(back[0])[back[1]]
            if earlier.person != person:
                break
            start, shift_index, scheduled = earlier.start, earlier.shift_index, earlier.scheduled
            override_id = override_id or earlier.override_id
        found = Segment(self.rotation_id, person, start, end, shift_index, scheduled, override_id)
        self._stretches[key] = found
        return found

    def segment_at(self, instant: datetime) -> Segment | None:
        """Who holds the rotation at `instant`, as a whole stretch; None before it starts."""
        located = self._locate(instant)
        return None if located is None else self.stretch(*located)

    def window(self, start: datetime, end: datetime) -> list[Segment]:
        """Who holds the rotation over [start, end), as whole segments: the fragments of every
        shift overlapping the window, joined (not clipped to the window)."""
        index = self.index_at(start)
        index = 0 if index is None else index
        pieces: list[Segment] = []
        while self.handoff(index) < end:
            if self.handoff(index + 1) > start:
                pieces.extend(self.fragments(index))
            index += 1
        return [s for s in join(pieces) if s.end > start and s.start < end]

    def runs(self, instants: Sequence[datetime]) -> list[tuple[int, Segment | None]]:
        """For sorted `instants`: (how many in a row, who holds the rotation for them), in order.

        Instants inside one fragment share one answer, so this walks fragments, not instants:
        shift after shift while the instants run on, located afresh after a gap.
        """
        out: list[tuple[int, Segment | None]] = []
        done, total = 0, len(instants)
        while done < total:
            index = self.index_at(instants[done])
            if index is None:  # before the first handoff
                until = bisect_left(instants, self.handoff(0), done)
                out.append((until - done, None))
                done = until
                continue
            previous: Segment | None = None  # the fragment before this one, when walked
            fragments = self.fragments(index)
            while True:
                following = self.fragments(index + 1)
                last = len(fragments) - 1
                for position, fragment in enumerate(fragments):
                    if fragment.end <= instants[done]:
                        previous = fragment
                        continue
                    until = bisect_left(instants, fragment.end, done)
                    after = fragments[position + 1] if position < last else following[0]
                    person = fragment.person
                    if previous is not None and previous.person != person != after.person:
                        out.append((until - done, fragment))  # a whole stretch by itself
                    else:
                        out.append((until - done, self.stretch(index, position)))
                    previous, done = fragment, until
                    if done == total:
                        return out
                index, fragments = index + 1, following
                if fragments[-1].end <= instants[done]:
                    break  # the next instant is a shift or more away: locate it afresh
        return out
