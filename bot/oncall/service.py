"""Who is on call: the one answer every feature uses, plus rosters, overrides, swaps and load.

Functions take the session explicitly and return domain objects; they know nothing of Slack.
People are config references (a Slack id or an e-mail address) or Slack ids from Slack itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from bot.business_hours import business_time_between
from bot.clock import as_utc, wall_time_to_utc
from bot.config import OrgConfig, Rotation
from bot.errors import Conflict, InvalidInput, NotAllowed, NotFound
from bot.oncall import schedule
from bot.oncall.models import HandoffNote, Override, RosterRecord, SwapRequest
from bot.oncall.schedule import Roster

SamePerson = Callable[[str, str], bool]

# How far ahead "your next shift" looks; a rotation of 26 people with weekly shifts fits.
NEXT_SHIFT_HORIZON = timedelta(weeks=26)
LOAD_WINDOW = timedelta(weeks=13)  # "the last quarter"
MAX_OVERRIDE = timedelta(days=90)
SWAP_ANSWER_TIME = timedelta(days=2)


def same_ref(ref: str, person: str) -> bool:
    return ref == person


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


# ---- rosters: config members over time ------------------------------------------------------


def rosters(session: Session, org: OrgConfig, rotation_id: str) -> list[Roster]:
    """The rotation's member history; the config's members when nothing is recorded yet."""
    rotation = org.rotation(rotation_id)
    records = _roster_records(session, rotation_id)
    history = [Roster(r.from_index, tuple(r.members)) for r in records]
    current = tuple(rotation.members)
    if not history:
        return [Roster(0, current)]
    if history[-1].members != current:
        # A config change not recorded yet (sync runs at start-up and on every tick): it takes
        # effect from the first shift after the newest record, never rewriting recorded shifts.
        cadence = schedule.Cadence.of(rotation, org.rotation_zone(rotation_id))
        index = cadence.index_at(records[-1].recorded_at)
        history.append(Roster(max(history[-1].from_index, (index or 0) + 1), current))
    return history


def _roster_records(session: Session, rotation_id: str) -> list[RosterRecord]:
    return list(
        session.exec(
            select(RosterRecord)
            .where(RosterRecord.rotation_id == rotation_id)
            .order_by(col(RosterRecord.from_index), col(RosterRecord.id))
        ).all()
    )


@dataclass(frozen=True)
class RosterChange:
    rotation_id: str
    from_index: int
    effective_at: datetime
    before: dict[str, tuple[datetime, datetime] | None]  # each person's next shift before


def sync_rosters(session: Session, org: OrgConfig, now: datetime) -> list[RosterChange]:
    """Record each rotation's config members when they differ from the last record.

    The first record covers every shift. A later change takes effect at the next handoff, so
    the current shift and every past one keep their people. Returns the changes made, with the
    next shifts as they were, so callers can tell whoever's next shift moved.
    """
    changes = []
    for rotation in org.rotations:
        records = _roster_records(session, rotation.id)
        members = list(rotation.members)
        if records and records[-1].members == members:
            continue
        if not records:
            session.add(
                RosterRecord(
                    rotation_id=rotation.id, from_index=0, members=members, recorded_at=now
                )
            )
            continue
        # The next shifts as recorded so far (the org as it was, before this change).
        recorded = rotation.model_copy(update={"members": records[-1].members})
        was = org.model_copy(
            update={"rotations": [recorded if r.id == rotation.id else r for r in org.rotations]}
        )
        before = next_shifts_by_person(session, was, rotation.id, now)
        cadence = schedule.Cadence.of(rotation, org.rotation_zone(rotation.id))
        current = cadence.index_at(now)
        from_index = 0 if current is None else current + 1
        # A change made twice before it takes effect replaces the pending one.
        for record in records:
            if record.from_index >= from_index:
                session.delete(record)
        session.add(
            RosterRecord(
                rotation_id=rotation.id, from_index=from_index, members=members, recorded_at=now
            )
        )
        session.flush()
        changes.append(RosterChange(rotation.id, from_index, cadence.handoff(from_index), before))
    session.flush()
    return changes


# ---- the timeline: scheduled shifts with overrides applied ----------------------------------


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
    for roster in rosters(session, org, rotation_id):
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


# ---- who may change a rotation --------------------------------------------------------------


def may_change(org: OrgConfig, rotation_id: str, user_id: str, same: SamePerson = same_ref) -> bool:
    """Rotation members, the managers of the rotation's team and configured admins."""
    rotation = org.rotation(rotation_id)
    team = org.team(rotation.team)
    allowed = [*rotation.members, *team.managers, *org.admins]
    return any(same(ref, user_id) for ref in allowed)


def require_may_change(
    org: OrgConfig, rotation_id: str, user_id: str, same: SamePerson = same_ref
) -> None:
    if not may_change(org, rotation_id, user_id, same):
        raise NotAllowed(
            f"Only members of {rotation_id}, managers of team {org.rotation(rotation_id).team} "
            "and opsbot admins can change this rotation."
        )


# ---- overrides ------------------------------------------------------------------------------


class OutsideRotation(InvalidInput):
    """The cover names someone outside the rotation and its team: ask before going ahead."""

    def __init__(self, rotation_id: str, team_id: str, person: str) -> None:
        super().__init__(
            f"{person} is not a member of {rotation_id} or of team {team_id}, so they may not "
            "know its systems or its runbooks. Confirm to give them the cover anyway."
        )
        self.rotation_id, self.team_id, self.person = rotation_id, team_id, person


def is_outsider(org: OrgConfig, rotation_id: str, person: str, same: SamePerson = same_ref) -> bool:
    """Neither in the rotation nor among its team's members and managers."""
    rotation = org.rotation(rotation_id)
    team = org.team(rotation.team)
    insiders = [*rotation.members, *team.members, *team.managers]
    return not any(same(ref, person) or ref == person for ref in insiders)


@dataclass(frozen=True)
class OverrideResult:
    override: Override
    replaced: list[str]  # who would have been on call during the window
    before: dict[str, tuple[datetime, datetime] | None]
    other_half: Override | None = None
    outsider: bool = False  # the cover went, confirmed, to someone outside rotation and team  # a swap's other override, cancelled with this one


def create_override(
    session: Session,
    org: OrgConfig,
    rotation_id: str,
    person: str,
    start: datetime,
    end: datetime,
    actor: str,
    now: datetime,
    *,
    reason: str | None = None,
    same: SamePerson = same_ref,
    outsider_confirmed: bool = False,
) -> OverrideResult:
    """`person` covers the rotation from `start` to `end` (actor must be allowed to change it).

    A person outside the rotation and its team raises `OutsideRotation` unless the actor has
    confirmed it (`outsider_confirmed`), after every other check has passed.
    """
    rotation = org.rotation(rotation_id)
    require_may_change(org, rotation_id, actor, same)
    start, end = as_utc(start), as_utc(end)
    if end <= start:
        raise InvalidInput("The cover must end after it starts.")
    if end <= now:
        raise InvalidInput("That cover would be over already; pick a time in the future.")
    if end - start > MAX_OVERRIDE:
        raise InvalidInput(
            "A cover can last at most 90 days; change the rotation in the config instead."
        )
    start = max(start, now)
    covered = [
        s
        for s in timeline(session, org, rotation_id, start, end)
        if s.end > start and s.start < end
    ]
    if not covered:
        raise InvalidInput(f"{rotation_id} has no shifts between those times.")
    if all(same(s.person, person) for s in covered):
        raise InvalidInput("That person is already on call for the whole of that time.")
    outsider = is_outsider(org, rotation_id, person, same)
    if outsider and not outsider_confirmed:
        raise OutsideRotation(rotation_id, rotation.team, person)
    before = next_shifts_by_person(session, org, rotation_id, now)
    replaced = []
    for segment in covered:
        if not same(segment.person, person) and segment.person not in replaced:
            replaced.append(segment.person)
    override = Override(
        rotation_id=rotation_id,
        start=start,
        end=end,
        person=person,
        replaces=replaced[0] if len(replaced) == 1 else None,
        kind="cover",
        reason=reason,
        created_by=actor,
        created_at=now,
    )
    session.add(override)
    session.flush()
    return OverrideResult(override, replaced, before, outsider=outsider)


def cancel_override(
    session: Session,
    org: OrgConfig,
    override_id: int,
    actor: str,
    now: datetime,
    *,
    same: SamePerson = same_ref,
) -> OverrideResult:
    override = session.get(Override, override_id)
    if override is None or override.cancelled_at is not None:
        raise NotFound(f"There is no active override #{override_id}.")
    require_may_change(org, override.rotation_id, actor, same)
    if as_utc(override.end) <= now:
        raise Conflict(f"Override #{override_id} is over already.")
    other = _other_half(session, override)
    if other is not None:
        # Cancelling one half alone would leave one person on call twice and the other not at
        # all; a swap is undone whole, and only while neither half has begun.
        started = [o for o in (override, other) if as_utc(o.start) <= now]
        if started:
            raise Conflict(
                f"Override #{override_id} is half of swap #{override.swap_id} "
                f"(with override #{other.id}), and #{started[0].id} has already begun, so "
                "the swap cannot be undone: cancelling one half would put one person on call "
                "twice. Ask for a new swap, or arrange a cover with `/oncall cover`."
            )
    before = next_shifts_by_person(session, org, override.rotation_id, now)
    for cancelled in (override, other):
        if cancelled is not None:
            cancelled.cancelled_at = now
            cancelled.cancelled_by = actor
    if other is not None and override.swap_id is not None:
        swap = session.get(SwapRequest, override.swap_id)
        if swap is not None:
            swap.status = "cancelled"
    session.flush()
    return OverrideResult(override, [override.person], before, other)


def _other_half(session: Session, override: Override) -> Override | None:
    """The other override of the swap `override` belongs to, if it is still in force."""
    if override.kind != "swap" or override.swap_id is None:
        return None
    return session.exec(
        select(Override).where(
            Override.swap_id == override.swap_id,
            Override.id != override.id,
            col(Override.cancelled_at).is_(None),
        )
    ).first()


def overrides_of(session: Session, rotation_id: str, now: datetime) -> list[Override]:
    """Overrides not yet over, soonest first."""
    return list(
        session.exec(
            select(Override)
            .where(
                Override.rotation_id == rotation_id,
                col(Override.cancelled_at).is_(None),
                Override.end > now,
            )
            .order_by(col(Override.start), col(Override.id))
        ).all()
    )


# ---- swaps ----------------------------------------------------------------------------------


def _shift_to_swap(
    session: Session,
    org: OrgConfig,
    rotation_id: str,
    person: str,
    now: datetime,
    on: date | None,
    same: SamePerson,
    who: str,
) -> Segment:
    zone = org.rotation_zone(rotation_id)
    segments = [
        s
        for s in timeline(session, org, rotation_id, now, now + NEXT_SHIFT_HORIZON)
        if same(s.person, person) and s.start > now
    ]
    if on is not None:
        instant = wall_time_to_utc(datetime.combine(on, datetime.min.time()), zone)
        day_end = wall_time_to_utc(
            datetime.combine(on + timedelta(days=1), datetime.min.time()), zone
        )
        segments = [s for s in segments if s.start < day_end and s.end > instant]
        if not segments:
            raise InvalidInput(f"{who} no upcoming {rotation_id} shift on {on.isoformat()}.")
    elif not segments:
        raise InvalidInput(f"{who} no upcoming {rotation_id} shift to swap.")
    return segments[0]


def request_swap(
    session: Session,
    org: OrgConfig,
    rotation_id: str,
    requester: str,
    requestee: str,
    now: datetime,
    *,
    mine: date | None = None,
    theirs: date | None = None,
    same: SamePerson = same_ref,
) -> SwapRequest:
    """`requester` offers their next (or dated) shift for `requestee`'s next (or dated) one."""
    require_may_change(org, rotation_id, requester, same)
    if same(requester, requestee) or requester == requestee:
        raise InvalidInput("You cannot swap shifts with yourself.")
    own = _shift_to_swap(session, org, rotation_id, requester, now, mine, same, "You have")
    other = _shift_to_swap(session, org, rotation_id, requestee, now, theirs, same, "They have")
    pending = session.exec(
        select(SwapRequest).where(
            SwapRequest.rotation_id == rotation_id,
            SwapRequest.status == "pending",
            SwapRequest.requester == requester,
            SwapRequest.requestee == requestee,
            SwapRequest.requester_start == own.start,
            SwapRequest.requestee_start == other.start,
        )
    ).first()
    if pending is not None:
        raise Conflict(
            f"You already asked for this swap (request #{pending.id}); wait for an answer."
        )
    swap = SwapRequest(
        rotation_id=rotation_id,
        requester=requester,
        requestee=requestee,
        requester_start=own.start,
        requester_end=own.end,
        requestee_start=other.start,
        requestee_end=other.end,
        created_at=now,
        expires_at=min(now + SWAP_ANSWER_TIME, own.start, other.start),
    )
    session.add(swap)
    session.flush()
    return swap


def get_swap(session: Session, swap_id: int) -> SwapRequest:
    swap = session.get(SwapRequest, swap_id)
    if swap is None:
        raise NotFound(f"There is no swap request #{swap_id}.")
    return swap


def _require_open(swap: SwapRequest, now: datetime) -> None:
    if swap.status != "pending":
        raise Conflict(f"This swap request was {swap.status} already.")
    if as_utc(swap.expires_at) <= now:
        raise Conflict("This swap request has expired.")


@dataclass(frozen=True)
class SwapResult:
    swap: SwapRequest
    overrides: list[Override]
    before: dict[str, tuple[datetime, datetime] | None]


def accept_swap(
    session: Session,
    org: OrgConfig,
    swap_id: int,
    actor: str,
    now: datetime,
    *,
    same: SamePerson = same_ref,
) -> SwapResult:
    """Exchange the two shifts: each person covers the other's, as two linked overrides."""
    swap = get_swap(session, swap_id)
    if not (same(swap.requestee, actor) or swap.requestee == actor):
        raise NotAllowed("Only the person who was asked can accept this swap.")
    _require_open(swap, now)
    windows = [
        (swap.requester, as_utc(swap.requester_start), as_utc(swap.requester_end)),
        (swap.requestee, as_utc(swap.requestee_start), as_utc(swap.requestee_end)),
    ]
    for holder, start, end in windows:
        held = timeline(session, org, swap.rotation_id, start, end)
        if not held or any(not same(s.person, holder) for s in held):
            swap.status = "cancelled"
            swap.decided_at = now
            raise Conflict(
                "The schedule changed since this swap was asked for, so it no longer applies."
            )
    before = next_shifts_by_person(session, org, swap.rotation_id, now)
    overrides = []
    for (holder, start, end), taker in zip(windows, (swap.requestee, swap.requester), strict=True):
        override = Override(
            rotation_id=swap.rotation_id,
            start=start,
            end=end,
            person=taker,
            replaces=holder,
            kind="swap",
            swap_id=swap.id,
            created_by=actor,
            created_at=now,
        )
        session.add(override)
        overrides.append(override)
    swap.status = "accepted"
    swap.decided_at = now
    session.flush()
    return SwapResult(swap, overrides, before)


def decline_swap(
    session: Session,
    org: OrgConfig,
    swap_id: int,
    actor: str,
    now: datetime,
    *,
    same: SamePerson = same_ref,
) -> SwapRequest:
    swap = get_swap(session, swap_id)
    if not (same(swap.requestee, actor) or swap.requestee == actor):
        raise NotAllowed("Only the person who was asked can decline this swap.")
    _require_open(swap, now)
    swap.status = "declined"
    swap.decided_at = now
    session.flush()
    return swap


def expire_swap(session: Session, swap_id: int, now: datetime) -> SwapRequest | None:
    """Mark a still-pending request expired; None when it was answered in time."""
    swap = session.get(SwapRequest, swap_id)
    if swap is None or swap.status != "pending":
        return None
    swap.status = "expired"
    swap.decided_at = now
    session.flush()
    return swap


# ---- handoff notes --------------------------------------------------------------------------


def save_notes(
    session: Session, rotation_id: str, handoff_at: datetime, author: str, text: str, now: datetime
) -> HandoffNote:
    text = text.strip()
    if not text:
        raise InvalidInput("Handoff notes cannot be empty.")
    if len(text) > 3000:
        raise InvalidInput("Handoff notes are limited to 3000 characters.")
    note = notes_for(session, rotation_id, handoff_at)
    if note is None:
        note = HandoffNote(
            rotation_id=rotation_id, handoff_at=handoff_at, author=author, text=text, updated_at=now
        )
        session.add(note)
    else:
        note.author, note.text, note.updated_at = author, text, now
    session.flush()
    return note


def notes_for(session: Session, rotation_id: str, handoff_at: datetime) -> HandoffNote | None:
    return session.exec(
        select(HandoffNote).where(
            HandoffNote.rotation_id == rotation_id, HandoffNote.handoff_at == handoff_at
        )
    ).first()


def next_handoff(session: Session, org: OrgConfig, rotation_id: str, now: datetime) -> datetime:
    """When the person on call now hands over (an override's end counts)."""
    current = who_is_on_call(session, org, rotation_id, now)
    if current.shift_end is not None:
        return current.shift_end
    rotation = org.rotation(rotation_id)
    return schedule.Cadence.of(rotation, org.rotation_zone(rotation_id)).next_handoff_after(now)


# ---- load: shares of on-call and off-hours time ---------------------------------------------


@dataclass(frozen=True)
class PersonLoad:
    person: str
    on_call: timedelta
    share: float
    off_hours: timedelta
    off_hours_share: float


def load(
    session: Session,
    org: OrgConfig,
    rotation_id: str,
    now: datetime,
    window: timedelta = LOAD_WINDOW,
) -> list[PersonLoad]:
    """Each person's share of the rotation's on-call time, and of its off-hours time, over the
    window ending now (off-hours: outside the team's business hours and on holidays)."""
    rotation = org.rotation(rotation_id)
    start = now - window
    totals: dict[str, list[timedelta]] = {}
    for segment in timeline(session, org, rotation_id, start, now):
        begin, end = max(segment.start, start), min(segment.end, now)
        on_call = end - begin
        off_hours = on_call - business_time_between(org, begin, end, rotation.team)
        spent = totals.setdefault(segment.person, [timedelta(0), timedelta(0)])
        spent[0] += on_call
        spent[1] += off_hours
    for member in rotation.members:
        totals.setdefault(member, [timedelta(0), timedelta(0)])
    all_on = sum((t[0] for t in totals.values()), timedelta(0))
    all_off = sum((t[1] for t in totals.values()), timedelta(0))
    rows = [
        PersonLoad(
            person,
            on,
            on / all_on if all_on else 0.0,
            off,
            off / all_off if all_off else 0.0,
        )
        for person, (on, off) in totals.items()
    ]
    return sorted(rows, key=lambda r: (-r.share, r.person))


def team_rotations(org: OrgConfig, team_or_rotation: str | None) -> list[Rotation]:
    """Rotations named by a rotation id or a team id; every rotation when None."""
    if not team_or_rotation:
        return list(org.rotations)
    for rotation in org.rotations:
        if rotation.id == team_or_rotation:
            return [rotation]
    if any(t.id == team_or_rotation for t in org.teams):
        return org.rotations_of_team(team_or_rotation)
    raise NotFound(f"There is no rotation or team '{team_or_rotation}' in the org config.")
