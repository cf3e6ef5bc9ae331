"""Digests: a level's items (a line team's entries, a parent's highlights), rendered from the
templates and posted to Slack in as many messages as it takes (split, never cut); a digest that
changes after posting is updated in place."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from bot import outbox
from bot.mrkdwn import split_lines
from bot.rendering import Mrkdwn, render, render_html, render_text
from bot.runtime import Runtime
from bot.wins import tree
from bot.wins.cycles import period_text
from bot.wins.entries import entries_of, internal_only, submission
from bot.wins.models import WIN, WinsCycle, WinsDigest, WinsEntry, WinsHighlight

SECTION_LIMIT = 3000  # Slack's limit for a section's text
SECTIONS_PER_MESSAGE = 10
TEAM, ORG, STAKEHOLDERS = "team", "org", "stakeholders"


@dataclass(frozen=True)
class Item:
    entry_id: int
    from_team: str
    from_team_name: str
    kind: str
    summary: str
    situation: str
    action: str
    result: str
    internal: bool
    uncurated: bool = False
    kept_warnings: tuple[str, ...] = field(default=())

    @property
    def story(self) -> str:
        """Situation, action and result as one paragraph (a digest bullet is one block)."""
        parts = (self.situation, self.action, self.result)
        return " ".join(re.sub(r"\s+", " ", p).strip() for p in parts if p.strip())


def _item(org: Any, entry: WinsEntry, source: WinsHighlight | None = None) -> Item:
    text = source or entry
    return Item(
        entry_id=entry.id or 0,
        from_team=entry.team_id,
        from_team_name=org.team(entry.team_id).name,
        kind=text.kind,
        summary=text.summary,
        situation=text.situation,
        action=text.action,
        result=text.result,
        internal=internal_only(entry),
        uncurated=source is not None and not source.curated,
        kept_warnings=tuple(entry.kept_warnings or ()),
    )


def team_items(session: Session, runtime: Runtime, cycle_id: int, team_id: str) -> list[Item]:
    return [_item(runtime.org, e) for e in entries_of(session, cycle_id, team_id)]


def highlights_of(session: Session, cycle_id: int, team_id: str) -> list[WinsHighlight]:
    return list(
        session.exec(
            select(WinsHighlight)
            .where(WinsHighlight.cycle_id == cycle_id, WinsHighlight.team_id == team_id)
            .order_by(col(WinsHighlight.position), col(WinsHighlight.id))
        ).all()
    )


def level_items(session: Session, runtime: Runtime, cycle_id: int, team_id: str) -> list[Item]:
    """A parent level's digest: the highlights chosen (or passed up uncurated) for it."""
    items = []
    for highlight in highlights_of(session, cycle_id, team_id):
        entry = session.get(WinsEntry, highlight.entry_id)
        if entry is not None:
            items.append(_item(runtime.org, entry, highlight))
    return items


def candidates(session: Session, runtime: Runtime, cycle_id: int, team_id: str) -> list[Item]:
    """What a parent's manager chooses from: its own team's entries and each child's digest."""
    org = runtime.org
    team = org.team(team_id)
    found = team_items(session, runtime, cycle_id, team_id) if tree.is_line_team(team) else []
    for child in tree.children(org, team_id):
        if tree.selects(org, child):
            found += level_items(session, runtime, cycle_id, child.id)
        elif tree.is_line_team(child):
            found += team_items(session, runtime, cycle_id, child.id)
    return found


# ---- rendering --------------------------------------------------------------------------------


def deadline_text(runtime: Runtime, cycle: WinsCycle) -> str:
    zone = runtime.org.zone()
    return cycle.deadline.astimezone(zone).strftime("%a %d %b %Y")


def cycle_text(runtime: Runtime, cycle: WinsCycle) -> str:
    """ "the two weeks to Wed 25 Nov 2026" (the span a cycle covers, in the org's words)."""
    return f"the {period_text(runtime.org)} to {deadline_text(runtime, cycle)}"


def _context(
    runtime: Runtime,
    cycle: WinsCycle,
    title: str,
    items: list[Item],
    *,
    show_team: bool,
    curated: bool = True,
    mark_internal: bool = True,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "title": title,
        "subtitle": cycle_text(runtime, cycle)[0].upper() + cycle_text(runtime, cycle)[1:],
        "wins": [i for i in items if i.kind == WIN],
        "challenges": [i for i in items if i.kind != WIN],
        "show_team": show_team,
        "curated": curated,
        "mark_internal": mark_internal,
        "notes": notes or [],
    }


def render_digest(
    runtime: Runtime, cycle: WinsCycle, title: str, items: list[Item], **kw: Any
) -> str:
    return render("wins_digest.md.j2", **_context(runtime, cycle, title, items, **kw))


def render_mail(
    runtime: Runtime, cycle: WinsCycle, title: str, items: list[Item]
) -> tuple[str, str]:
    """(plain text, HTML) of a stakeholder digest."""
    context = _context(runtime, cycle, title, items, show_team=True, mark_internal=False)
    return render_text("wins_digest.txt.j2", **context), render_html(
        "wins_digest.html.j2", **context
    )


def messages_of(text: str) -> list[dict[str, Any]]:
    """The digest as Slack messages: sections of at most 3,000 characters split between lines,
    ten sections a message; the first line is each message's notification text."""
    sections = split_lines(text, SECTION_LIMIT)
    messages = []
    for start in range(0, len(sections), SECTIONS_PER_MESSAGE):
        chunk = sections[start : start + SECTIONS_PER_MESSAGE]
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": s}} for s in chunk]
        first = chunk[0].splitlines()[0] if chunk[0] else "Wins and Challenges"
        if start:
            first = "(continued) " + first
        messages.append({"text": first[:300], "blocks": blocks})
    return messages


# ---- posting ----------------------------------------------------------------------------------


def get_digest(session: Session, cycle_id: int, team_id: str, audience: str) -> WinsDigest | None:
    return session.exec(
        select(WinsDigest).where(
            WinsDigest.cycle_id == cycle_id,
            WinsDigest.team_id == team_id,
            WinsDigest.audience == audience,
        )
    ).first()


def publish(
    session: Session,
    runtime: Runtime,
    cycle: WinsCycle,
    team_id: str,
    audience: str,
    channels: list[str],
    text: str,
    items: list[Item],
    *,
    curated: bool = True,
) -> WinsDigest:
    """Post the digest to each channel, or update the messages already posted in place."""
    now = runtime.clock.now()
    messages = messages_of(text)
    digest = get_digest(session, cycle.id or 0, team_id, audience)
    if digest is None:
        digest = WinsDigest(
            cycle_id=cycle.id or 0,
            team_id=team_id,
            audience=audience,
            posted_at=now,
            updated_at=now,
        )
    posted: dict[str, list[str]] = {c: list(k) for c, k in (digest.messages or {}).items()}
    stamp = int(now.timestamp() * 1000)
    for channel in dict.fromkeys(c for c in channels if c):
        keys = posted.setdefault(channel, [])
        for index, message in enumerate(messages):
            if index < len(keys):
                outbox.update_message(
                    session,
                    f"{keys[index]}:edit:{stamp}",
                    keys[index],
                    message["text"],
                    now,
                    blocks=message["blocks"],
                )
            else:
                key = f"wins:digest:{cycle.number}:{team_id}:{audience}:{channel}:{index}"
                outbox.post(session, key, channel, message["text"], now, blocks=message["blocks"])
                keys.append(key)
        for key in keys[len(messages) :]:
            # A shorter digest than before: the extra message says so rather than vanish.
            outbox.update_message(
                session,
                f"{key}:edit:{stamp}",
                key,
                "(the rest of this digest moved up)",
                now,
                blocks=[
                    {
                        "type": "context",
                        "elements": [
                            {"type": "mrkdwn", "text": "_(the rest of this digest moved up)_"}
                        ],
                    }
                ],
            )
    digest.messages = posted
    digest.updated_at = now
    digest.wins = sum(1 for i in items if i.kind == WIN)
    digest.challenges = sum(1 for i in items if i.kind != WIN)
    digest.curated = curated
    session.add(digest)
    session.flush()
    return digest


def team_digest_channels(runtime: Runtime, team_id: str) -> list[str]:
    team = runtime.org.team(team_id)
    wins = runtime.org.wins
    return [c for c in (team.channel, wins.digest_channel if wins else None) if c]


def post_team_digest(
    session: Session, runtime: Runtime, cycle: WinsCycle, team_id: str
) -> WinsDigest:
    """A line team's entries become its digest (posted at the deadline, updated after)."""
    team = runtime.org.team(team_id)
    items = team_items(session, runtime, cycle.id or 0, team_id)
    notes = []
    submitted = submission(session, cycle.id or 0, team_id)
    if submitted is None:
        notes.append("No update from this team yet; this digest is updated when it comes in.")
    elif submitted.no_update and not items:
        notes.append("No update this cycle.")
    text = render_digest(runtime, cycle, team.name, items, show_team=False, notes=notes)
    return publish(
        session, runtime, cycle, team_id, TEAM, team_digest_channels(runtime, team_id), text, items
    )


def refresh_team_digest(session: Session, runtime: Runtime, cycle: WinsCycle, team_id: str) -> bool:
    """After an edit: if the team's digest is out, update it in place."""
    if get_digest(session, cycle.id or 0, team_id, TEAM) is None:
        return False
    post_team_digest(session, runtime, cycle, team_id)
    return True


def mention(user_id: str) -> Mrkdwn:
    return Mrkdwn(f"<@{user_id}>")


def digests_between(
    session: Session, team_id: str | None, start: datetime, end: datetime
) -> list[tuple[WinsDigest, WinsCycle]]:
    query = (
        select(WinsDigest, WinsCycle)
        .where(WinsDigest.cycle_id == WinsCycle.id)
        .where(WinsCycle.deadline >= start, WinsCycle.deadline < end)
        .order_by(col(WinsCycle.number), col(WinsDigest.team_id))
    )
    if team_id is not None:
        query = query.where(WinsDigest.team_id == team_id)
    return [(d, c) for d, c in session.exec(query).all()]
