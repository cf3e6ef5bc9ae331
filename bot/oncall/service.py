"""On-call's core, one import for its callers: who is on call (from cached timelines), rosters,
overrides, swaps, handoff notes and load.

Functions take the session explicitly and return domain objects; they know nothing of Slack.
People are config references (a Slack id or an e-mail address) or Slack ids from Slack itself.
The workflows live in their own modules (lookup, rosters, overrides, swaps); this one keeps
handoff notes and load, and names the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select

from bot.business_hours import business_time_between
from bot.config import OrgConfig, Rotation
from bot.errors import InvalidInput, NotFound
from bot.oncall.lookup import (
    NEXT_SHIFT_HORIZON,
    MovedShift,
    SamePerson,
    active_overrides,
    holders_over,
    moved_shifts,
    next_handoff,
    next_shifts_by_person,
    prepare,
    rosters,
    runs_over_each,
    same_ref,
    shifts_of_person,
    timeline,
    upcoming_shifts,
    who_is_on_call,
    who_is_on_call_cached,
    who_is_on_call_each,
)
from bot.oncall.models import HandoffNote
from bot.oncall.overrides import (
    MAX_OVERRIDE,
    OutsideRotation,
    OverrideResult,
    cancel_override,
    create_override,
    is_outsider,
    may_change,
    overrides_of,
    require_may_change,
)
from bot.oncall.rosters import RosterChange, sync_rosters
from bot.oncall.segments import Holder, OnCall, Segment
from bot.oncall.swaps import (
    SWAP_ANSWER_TIME,
    SwapResult,
    accept_swap,
    decline_swap,
    expire_swap,
    get_swap,
    request_swap,
)

__all__ = [
    "LOAD_WINDOW",
    "MAX_OVERRIDE",
    "NEXT_SHIFT_HORIZON",
    "SWAP_ANSWER_TIME",
    "Holder",
    "MovedShift",
    "OnCall",
    "OutsideRotation",
    "OverrideResult",
    "PersonLoad",
    "RosterChange",
    "SamePerson",
    "Segment",
    "SwapResult",
    "accept_swap",
    "active_overrides",
    "cancel_override",
    "create_override",
    "decline_swap",
    "expire_swap",
    "get_swap",
    "holders_over",
    "is_outsider",
    "load",
    "may_change",
    "moved_shifts",
    "next_handoff",
    "next_shifts_by_person",
    "notes_for",
    "overrides_of",
    "prepare",
    "request_swap",
    "require_may_change",
    "rosters",
    "runs_over_each",
    "same_ref",
    "save_notes",
    "shifts_of_person",
    "sync_rosters",
    "team_rotations",
    "timeline",
    "upcoming_shifts",
    "who_is_on_call",
    "who_is_on_call_cached",
    "who_is_on_call_each",
]

LOAD_WINDOW = timedelta(weeks=13)  # "the last quarter"


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
