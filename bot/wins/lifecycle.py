"""A cycle's clock: reminders to line managers (or their delegates) who have not submitted, the
deadline that turns each team's entries into its digest, and the one late nudge after it."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from bot import outbox
from bot.runtime import Runtime
from bot.wins import blocks, tree
from bot.wins.digests import post_team_digest
from bot.wins.entries import delegation, ensure_cycle, responsible, submission
from bot.wins.models import COLLECTING, SELECTING, WinsCycle
from bot.wins.selection import open_ready


def owing(session: Session, runtime: Runtime, cycle: WinsCycle) -> list[str]:
    """Line teams that have not submitted for the cycle."""
    return [
        t.id
        for t in tree.line_teams(runtime.org)
        if submission(session, cycle.id or 0, t.id) is None
    ]


def _nudge(
    session: Session, runtime: Runtime, cycle: WinsCycle, team_id: str, tag: str, *, late: bool
) -> int:
    now = runtime.clock.now()
    delegated = delegation(session, cycle.id or 0, team_id)
    sent = 0
    for person in responsible(session, runtime, cycle, team_id):
        text, kit = blocks.reminder(
            runtime.org,
            cycle,
            team_id,
            late=late,
            delegated_by=delegated.manager if delegated else None,
        )
        outbox.post(
            session, f"wins:{tag}:{cycle.number}:{team_id}:{person}", person, text, now, blocks=kit
        )
        sent += 1
    return sent


def remind(session: Session, runtime: Runtime, number: int, lead: timedelta) -> int:
    """The reminder `lead` before cycle `number`'s deadline, to those who have not submitted."""
    cycle = ensure_cycle(session, runtime, number)
    if cycle.state != COLLECTING:
        return 0
    tag = f"remind:{int(lead.total_seconds())}s"
    return sum(
        _nudge(session, runtime, cycle, t, tag, late=False) for t in owing(session, runtime, cycle)
    )


def close(session: Session, runtime: Runtime, number: int) -> WinsCycle:
    """The deadline: every line team's entries become its digest; those who owe an update get one
    late nudge; the parents of teams that are done start choosing."""
    cycle = ensure_cycle(session, runtime, number)
    ensure_cycle(session, runtime, number + 1)
    if cycle.state != COLLECTING:
        return cycle
    cycle.state = SELECTING
    cycle.closed_at = runtime.clock.now()
    session.add(cycle)
    session.flush()
    for team in tree.line_teams(runtime.org):
        post_team_digest(session, runtime, cycle, team.id)
    for team_id in owing(session, runtime, cycle):
        _nudge(session, runtime, cycle, team_id, "late", late=True)
    open_ready(session, runtime, cycle)
    return cycle
