"""Which queued page notifications are still worth sending (the outbox asks before sending)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from bot.outbox import OutboxMessage
from bot.paging.models import Page


def unneeded_page_dms(session: Session, rows: list[OutboxMessage]) -> list[int]:
    """A DM paging someone is useless once its page is resolved (e.g. after a Slack outage).

    Edits of DMs already sent, and the channel post, still go: they show how the page ended.
    """
    by_page: dict[int, list[int]] = {}
    for row in rows:
        parts = row.key.split(":")
        is_dm = len(parts) > 2 and parts[2] == "dm" and parts[1].isdigit()
        if is_dm and row.method == "chat.postMessage" and row.id is not None:
            by_page.setdefault(int(parts[1]), []).append(row.id)
    if not by_page:
        return []
    resolved = session.exec(
        select(Page.id).where(col(Page.id).in_(by_page)).where(Page.status == "resolved")
    ).all()
    return [row_id for page_id in resolved if page_id is not None for row_id in by_page[page_id]]
