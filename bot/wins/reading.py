"""Reading Wins and Challenges: `/wins view` for managers and skip managers, `/wins archive`, and
what App Home shows (your pending submission, selections waiting for you, your latest digest)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.errors import NotAllowed
from bot.mrkdwn import escape, split_lines
from bot.runtime import Runtime
from bot.wins import entries, reports, selection, tree
from bot.wins.digests import (
    ORG,
    TEAM,
    deadline_text,
    get_digest,
    level_items,
    render_digest,
    team_items,
)

HOME_DIGEST_LIMIT = 2900  # one App Home section


def view_text(session: Session, runtime: Runtime, user: str, team_id: str | None) -> str:
    """Every entry of the team and the teams below it for the latest closed cycle (or the one
    collecting), then the top level's highlights: skip managers read across their managers."""
    org = runtime.org
    if team_id is None:
        managed = [t for t in org.teams if entries.is_manager(session, runtime, user, t)]
        if not managed:
            raise NotAllowed("`/wins view` is for managers and skip managers.")
        team_id = managed[0].id
    org.team(team_id)  # UnknownTeam for a typo
    if not entries.can_read(session, runtime, user, team_id):
        raise NotAllowed("You can read the entries of your own team and of the teams below you.")
    current = entries.current_cycle(session, runtime)
    closed = entries.latest_closed(session)
    texts = []
    teams = [t for t in [org.team(team_id), *tree.descendants(org, team_id)] if t.members]
    # What is being written now, then the last closed cycle and its top highlights.
    for cycle, label in ((current, "so far"), (closed, None)):
        if cycle is None:
            continue
        for team in teams:
            items = team_items(session, runtime, cycle.id or 0, team.id)
            if label and not items:
                continue
            title = f"{team.name} ({label})" if label else team.name
            texts.append(render_digest(runtime, cycle, title, items, show_team=False))
    top = tree.root_of(org, team_id)
    if closed is not None and get_digest(session, closed.id or 0, top.id, ORG) is not None:
        items = level_items(session, runtime, closed.id or 0, top.id)
        texts.append(
            render_digest(runtime, closed, f"{top.name} highlights", items, show_team=True)
        )
    return "\n\n".join(texts) or "Nothing written yet."


def archive_text(session: Session, runtime: Runtime, team_id: str | None, quarter: str) -> str:
    org = runtime.org
    if team_id is not None:
        org.team(team_id)
    title = f"*Wins and Challenges digests, {quarter}*"
    if team_id:
        title += f" · {escape(org.team(team_id).name)}"
    lines = [title]
    for digest, cycle in reports.archive(session, org, team_id, quarter):
        kind = "team digest" if digest.audience == TEAM else "highlights"
        if not digest.curated:
            kind += " (not curated)"
        lines.append(
            f"• {escape(deadline_text(runtime, cycle))} · {escape(org.team(digest.team_id).name)}"
            f" · {kind}: {digest.wins} wins, {digest.challenges} challenges"
        )
    if len(lines) == 1:
        lines.append("No digests yet.")
    return "\n".join(lines)


def home_parts(session: Session, runtime: Runtime, user: str, now: datetime) -> dict[str, Any]:
    """What `blocks.home_section` lays out for this person."""
    org = runtime.org
    cycle = entries.current_cycle(session, runtime)
    pending = []
    for team in entries.teams_for(session, runtime, user, cycle):
        if not entries.can_write(session, runtime, user, cycle, team.id):
            continue
        target = entries.target_cycle(session, runtime, team.id)
        submitted = entries.submission(session, target.id or 0, team.id) is not None
        pending.append((team.id, team.name, target, submitted, org.zone(team.id)))
    waiting = [
        (
            chosen.team_id,
            org.team(chosen.team_id).name,
            cyc,
            chosen.due_at,
            org.zone(chosen.team_id),
        )
        for chosen, cyc in selection.waiting_for(session, runtime, user, now)
    ]
    latest = []
    closed = entries.latest_closed(session)
    mine = [
        t
        for t in tree.line_teams(org)
        if entries.is_manager(session, runtime, user, t) or entries.is_member(runtime, user, t)
    ]
    if closed is not None:
        for team in mine[:2]:
            if get_digest(session, closed.id or 0, team.id, TEAM) is None:
                continue
            items = team_items(session, runtime, closed.id or 0, team.id)
            chunks = split_lines(
                render_digest(runtime, closed, team.name, items, show_team=False),
                HOME_DIGEST_LIMIT,
            )
            text = chunks[0]
            if len(chunks) > 1:
                text += "\n_…the rest is in the team channel._"
            latest.append((team.name, text))
    return {"pending": pending, "selections": waiting, "latest": latest}
