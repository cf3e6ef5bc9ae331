"""Who may change a rotation, and overrides: someone else holds it for a while (a cover)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bot.clock import as_utc
from bot.config import OrgConfig
from bot.errors import Conflict, InvalidInput, NotAllowed, NotFound
from bot.oncall.lookup import SamePerson, next_shifts_by_person, same_ref, timeline
from bot.oncall.models import Override, SwapRequest

MAX_OVERRIDE = timedelta(days=90)


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
