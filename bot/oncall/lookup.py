"""Who is on call: the one answer every feature uses, from each rotation's cached timeline.

Every process keeps one `RotationTimeline` per rotation, keyed by what it is computed from: the
rotation's config (members, start, handoff, length, zone) and its revision token (see
`bot.oncall.revisions`: it changes with every override created or cancelled, swap accepted or
undone and roster recorded, in whichever process). A question reads the tokens once per
transaction; a timeline whose key no longer matches is rebuilt, with one query per kind for
all the rotations a request asks about (`prepare`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import URL
from sqlmodel import Session, col, select

from bot.clock import as_utc
from bot.config import OrgConfig
from bot.oncall import schedule
from bot.oncall.models import Override, RosterRecord
from bot.oncall.revisions import revisions
from bot.oncall.schedule import Roster
from bot.oncall.segments import Cover, Holder, OnCall, RotationTimeline, Segment

SamePerson = Callable[[str, str], bool]

# How far ahead "your next shift" looks; a rotation of 26 people with weekly shifts fits.
NEXT_SHIFT_HORIZON = timedelta(weeks=26)
_CHUNK = 500  # ids per IN (...) list: well inside every backend's parameter limit


def same_ref(ref: str, person: str) -> bool:
    return ref == person


# ---- rosters: config members over time ------------------------------------------------------


def roster_records(session: Session, rotation_ids: Iterable[str]) -> dict[str, list[RosterRecord]]:
    """The recorded member history of each rotation, oldest first, in one query per 500."""
    ids = sorted(set(rotation_ids))
    found: dict[str, list[RosterRecord]] = {rotation_id: [] for rotation_id in ids}
    for chunk in _chunks(ids):
        rows = session.exec(
            select(RosterRecord)
            .where(col(RosterRecord.rotation_id).in_(chunk))
            .order_by(col(RosterRecord.from_index), col(RosterRecord.id))
        ).all()
        for row in rows:
            found[row.rotation_id].append(row)
    return found


def rosters_from(org: OrgConfig, rotation_id: str, records: Sequence[RosterRecord]) -> list[Roster]:
    """The rotation's member history; the config's members when nothing is recorded yet."""
    rotation = org.rotation(rotation_id)
    history = [Roster(r.from_index, tuple(r.members)) for r in records]
    current = tuple(rotation.members)
    if not history:
        return [Roster(0, current)]
    if history[-1].members != current:
        # A config change not recorded yet (sync runs at start-up and on every tick): it takes
        # effect from the first shift after the newest record, never rewriting recorded shifts.
        cadence = schedule.Cadence.of(rotation, org.rotation_zone(rotation_id))
        index = cadence.index_at(as_utc(records[-1].recorded_at))
        history.append(Roster(max(history[-1].from_index, (index or 0) + 1), current))
    return history


def rosters(session: Session, org: OrgConfig, rotation_id: str) -> list[Roster]:
    return rosters_from(org, rotation_id, roster_records(session, [rotation_id])[rotation_id])


def active_overrides(
    session: Session, rotation_id: str, start: datetime, end: datetime
) -> list[Override]:
    """Overrides in force for some of [start, end), oldest first (a newer one wins)."""
    return list(
        session.exec(
            select(Override)
            .where(
                Override.rotation_id == rotation_id,
                col(Override.cancelled_at).is_(None),
                Override.start < end,
                Override.end > start,
            )
            .order_by(col(Override.created_at), col(Override.id))
        ).all()
    )


def _covers(session: Session, rotation_ids: Sequence[str]) -> dict[str, list[Cover]]:
    """Every override in force (not cancelled) of each rotation, in the order they apply."""
    found: dict[str, list[Cover]] = {rotation_id: [] for rotation_id in rotation_ids}
    for chunk in _chunks(sorted(rotation_ids)):
        rows = session.exec(
            select(Override)
            .where(col(Override.rotation_id).in_(chunk), col(Override.cancelled_at).is_(None))
            .order_by(col(Override.created_at), col(Override.id))
        ).all()
        for row in rows:
            found[row.rotation_id].append(
                Cover(row.id, row.person, as_utc(row.start), as_utc(row.end))
            )
    return found


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for offset in range(0, len(ids), _CHUNK):
        yield ids[offset : offset + _CHUNK]


# ---- the cache ------------------------------------------------------------------------------


def _config_key(org: OrgConfig, rotation_id: str) -> tuple[Any, ...]:
    rotation = org.rotation(rotation_id)
    zone = org.rotation_zone(rotation_id)
    return (
        tuple(rotation.members),
        rotation.start,
        rotation.handoff.time,
        rotation.length,
        zone.key,
    )


class _Store:
    """The process's timelines, one per rotation, with the key each was built for."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[tuple[Any, ...], RotationTimeline]] = {}
        self._lock = threading.Lock()

    def get(self, rotation_id: str, key: tuple[Any, ...]) -> RotationTimeline | None:
        entry = self._entries.get(rotation_id)
        return entry[1] if entry is not None and entry[0] == key else None

    def put(self, rotation_id: str, key: tuple[Any, ...], line: RotationTimeline) -> None:
        with self._lock:
            self._entries[rotation_id] = (key, line)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


STORE = _Store()


def _key(session: Session, org: OrgConfig, rotation_id: str) -> tuple[Any, ...]:
    return _key_for(org, rotation_id, revisions(session), session.get_bind().url)


def _key_for(
    org: OrgConfig, rotation_id: str, tokens: Mapping[str, str], database: URL
) -> tuple[Any, ...]:
    # The database's identity too: tests and tools may hold several databases in one process.
    # Its URL, not an engine: a database's sessions and its reads alone share the timelines.
    return (*_config_key(org, rotation_id), tokens.get(rotation_id), database)


def _cached(
    org: OrgConfig, rotation_ids: Iterable[str], key_of: Callable[[str], tuple[Any, ...]]
) -> tuple[dict[str, RotationTimeline], dict[str, tuple[Any, ...]]]:
    """The rotations and their secondaries (in order, once each) whose timeline is cached for
    `key_of(rotation_id)`, and the key of each that is not."""
    wanted: dict[str, None] = {}
    for rotation_id in rotation_ids:
        wanted[rotation_id] = None
        secondary = org.rotation(rotation_id).secondary
        if secondary is not None:
            wanted[secondary] = None
    lines: dict[str, RotationTimeline] = {}
    stale: dict[str, tuple[Any, ...]] = {}
    for rotation_id in wanted:
        key = key_of(rotation_id)
        line = STORE.get(rotation_id, key)
        if line is None:
            stale[rotation_id] = key
        else:
            lines[rotation_id] = line
    return lines, stale


def prepare(
    session: Session, org: OrgConfig, rotation_ids: Iterable[str]
) -> dict[str, RotationTimeline]:
    """The current timeline of each rotation and of its secondary, building the stale ones
    with one query per kind (roster records, overrides) for all of them."""
    lines, stale = _cached(org, rotation_ids, lambda one: _key(session, org, one))
    if stale:
        records = roster_records(session, stale)
        covers = _covers(session, list(stale))
        for rotation_id, key in stale.items():
            rotation = org.rotation(rotation_id)
            line = RotationTimeline(
                rotation_id,
                schedule.Cadence.of(rotation, org.rotation_zone(rotation_id)),
                rosters_from(org, rotation_id, records[rotation_id]),
                covers[rotation_id],
            )
            STORE.put(rotation_id, key, line)
            lines[rotation_id] = line
    return lines


def timeline_of(session: Session, org: OrgConfig, rotation_id: str) -> RotationTimeline:
    """The rotation's current timeline (its secondary's is made ready too)."""
    line = STORE.get(rotation_id, _key(session, org, rotation_id))
    if line is not None:
        return line
    return prepare(session, org, [rotation_id])[rotation_id]


# ---- questions ------------------------------------------------------------------------------


def holder(session: Session, org: OrgConfig, rotation_id: str, at: datetime) -> Holder:
    return _holder(org, rotation_id, at, lambda one: timeline_of(session, org, one))


def _holder(
    org: OrgConfig, rotation_id: str, at: datetime, line_of: Callable[[str], RotationTimeline]
) -> Holder:
    rotation = org.rotation(rotation_id)
    segment = line_of(rotation_id).segment_at(at)
    secondary = None
    if rotation.secondary is not None:
        backup = line_of(rotation.secondary).segment_at(at)
        secondary = backup.person if backup is not None else None
    return Holder(rotation_id, segment, secondary, rotation.secondary)


def who_is_on_call(session: Session, org: OrgConfig, rotation_id: str, at: datetime) -> OnCall:
    """Who is on call for a rotation at an instant (overrides honoured), and its secondary."""
    at = as_utc(at)
    return holder(session, org, rotation_id, at).at(at)


def who_is_on_call_each(
    session: Session, org: OrgConfig, rotation_ids: Sequence[str], at: datetime
) -> list[OnCall]:
    """`who_is_on_call` for several rotations, with one query per kind for all of them."""
    prepare(session, org, rotation_ids)
    return [who_is_on_call(session, org, rotation_id, at) for rotation_id in rotation_ids]


def who_is_on_call_cached(
    org: OrgConfig,
    rotation_ids: Sequence[str],
    at: datetime,
    tokens: Mapping[str, str],
    database: URL,
) -> list[OnCall] | None:
    """`who_is_on_call_each` from this process's timelines alone, given the revision `tokens`
    read from `database`: None when any timeline it needs is not cached for them (building one
    takes queries and CPU, which is work for a thread, not for an answer on the event loop)."""
    lines, stale = _cached(org, rotation_ids, lambda one: _key_for(org, one, tokens, database))
    if stale:
        return None
    at = as_utc(at)
    return [_holder(org, one, at, lines.__getitem__).at(at) for one in rotation_ids]


def holders_over(
    session: Session, org: OrgConfig, rotation_id: str, instants: Sequence[datetime]
) -> list[Holder]:
    """Who holds the rotation at each of `instants` (sorted, aware UTC), one entry per instant;
    `holder.at(instant)` is exactly `who_is_on_call` there."""
    out: list[Holder] = []
    for count, holder in runs_over_each(session, org, [rotation_id], instants)[rotation_id]:
        out.extend([holder] * count)
    return out


def runs_over_each(
    session: Session, org: OrgConfig, rotation_ids: Sequence[str], instants: Sequence[datetime]
) -> dict[str, list[tuple[int, Holder]]]:
    """Who holds each rotation at each of `instants` (sorted), as runs: (how many instants in a
    row, the answer for them). Instants in one stretch share one answer, so a year of hours
    costs about one step per handoff; each timeline (a secondary's too) is walked once."""
    lines = prepare(session, org, rotation_ids)
    runs: dict[str, list[tuple[int, Segment | None]]] = {}

    def runs_of(one: str) -> list[tuple[int, Segment | None]]:
        if one not in runs:
            runs[one] = lines[one].runs(instants)
        return runs[one]

    found: dict[str, list[tuple[int, Holder]]] = {}
    for rotation_id in rotation_ids:
        secondary = org.rotation(rotation_id).secondary
        if secondary is None:
            found[rotation_id] = [
                (count, Holder(rotation_id, segment, None, None))
                for count, segment in runs_of(rotation_id)
            ]
        else:
            found[rotation_id] = _combine(
                rotation_id, secondary, runs_of(rotation_id), runs_of(secondary)
            )
    return found


def _combine(
    rotation_id: str,
    secondary_id: str,
    primary: list[tuple[int, Segment | None]],
    backup: list[tuple[int, Segment | None]],
) -> list[tuple[int, Holder]]:
    """Walk two run lists over the same instants together: a new run where either changes."""
    out: list[tuple[int, Holder]] = []
    backups = iter(backup)
    b_left, second = next(backups, (0, None))
    person = second.person if second is not None else None
    for p_left, segment in primary:
        while p_left:
            if not b_left:
                return out
            count = p_left if p_left < b_left else b_left
            out.append((count, Holder(rotation_id, segment, person, secondary_id)))
            p_left -= count
            b_left -= count
            if not b_left:
                b_left, second = next(backups, (0, None))
                person = second.person if second is not None else None
    return out


def timeline(
    session: Session, org: OrgConfig, rotation_id: str, start: datetime, end: datetime
) -> list[Segment]:
    """Who holds the rotation over [start, end), as whole segments (not clipped to the window).

    Adjacent stretches held by the same person are merged, so a segment's end is when that
    person really hands over.
    """
    org.rotation(rotation_id)  # UnknownRotation for a typo
    return timeline_of(session, org, rotation_id).window(as_utc(start), as_utc(end))


def upcoming_shifts(
    session: Session, org: OrgConfig, rotation_id: str, start: datetime, end: datetime
) -> list[Segment]:
    """Who holds the rotation from `start` to `end`, overrides applied, in order."""
    return timeline(session, org, rotation_id, start, end)


def shifts_of_person(
    session: Session,
    org: OrgConfig,
    person: str,
    start: datetime,
    end: datetime,
    *,
    rotation_ids: Iterable[str] | None = None,
    same: SamePerson = same_ref,
) -> list[Segment]:
    """A person's stretches on call over [start, end) across rotations, in time order.

    `same(ref, person)` says whether a config reference names the person (e-mail or Slack id).
    """
    ids = list(rotation_ids) if rotation_ids is not None else [r.id for r in org.rotations]
    prepare(session, org, ids)
    found = [
        segment
        for rotation_id in ids
        for segment in timeline(session, org, rotation_id, start, end)
        if same(segment.person, person)
    ]
    return sorted(found, key=lambda s: (s.start, s.rotation_id))


def next_shifts_by_person(
    session: Session, org: OrgConfig, rotation_id: str, now: datetime
) -> dict[str, tuple[datetime, datetime] | None]:
    """Each person's next stretch on the rotation that starts after `now` (None: none soon)."""
    people = set(org.rotation(rotation_id).members)
    for roster in timeline_of(session, org, rotation_id).rosters:
        people.update(roster.members)
    segments = timeline(session, org, rotation_id, now, now + NEXT_SHIFT_HORIZON)
    people.update(s.person for s in segments)
    result: dict[str, tuple[datetime, datetime] | None] = dict.fromkeys(people)
    for segment in segments:
        if segment.start > now and result.get(segment.person) is None:
            result[segment.person] = (segment.start, segment.end)
    return result


@dataclass(frozen=True)
class MovedShift:
    rotation_id: str
    person: str
    before: tuple[datetime, datetime] | None
    after: tuple[datetime, datetime] | None


def moved_shifts(
    session: Session,
    org: OrgConfig,
    rotation_id: str,
    before: dict[str, tuple[datetime, datetime] | None],
    now: datetime,
) -> list[MovedShift]:
    """Whose next shift differs from `before` (a snapshot from `next_shifts_by_person`)."""
    after = next_shifts_by_person(session, org, rotation_id, now)
    moved = []
    for person in sorted(set(before) | set(after)):
        if before.get(person) != after.get(person):
            moved.append(MovedShift(rotation_id, person, before.get(person), after.get(person)))
    return moved


def next_handoff(session: Session, org: OrgConfig, rotation_id: str, now: datetime) -> datetime:
    """When the person on call now hands over (an override's end counts)."""
    current = who_is_on_call(session, org, rotation_id, now)
    if current.shift_end is not None:
        return current.shift_end
    rotation = org.rotation(rotation_id)
    return schedule.Cadence.of(rotation, org.rotation_zone(rotation_id)).next_handoff_after(now)
