"""Swaps: A offers one of their shifts for one of B's; B accepts (two linked overrides) or not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import Session, select

from bot.clock import as_utc, wall_time_to_utc
from bot.config import OrgConfig
from bot.errors import Conflict, InvalidInput, NotAllowed, NotFound
from bot.oncall.lookup import (
    NEXT_SHIFT_HORIZON,
    SamePerson,
    next_shifts_by_person,
    same_ref,
    timeline,
)
from bot.oncall.models import Override, SwapRequest
from bot.oncall.overrides import require_may_change
from bot.oncall.segments import Segment

SWAP_ANSWER_TIME = timedelta(days=2)


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


def _answered(
    session: Session, swap_id: int, actor: str, now: datetime, same: SamePerson, verb: str
) -> SwapRequest:
    """The open swap `actor` may answer: only the person who was asked."""
    swap = get_swap(session, swap_id)
    if not (same(swap.requestee, actor) or swap.requestee == actor):
        raise NotAllowed(f"Only the person who was asked can {verb} this swap.")
    _require_open(swap, now)
    return swap


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
    swap = _answered(session, swap_id, actor, now, same, "accept")
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
    swap = _answered(session, swap_id, actor, now, same, "decline")
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
