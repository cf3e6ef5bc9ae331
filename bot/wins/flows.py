"""What follows a change to an entry: the writer's confirmation, the line manager's proposal
card, and the team digest updated in place when it is already out."""

from __future__ import annotations

from sqlmodel import Session

from bot import outbox
from bot.config import Team
from bot.mrkdwn import escape
from bot.runtime import Runtime
from bot.wins import blocks, tree
from bot.wins.digests import cycle_text, refresh_team_digest
from bot.wins.entries import Saved, get_cycle, responsible, selection
from bot.wins.models import ACCEPTED, PENDING, WinsCycle, WinsEntry


def after_save(session: Session, runtime: Runtime, user: str, saved: Saved) -> None:
    entry = saved.entry
    org = runtime.org
    now = runtime.clock.now()
    stamp = int(now.timestamp() * 1000)
    cycle = get_cycle(session, entry.cycle_id)
    if saved.proposed and saved.created:
        text, kit = blocks.proposal_card(entry, org)
        for person in responsible(session, runtime, cycle, entry.team_id):
            outbox.post(
                session, f"wins:proposal:{entry.id}:{person}", person, text, now, blocks=kit
            )
        headline = "Proposed to your line manager, who decides what goes into the team's update:"
    elif saved.created:
        headline = f"Saved for *{escape(org.team(entry.team_id).name)}*:"
    else:
        headline = "Updated:"
    if saved.kept_warnings_note:
        headline += f"\n_{escape(saved.kept_warnings_note)}_"
    outbox.post(
        session,
        f"wins:saved:{entry.id}:{stamp}",
        user,
        headline.replace("*", ""),
        now,
        blocks=blocks.entry_card(entry, org, headline),
    )
    if not saved.proposed:
        refresh_team_digest(session, runtime, cycle, entry.team_id)


def after_change(session: Session, runtime: Runtime, entry: WinsEntry) -> None:
    """A deletion, or a proposal taken in: the digest follows if it is out."""
    refresh_team_digest(session, runtime, get_cycle(session, entry.cycle_id), entry.team_id)


def refresh_after_submission(
    session: Session, runtime: Runtime, cycle: WinsCycle, team_id: str
) -> None:
    refresh_team_digest(session, runtime, cycle, team_id)


def after_decision(session: Session, runtime: Runtime, entry: WinsEntry, by: str) -> None:
    """Tell the engineer what became of their proposal; the digest follows if it is out."""
    now = runtime.clock.now()
    team = runtime.org.team(entry.team_id).name
    if entry.status == ACCEPTED:
        text = (
            f"<@{by}> included your entry “{escape(entry.summary)}” in *{escape(team)}*'s update."
        )
    else:
        text = f"<@{by}> left your entry “{escape(entry.summary)}” out of *{escape(team)}*'s update this time."
    outbox.post(session, f"wins:decided:{entry.id}", entry.author, text, now)
    if entry.status == ACCEPTED:
        after_change(session, runtime, entry)


def announce_delegation(
    session: Session,
    runtime: Runtime,
    delegated: list[tuple[Team, WinsCycle]],
    manager: str,
    delegate: str,
) -> None:
    now = runtime.clock.now()
    for team, cycle in delegated:
        text = (
            f"<@{manager}> is away and asked you to stand in for *{escape(team.name)}* in Wins "
            f"and Challenges for {escape(cycle_text(runtime, cycle))}: you get the reminders, "
            "write the update and choose highlights in their place."
        )
        buttons = []
        if tree.is_line_team(team):
            buttons.append(
                blocks.button(
                    "Write an entry", "wins.open", blocks.form_value(cycle, team.id), "primary"
                )
            )
        chosen = selection(session, cycle.id or 0, team.id)
        if chosen is not None and chosen.state == PENDING:
            buttons.append(
                blocks.button("Choose highlights", "wins.select", blocks.form_value(cycle, team.id))
            )
        kit = [blocks.section(text)]
        if buttons:
            kit.append(blocks.actions(*buttons, block_id="wins_delegated"))
        key = f"wins:delegated:{cycle.number}:{team.id}:{delegate}:{int(now.timestamp())}"
        outbox.post(session, key, delegate, text, now, blocks=kit)
