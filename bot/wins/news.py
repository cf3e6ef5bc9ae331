"""Operations news for the form: figures other capabilities provide, so Wins and Challenges works
without paging or support installed. A provider answers for a team and a span of time; it fills
in the figures it knows and leaves the rest None."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.config import OrgConfig
from bot.wins.models import CHALLENGE, WIN

log = logging.getLogger(__name__)

PROVIDERS_KEY = "wins.news_providers"
# The book's healthy on-call: fewer than 2 business-impacting pages a week.
QUIET_PAGES_PER_WEEK = 2


@dataclass(frozen=True)
class OpsNews:
    pages: int | None = None
    business_impacting: int | None = None
    off_hours: int | None = None
    tickets: int | None = None
    sla_met: int | None = None
    sla_decided: int | None = None

    def merged(self, other: OpsNews) -> OpsNews:
        changes = {}
        for f in fields(self):
            theirs = getattr(other, f.name)
            if theirs is not None:
                mine = getattr(self, f.name)
                changes[f.name] = theirs if mine is None else mine + theirs
        return replace(self, **changes)

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    @property
    def sla_attainment(self) -> float | None:
        if not self.sla_decided or self.sla_met is None:
            return None
        return self.sla_met / self.sla_decided


NewsProvider = Callable[[Session, OrgConfig, str, datetime, datetime], OpsNews]


def register(extras: dict[str, Any], provider: NewsProvider) -> None:
    """Called by a capability's installer: its figures become part of the form's news."""
    extras.setdefault(PROVIDERS_KEY, []).append(provider)


def gather(
    session: Session,
    org: OrgConfig,
    providers: Iterable[NewsProvider],
    team_id: str,
    start: datetime,
    end: datetime,
) -> OpsNews:
    news = OpsNews()
    for provider in providers:
        try:
            # A savepoint, so a provider's failed query leaves the caller's transaction usable.
            with session.begin_nested():
                found = provider(session, org, team_id, start, end)
        except Exception:  # a provider's bug must not take the form down with it
            log.exception(
                "operations news provider %s failed", getattr(provider, "__name__", provider)
            )
            continue
        news = news.merged(found)
    return news


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def news_line(news: OpsNews) -> str | None:
    """One line of figures for the form, or None when no provider knows anything."""
    parts = []
    if news.pages is not None:
        text = _plural(news.pages, "page")
        extra = []
        if news.business_impacting is not None:
            extra.append(f"{news.business_impacting} business-impacting")
        if news.off_hours is not None:
            extra.append(f"{news.off_hours} off hours")
        parts.append(text + (f" ({', '.join(extra)})" if extra else ""))
    if news.tickets is not None:
        text = _plural(news.tickets, "support ticket")
        if news.sla_attainment is not None:
            text += f", SLA met on {news.sla_attainment:.0%} of {news.sla_decided} decided"
        parts.append(text)
    return "; ".join(parts) if parts else None


def news_draft(news: OpsNews, weeks: float) -> dict[str, str]:
    """A starting point for an operations entry: a good stretch of pages is news too."""
    line = news_line(news) or ""
    busy = (news.business_impacting or 0) / max(weeks, 1.0) >= QUIET_PAGES_PER_WEEK or (
        news.sla_attainment is not None and news.sla_attainment < 0.9
    )
    if busy:
        summary = "A rough stretch on call and in support"
        kind = CHALLENGE
    else:
        summary = (
            "A good two weeks of pages" if news.pages is not None else "A steady support queue"
        )
        kind = WIN
    return {
        "kind": kind,
        "summary": summary,
        "situation": f"This cycle: {line}.",
        "action": "",
        "result": "",
    }
