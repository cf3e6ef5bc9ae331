"""The straightforward who-is-on-call, as it was before timelines were cached: the reference the
fast path (bot.oncall.segments, bot.oncall.lookup) is checked against in tests and benchmarks.

Each answer recomputes the shifts around the instant and queries the roster records and
overrides again (about a dozen queries a call); kept verbatim in its logic, on purpose.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlmodel import Session

from bot.clock import as_utc
from bot.config import OrgConfig
from bot.oncall import schedule
from bot.oncall.lookup import active_overrides, rosters
from bot.oncall.models import Override
from bot.oncall.segments import OnCall, Segment


def timeline(
    session: Session, org: OrgConfig, rotation_id: str, start: datetime, end: datetime
) -> list[Segment]:
    """Who holds the rotation over [start, end), as whole segments (not clipped to the window).

    Adjacent stretches held by the same person are merged, so a segment's end is when that
    person really hands over.
    """
    rotation = org.rotation(rotation_id)
    zone = org.rotation_zone(rotation_id)
    base = schedule.shifts(rotation, zone, start, end, rosters(session, org, rotation_id))
    if not base:
        return []
    overrides = active_overrides(session, rotation_id, base[0].start, base[-1].end)
    pieces: list[Segment] = []
    for shift in base:
        parts = [
            Segment(rotation_id, shift.member, shift.start, shift.end, shift.index, shift.member)
        ]
        for override in overrides:
            parts = _apply(parts, override)
        pieces.extend(parts)
    merged: list[Segment] = []
    for piece in pieces:
        last = merged[-1] if merged else None
        if last is not None and last.person == piece.person and last.end == piece.start:
            merged[-1] = replace(
                last, end=piece.end, override_id=last.override_id or piece.override_id
            )
        else:
            merged.append(piece)
    return [s for s in merged if s.end > start and s.start < end]


def _apply(parts: list[Segment], override: Override) -> list[Segment]:
    o_start, o_end = as_utc(override.start), as_utc(override.end)
    out = []
    for part in parts:
        if o_end <= part.start or o_start >= part.end:
            out.append(part)
            continue
        if part.start < o_start:
            out.append(replace(part, end=o_start))
        out.append(
            replace(
                part,
                person=override.person,
                start=max(part.start, o_start),
                end=min(part.end, o_end),
                override_id=override.id,
            )
        )
        if o_end < part.end:
            out.append(replace(part, start=o_end))
    return out


def who_is_on_call(session: Session, org: OrgConfig, rotation_id: str, at: datetime) -> OnCall:
    """Who is on call for a rotation at an instant (overrides honoured), and its secondary."""
    rotation = org.rotation(rotation_id)
    at = as_utc(at)
    segment = _segment_at(session, org, rotation_id, at)
    secondary = None
    if rotation.secondary is not None:
        backup = _segment_at(session, org, rotation.secondary, at)
        secondary = backup.person if backup is not None else None
    if segment is None:
        return OnCall(rotation_id, at, None, secondary, None, None, None, None, rotation.secondary)
    return OnCall(
        rotation_id=rotation_id,
        at=at,
        primary=segment.person,
        secondary=secondary,
        shift_start=segment.start,
        shift_end=segment.end,
        scheduled=segment.scheduled,
        override_id=segment.override_id,
        secondary_rotation_id=rotation.secondary,
    )


def _segment_at(session: Session, org: OrgConfig, rotation_id: str, at: datetime) -> Segment | None:
    """The whole stretch containing `at`, followed across handoffs to the same person."""
    found = _piece_at(session, org, rotation_id, at)
    if found is None:
        return None
    for _ in range(_MAX_STRETCH):
        later = _piece_at(session, org, rotation_id, found.end)
        if later is None or later.person != found.person:
            break
        found = replace(found, end=later.end)
    for _ in range(_MAX_STRETCH):
        earlier = _piece_at(session, org, rotation_id, found.start - _TICK)
        if earlier is None or earlier.person != found.person:
            break
        found = replace(
            found,
            start=earlier.start,
            shift_index=earlier.shift_index,
            scheduled=earlier.scheduled,
            override_id=found.override_id or earlier.override_id,
        )
    return found


_TICK = timedelta(microseconds=1)
_MAX_STRETCH = 60  # shifts one person may hold in a row before we stop following


def _piece_at(session: Session, org: OrgConfig, rotation_id: str, at: datetime) -> Segment | None:
    for segment in timeline(session, org, rotation_id, at, at + _TICK):
        if segment.start <= at < segment.end:
            return segment
    return None
