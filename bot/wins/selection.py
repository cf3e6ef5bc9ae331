"""Walking up the tree: each parent level's manager picks (and may rewrite) highlights from the
level below within `selection_window` business time; a missed window passes everything up,
marked not curated. The top level's choice is the stakeholder digest, which never carries an
internal challenge."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from bot import mail, outbox
from bot.business_hours import BusinessCalendar
from bot.errors import Conflict, InvalidInput, NotAllowed
from bot.mrkdwn import escape
from bot.runtime import Runtime
from bot.scheduler import cancel_timers, set_timer
from bot.wins import blocks, tree
from bot.wins.digests import (
    ORG,
    STAKEHOLDERS,
    Item,
    candidates,
    cycle_text,
    highlights_of,
    level_items,
    publish,
    render_digest,
    render_mail,
)
from bot.wins.entries import get_cycle, is_manager, responsible, selection
from bot.wins.models import (
    MISSED,
    PENDING,
    PUBLISHED,
    SELECTED,
    WinsCycle,
    WinsHighlight,
    WinsSelection,
)
from bot.wins.reports import participation, participation_counts_text, participation_names_text

log = logging.getLogger(__name__)

SELECTION_DUE_TIMER = "wins.selection_due"
MAX_PICKS = 19  # five form blocks a pick, a hundred blocks a form


@dataclass(frozen=True)
class Pick:
    entry_id: int
    summary: str
    situation: str
    action: str
    result: str


def ready(session: Session, runtime: Runtime, cycle: WinsCycle, team_id: str) -> bool:
    """A level may choose once every team below it has its digest (closed, chosen or missed)."""
    if cycle.closed_at is None:
        return False
    for child in tree.children(runtime.org, team_id):
        if tree.selects(runtime.org, child):
            chosen = selection(session, cycle.id or 0, child.id)
            if chosen is None or chosen.state == PENDING:
                return False
    return True


def open_ready(session: Session, runtime: Runtime, cycle: WinsCycle) -> list[WinsSelection]:
    """Open every level whose teams below are all done; returns the ones opened now."""
    opened = []
    for team in runtime.org.teams:
        if not tree.selects(runtime.org, team) or selection(session, cycle.id or 0, team.id):
            continue
        if ready(session, runtime, cycle, team.id):
            opened.append(open_selection(session, runtime, cycle, team.id))
    return opened


def open_selection(
    session: Session, runtime: Runtime, cycle: WinsCycle, team_id: str
) -> WinsSelection:
    org = runtime.org
    now = runtime.clock.now()
    wins = org.wins
    assert wins is not None
    # "1d" is one business day in the choosing team's zone, as SLA targets read.
    calendar = BusinessCalendar.for_team(org, team_id)
    due = calendar.add(now, calendar.working_span(wins.selection_window))
    chosen = WinsSelection(cycle_id=cycle.id or 0, team_id=team_id, opened_at=now, due_at=due)
    session.add(chosen)
    session.flush()
    set_timer(session, SELECTION_DUE_TIMER, f"{cycle.id}:{team_id}", due, now)
    found = candidates(session, runtime, cycle.id or 0, team_id)
    for person in responsible(session, runtime, cycle, team_id):
        text, kit = blocks.selection_request(
            org, cycle, team_id, found, due, cycle_text(runtime, cycle)
        )
        outbox.post(
            session, f"wins:select:{cycle.number}:{team_id}:{person}", person, text, now, blocks=kit
        )
    return chosen


def require_chooser(
    session: Session, runtime: Runtime, user: str, cycle: WinsCycle, team_id: str
) -> WinsSelection:
    chosen = selection(session, cycle.id or 0, team_id)
    if chosen is None:
        raise Conflict("This level's selection has not opened yet: the teams below are not done.")
    team = runtime.org.team(team_id)
    if user not in responsible(session, runtime, cycle, team_id) and not is_manager(
        session, runtime, user, team
    ):
        raise NotAllowed(
            f"Only {team.name}'s manager (or this cycle's delegate) chooses its highlights."
        )
    top = runtime.org.team(team_id).parent is None
    if chosen.state == SELECTED or (chosen.state == MISSED and not top):
        raise Conflict("This level's highlights were already decided for this cycle.")
    return chosen


def choose(
    session: Session,
    runtime: Runtime,
    user: str,
    cycle_id: int,
    team_id: str,
    picks: list[Pick],
) -> WinsSelection:
    cycle = get_cycle(session, cycle_id)
    chosen = require_chooser(session, runtime, user, cycle, team_id)
    if len(picks) > MAX_PICKS:
        raise InvalidInput(f"Pick at most {MAX_PICKS} highlights: the point is to choose.")
    allowed = {i.entry_id: i for i in candidates(session, runtime, cycle_id, team_id)}
    unknown = [p.entry_id for p in picks if p.entry_id not in allowed]
    if unknown:
        raise InvalidInput(
            "Some picks are not among this level's entries any more; open the form again."
        )
    for existing in highlights_of(session, cycle_id, team_id):
        session.delete(existing)
    for position, pick in enumerate(picks):
        source = allowed[pick.entry_id]
        session.add(
            WinsHighlight(
                cycle_id=cycle_id,
                team_id=team_id,
                entry_id=pick.entry_id,
                from_team=source.from_team,
                kind=source.kind,
                summary=(pick.summary or source.summary).strip()[:300],
                situation=(pick.situation or source.situation).strip(),
                action=(pick.action or source.action).strip(),
                result=(pick.result or source.result).strip(),
                curated=True,
                position=position,
            )
        )
    chosen.state = SELECTED
    chosen.decided_by = user
    chosen.decided_at = runtime.clock.now()
    session.add(chosen)
    session.flush()
    cancel_timers(session, SELECTION_DUE_TIMER, f"{cycle_id}:{team_id}")
    _level_done(session, runtime, cycle, team_id, curated=True)
    return chosen


def miss(session: Session, runtime: Runtime, cycle_id: int, team_id: str) -> bool:
    """The window passed without a choice: everything from below goes up, marked not curated,
    and the manager who missed it is told once."""
    cycle = get_cycle(session, cycle_id)
    chosen = selection(session, cycle_id, team_id)
    if chosen is None or chosen.state != PENDING:
        return False
    for position, item in enumerate(candidates(session, runtime, cycle_id, team_id)):
        session.add(
            WinsHighlight(
                cycle_id=cycle_id,
                team_id=team_id,
                entry_id=item.entry_id,
                from_team=item.from_team,
                kind=item.kind,
                summary=item.summary,
                situation=item.situation,
                action=item.action,
                result=item.result,
                curated=False,
                position=position,
            )
        )
    chosen.state = MISSED
    chosen.decided_at = runtime.clock.now()
    session.add(chosen)
    session.flush()
    org = runtime.org
    team = org.team(team_id)
    above = org.team(team.parent).name if team.parent else None
    text = blocks.missed_text(team.name, above, cycle_text(runtime, cycle))
    now = runtime.clock.now()
    for person in responsible(session, runtime, cycle, team_id):
        kit = blocks.missed_blocks(text, cycle, team_id, top=team.parent is None)
        outbox.post(
            session, f"wins:missed:{cycle.number}:{team_id}:{person}", person, text, now, blocks=kit
        )
    _level_done(session, runtime, cycle, team_id, curated=False)
    return True


def _close_requests(
    session: Session, runtime: Runtime, cycle: WinsCycle, team_id: str, text: str
) -> None:
    """The "Choose highlights" DMs lose their button once the level is decided."""
    now = runtime.clock.now()
    for person in responsible(session, runtime, cycle, team_id):
        key = f"wins:select:{cycle.number}:{team_id}:{person}"
        outbox.update_message(
            session, f"{key}:closed", key, text, now, blocks=[blocks.section(text)]
        )


def _level_done(
    session: Session, runtime: Runtime, cycle: WinsCycle, team_id: str, *, curated: bool
) -> None:
    org = runtime.org
    team = org.team(team_id)
    if curated or team.parent is not None:  # the top may still choose after its window
        done = "chosen" if curated else "passed up uncurated (the window closed)"
        _close_requests(
            session,
            runtime,
            cycle,
            team_id,
            f"Highlights of *{escape(team.name)}* for {escape(cycle_text(runtime, cycle))}: "
            f"{done}.",
        )
    items = level_items(session, runtime, cycle.id or 0, team_id)
    wins = org.wins
    channels = [c for c in (team.channel, wins.digest_channel if wins else None) if c]
    title = f"{team.name} highlights"
    text = render_digest(runtime, cycle, title, items, show_team=True, curated=curated)
    publish(session, runtime, cycle, team_id, ORG, channels, text, items, curated=curated)
    if team.parent is not None:
        open_ready(session, runtime, cycle)
    elif curated:
        publish_stakeholders(session, runtime, cycle, team_id, items)


def stakeholder_items(items: list[Item]) -> list[Item]:
    """Internal challenges never leave the platform org, whatever anyone selected."""
    return [i for i in items if not i.internal]


def publish_stakeholders(
    session: Session, runtime: Runtime, cycle: WinsCycle, team_id: str, items: list[Item]
) -> None:
    org = runtime.org
    wins = org.wins
    assert wins is not None
    team = org.team(team_id)
    now = runtime.clock.now()
    shared = stakeholder_items(items)
    title = team.name
    if wins.stakeholder_channel:
        text = render_digest(runtime, cycle, title, shared, show_team=True, mark_internal=False)
        publish(
            session, runtime, cycle, team_id, STAKEHOLDERS, [wins.stakeholder_channel], text, shared
        )
    if wins.stakeholder_emails:
        plain, html = render_mail(runtime, cycle, title, shared)
        mail.queue(
            session,
            now,
            key=f"wins:mail:{cycle.number}:{team_id}",
            to=list(wins.stakeholder_emails),
            subject=f"{team.name}: Wins and Challenges for {cycle_text(runtime, cycle)}",
            text=plain,
            html=html,
        )
    _close_cycle(session, runtime, cycle, team_id)


def _close_cycle(session: Session, runtime: Runtime, cycle: WinsCycle, top_team: str) -> None:
    """The closing note: participation counts in the digest channel (no names), the names for
    the top manager only."""
    org = runtime.org
    now = runtime.clock.now()
    cycle.state = PUBLISHED
    cycle.published_at = now
    session.add(cycle)
    rows = participation(session, runtime, cycle, under=top_team)
    wins = org.wins
    if wins and wins.digest_channel:
        note = participation_counts_text(rows, cycle_text(runtime, cycle))
        outbox.post(
            session, f"wins:closing:{cycle.number}:{top_team}", wins.digest_channel, note, now
        )
    names = participation_names_text(org, rows, cycle_text(runtime, cycle))
    for person in responsible(session, runtime, cycle, top_team):
        outbox.post(
            session, f"wins:participation:{cycle.number}:{top_team}:{person}", person, names, now
        )


def on_selection_due(session: Session, runtime: Runtime, ref: str) -> None:
    cycle_id, _, team_id = ref.partition(":")
    miss(session, runtime, int(cycle_id), team_id)


def waiting_for(
    session: Session, runtime: Runtime, user: str, now: datetime
) -> list[tuple[WinsSelection, WinsCycle]]:
    """Open selections this person makes (App Home)."""
    rows = session.exec(
        select(WinsSelection, WinsCycle)
        .where(WinsSelection.cycle_id == WinsCycle.id)
        .where(col(WinsSelection.state).in_([PENDING, MISSED]))
        .where(WinsCycle.state != PUBLISHED)
    ).all()
    found = []
    for chosen, cycle in rows:
        team = runtime.org.team(chosen.team_id)
        if chosen.state == MISSED and team.parent is not None:
            continue
        if user in responsible(session, runtime, cycle, chosen.team_id):
            found.append((chosen, cycle))
    return found
