"""Cycles and entries: who writes for which team, saving STAR entries and proposals, "no update",
delegation, and whether an entry may still change (until the level above has chosen)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.config import Team
from bot.errors import Conflict, InvalidInput, NotAllowed, NotFound
from bot.runtime import Runtime
from bot.wins import tree
from bot.wins.checks import Draft, require_valid
from bot.wins.cycles import CycleCalendar
from bot.wins.models import (
    ACCEPTED,
    CHALLENGE,
    DECLINED,
    INTERNAL,
    MISSED,
    PROPOSED,
    PUBLISHED,
    SELECTED,
    SHAREABLE,
    WinsCycle,
    WinsDelegation,
    WinsEntry,
    WinsSelection,
    WinsSubmission,
)

# ---- cycles ---------------------------------------------------------------------------------


def calendar(runtime: Runtime) -> CycleCalendar:
    return CycleCalendar.of(runtime.org)


def ensure_cycle(session: Session, runtime: Runtime, number: int) -> WinsCycle:
    """The cycle's row, made on first need (a reminder, a form, a deadline)."""
    found = session.exec(select(WinsCycle).where(WinsCycle.number == number)).first()
    if found is not None:
        return found
    cal = calendar(runtime)
    cycle = WinsCycle(
        number=number,
        starts_at=cal.start(number),
        deadline=cal.deadline(number),
        created_at=runtime.clock.now(),
    )
    try:
        with session.begin_nested():
            session.add(cycle)
            session.flush()
    except IntegrityError:  # another replica made it first
        return session.exec(select(WinsCycle).where(WinsCycle.number == number)).one()
    return cycle


def get_cycle(session: Session, cycle_id: int) -> WinsCycle:
    cycle = session.get(WinsCycle, cycle_id)
    if cycle is None:
        raise NotFound(f"There is no Wins and Challenges cycle #{cycle_id}.")
    return cycle


def current_cycle(session: Session, runtime: Runtime) -> WinsCycle:
    return ensure_cycle(session, runtime, calendar(runtime).number_at(runtime.clock.now()))


def latest_closed(session: Session) -> WinsCycle | None:
    return session.exec(
        select(WinsCycle)
        .where(col(WinsCycle.closed_at).is_not(None))
        .order_by(col(WinsCycle.number).desc())
    ).first()


# ---- people ---------------------------------------------------------------------------------


def delegation(session: Session, cycle_id: int, team_id: str) -> WinsDelegation | None:
    return session.exec(
        select(WinsDelegation).where(
            WinsDelegation.cycle_id == cycle_id, WinsDelegation.team_id == team_id
        )
    ).first()


def responsible(session: Session, runtime: Runtime, cycle: WinsCycle, team_id: str) -> list[str]:
    """Who writes (line team) or chooses (parent team) this cycle: the delegate, else managers."""
    delegated = delegation(session, cycle.id or 0, team_id)
    if delegated is not None:
        return [delegated.delegate]
    team = runtime.org.team(team_id)
    return [runtime.directory.user_id(m, session) for m in team.managers]


def is_manager(session: Session, runtime: Runtime, user: str, team: Team) -> bool:
    return any(runtime.directory.same_person(m, user) for m in team.managers)


def can_write(
    session: Session, runtime: Runtime, user: str, cycle: WinsCycle, team_id: str
) -> bool:
    """The team's line manager, or the delegate of the cycle."""
    if user in responsible(session, runtime, cycle, team_id):
        return True
    return is_manager(session, runtime, user, runtime.org.team(team_id))


def is_member(runtime: Runtime, user: str, team: Team) -> bool:
    return any(runtime.directory.same_person(m, user) for m in team.members)


def teams_for(session: Session, runtime: Runtime, user: str, cycle: WinsCycle) -> list[Team]:
    """Line teams the person writes for (as manager or delegate), else teams they belong to."""
    org = runtime.org
    writes = [t for t in tree.line_teams(org) if can_write(session, runtime, user, cycle, t.id)]
    if writes:
        return writes
    return [t for t in tree.line_teams(org) if is_member(runtime, user, t)]


def can_read(session: Session, runtime: Runtime, user: str, team_id: str) -> bool:
    """Managers read their own team; skip managers read every team below them."""
    org = runtime.org
    for team in [org.team(team_id), *tree.ancestors(org, team_id)]:
        if is_manager(session, runtime, user, team):
            return True
    return any(user == runtime.directory.user_id(a) for a in org.admins)


# ---- whether things may still change ----------------------------------------------------------


def selection(session: Session, cycle_id: int, team_id: str) -> WinsSelection | None:
    return session.exec(
        select(WinsSelection).where(
            WinsSelection.cycle_id == cycle_id, WinsSelection.team_id == team_id
        )
    ).first()


def editable(session: Session, runtime: Runtime, cycle: WinsCycle, team_id: str) -> bool:
    """Entries change until the level above has made its selection (or let its window pass)."""
    if cycle.state == PUBLISHED:
        return False
    team = runtime.org.team(team_id)
    judge = team.parent if team.parent is not None else team_id
    chosen = selection(session, cycle.id or 0, judge)
    return chosen is None or chosen.state not in (SELECTED, MISSED)


def submission(session: Session, cycle_id: int, team_id: str) -> WinsSubmission | None:
    return session.exec(
        select(WinsSubmission).where(
            WinsSubmission.cycle_id == cycle_id, WinsSubmission.team_id == team_id
        )
    ).first()


def target_cycle(session: Session, runtime: Runtime, team_id: str) -> WinsCycle:
    """The cycle a new entry goes into: the one just closed while the team still owes it (a late
    update the level above can still see), else the one collecting now."""
    now_cycle = current_cycle(session, runtime)
    if now_cycle.number > 0:
        previous = ensure_cycle(session, runtime, now_cycle.number - 1)
        if (
            previous.closed_at is not None
            and submission(session, previous.id or 0, team_id) is None
            and editable(session, runtime, previous, team_id)
        ):
            return previous
    return now_cycle


# ---- entries --------------------------------------------------------------------------------


@dataclass
class Saved:
    entry: WinsEntry
    created: bool
    proposed: bool
    first_submission: bool
    kept_warnings_note: str = ""


def _mark_submitted(
    session: Session, cycle: WinsCycle, team_id: str, user: str, now: datetime, no_update: bool
) -> bool:
    found = submission(session, cycle.id or 0, team_id)
    if found is not None:
        if found.no_update and not no_update:
            found.no_update = False
        return False
    session.add(
        WinsSubmission(
            cycle_id=cycle.id or 0,
            team_id=team_id,
            submitted_by=user,
            submitted_at=now,
            no_update=no_update,
        )
    )
    session.flush()
    return True


def save_entry(
    session: Session,
    runtime: Runtime,
    user: str,
    cycle: WinsCycle,
    draft: Draft,
    *,
    entry_id: int | None = None,
    kept_warnings: list[str] | None = None,
) -> Saved:
    require_valid(draft)
    org = runtime.org
    team = org.team(draft.team_id)
    if not tree.is_line_team(team):
        raise InvalidInput(
            f"{team.name} has no members of its own; its managers choose highlights."
        )
    if not editable(session, runtime, cycle, team.id):
        raise Conflict(
            "The level above has already chosen its highlights for this cycle, so its entries "
            "no longer change."
        )
    now = runtime.clock.now()
    writer = can_write(session, runtime, user, cycle, team.id)
    if not writer and not is_member(runtime, user, team):
        raise NotAllowed(f"Only {team.name}'s manager and members write its Wins and Challenges.")
    visibility = draft.visibility if draft.kind == CHALLENGE else SHAREABLE
    fields = dict(
        kind=draft.kind,
        summary=draft.summary.strip(),
        situation=draft.situation.strip(),
        action=draft.action.strip(),
        result=draft.result.strip(),
        visibility=visibility,
        names_team=(draft.names_team or None) if draft.kind == CHALLENGE else None,
        raised_with_leadership=draft.raised_with_leadership,
        kept_warnings=list(kept_warnings or []),
        updated_at=now,
    )
    if entry_id is not None:
        entry = get_entry(session, entry_id)
        require_can_change(session, runtime, user, entry)
        for key, value in fields.items():
            setattr(entry, key, value)
        session.add(entry)
        session.flush()
        return Saved(entry, False, entry.status == PROPOSED, False)
    entry = WinsEntry(
        cycle_id=cycle.id or 0,
        team_id=team.id,
        author=user,
        status=ACCEPTED if writer else PROPOSED,
        created_at=now,
        **fields,
    )
    session.add(entry)
    session.flush()
    first = writer and _mark_submitted(session, cycle, team.id, user, now, no_update=False)
    return Saved(entry, True, not writer, first)


def get_entry(session: Session, entry_id: int) -> WinsEntry:
    entry = session.get(WinsEntry, entry_id)
    if entry is None or entry.deleted_at is not None:
        raise NotFound(f"Entry #{entry_id} does not exist (or was deleted).")
    return entry


def require_can_change(session: Session, runtime: Runtime, user: str, entry: WinsEntry) -> None:
    cycle = get_cycle(session, entry.cycle_id)
    if user != entry.author and not can_write(session, runtime, user, cycle, entry.team_id):
        raise NotAllowed("Only the entry's author and the team's line manager can change it.")
    if not editable(session, runtime, cycle, entry.team_id):
        raise Conflict(
            "The level above has already chosen its highlights for this cycle, so this entry "
            "no longer changes."
        )


def delete_entry(session: Session, runtime: Runtime, user: str, entry_id: int) -> WinsEntry:
    entry = get_entry(session, entry_id)
    require_can_change(session, runtime, user, entry)
    entry.deleted_at = runtime.clock.now()
    session.add(entry)
    session.flush()
    return entry


def decide_proposal(
    session: Session, runtime: Runtime, user: str, entry_id: int, accept: bool
) -> tuple[WinsEntry, bool]:
    """The line manager takes an engineer's proposal in (or leaves it out); returns the entry and
    whether this was the team's first submission of the cycle."""
    entry = get_entry(session, entry_id)
    cycle = get_cycle(session, entry.cycle_id)
    if not can_write(session, runtime, user, cycle, entry.team_id):
        raise NotAllowed("Only the team's line manager (or this cycle's delegate) decides that.")
    if entry.status != PROPOSED:
        raise Conflict(f"Entry #{entry.id} was already {entry.status}.")
    if not editable(session, runtime, cycle, entry.team_id):
        raise Conflict("The level above has already chosen its highlights for this cycle.")
    entry.status = ACCEPTED if accept else DECLINED
    entry.updated_at = runtime.clock.now()
    session.add(entry)
    first = accept and _mark_submitted(
        session, cycle, entry.team_id, user, runtime.clock.now(), no_update=False
    )
    return entry, first


def no_update(
    session: Session, runtime: Runtime, user: str, cycle: WinsCycle, team_id: str
) -> bool:
    """ "No update this cycle" is a valid submission; returns False if the team had submitted."""
    if not can_write(session, runtime, user, cycle, team_id):
        raise NotAllowed("Only the team's line manager (or this cycle's delegate) submits that.")
    if not editable(session, runtime, cycle, team_id):
        raise Conflict("The level above has already chosen its highlights for this cycle.")
    return _mark_submitted(session, cycle, team_id, user, runtime.clock.now(), no_update=True)


def entries_of(
    session: Session, cycle_id: int, team_id: str, status: str = ACCEPTED
) -> list[WinsEntry]:
    return list(
        session.exec(
            select(WinsEntry)
            .where(
                WinsEntry.cycle_id == cycle_id,
                WinsEntry.team_id == team_id,
                WinsEntry.status == status,
                col(WinsEntry.deleted_at).is_(None),
            )
            .order_by(col(WinsEntry.kind).desc(), col(WinsEntry.id))
        ).all()
    )


def entries_by(session: Session, cycle_id: int, author: str) -> list[WinsEntry]:
    return list(
        session.exec(
            select(WinsEntry)
            .where(
                WinsEntry.cycle_id == cycle_id,
                WinsEntry.author == author,
                col(WinsEntry.deleted_at).is_(None),
                WinsEntry.status != DECLINED,
            )
            .order_by(col(WinsEntry.id))
        ).all()
    )


def _choosing_cycle(session: Session, runtime: Runtime, team_id: str) -> WinsCycle:
    """The cycle a parent team's manager chooses for now: a closed cycle whose choice at this
    level is still to come, else the one collecting."""
    open_cycles = session.exec(
        select(WinsCycle)
        .where(col(WinsCycle.closed_at).is_not(None), WinsCycle.state != PUBLISHED)
        .order_by(col(WinsCycle.number).desc())
    ).all()
    for cycle in open_cycles:
        chosen = selection(session, cycle.id or 0, team_id)
        if chosen is None or chosen.state not in (SELECTED, MISSED):
            return cycle
    return current_cycle(session, runtime)


def delegate(
    session: Session, runtime: Runtime, user: str, to: str, team_id: str | None = None
) -> list[tuple[Team, WinsCycle]]:
    """A manager away for the cycle hands their teams' writing and choosing to `to`: a line
    team for the update it owes, a parent team for the choice it makes next."""
    if to == user:
        raise InvalidInput("Delegate to someone else: you are the manager already.")
    org = runtime.org
    managed = [t for t in org.teams if is_manager(session, runtime, user, t)]
    if team_id is not None:
        org.team(team_id)
        managed = [t for t in managed if t.id == team_id]
    if not managed:
        raise NotAllowed("Only a team's manager can delegate its Wins and Challenges.")
    teams = [t for t in managed if tree.is_line_team(t) or tree.selects(org, t)]
    if not teams:
        raise InvalidInput("None of your teams writes or chooses Wins and Challenges.")
    now = runtime.clock.now()
    done = []
    for team in teams:
        if tree.selects(org, team) and not tree.is_line_team(team):
            cycle = _choosing_cycle(session, runtime, team.id)
        else:
            cycle = target_cycle(session, runtime, team.id)
        found = delegation(session, cycle.id or 0, team.id)
        if found is None:
            found = WinsDelegation(
                cycle_id=cycle.id or 0, team_id=team.id, manager=user, delegate=to, created_at=now
            )
        found.delegate, found.manager, found.created_at = to, user, now
        session.add(found)
        done.append((team, cycle))
    session.flush()
    return done


def internal_only(entry: WinsEntry) -> bool:
    """Whether the entry must stay inside the platform org, whatever anyone selects."""
    if entry.kind != CHALLENGE:
        return False
    return entry.visibility == INTERNAL or bool(
        entry.names_team and not entry.raised_with_leadership
    )
