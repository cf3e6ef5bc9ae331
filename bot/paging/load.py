"""Pager load, in the book's numbers: business-impacting pages per week per rotation and per person
(under 2 healthy, 2 to 5 strained, over 5 unsustainable: restore stability), with off-hours pages,
false alarms and fall-through to the secondary shown separately."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlmodel import Session, col, select

from bot.config import OrgConfig
from bot.paging.escalation import OPEN_STATUSES
from bot.paging.models import BUSINESS_IMPACTING, DEPLOY_NOISE, FALSE_ALARM, Page

HEALTHY, STRAINED, UNSUSTAINABLE = "healthy", "strained", "unsustainable"
WEEK = timedelta(weeks=1)
DEFAULT_WEEKS = 4


def level(pages_per_week: float) -> str:
    if pages_per_week < 2:
        return HEALTHY
    if pages_per_week <= 5:
        return STRAINED
    return UNSUSTAINABLE


@dataclass(frozen=True)
class PageCounts:
    pages: int = 0
    business_impacting: int = 0  # classified so by the responder
    false_alarms: int = 0
    deploy_noise: int = 0
    unclassified: int = 0
    off_hours: int = 0
    fell_through: int = 0

    @property
    def counted(self) -> int:
        """What the thresholds count: business-impacting pages, and unclassified ones until
        someone says otherwise (an unclassified page must not make the load look lighter)."""
        return self.business_impacting + self.unclassified

    @classmethod
    def of(cls, pages: Iterable[PageFacts]) -> PageCounts:
        pages = list(pages)
        return cls(
            pages=len(pages),
            business_impacting=sum(p.classification == BUSINESS_IMPACTING for p in pages),
            false_alarms=sum(p.classification == FALSE_ALARM for p in pages),
            deploy_noise=sum(p.classification == DEPLOY_NOISE for p in pages),
            unclassified=sum(p.classification is None for p in pages),
            off_hours=sum(p.off_hours for p in pages),
            fell_through=sum(p.fell_through for p in pages),
        )


@dataclass(frozen=True)
class WeekLoad:
    start: datetime
    end: datetime
    counts: PageCounts

    @property
    def level(self) -> str:
        return level(self.counts.counted)


@dataclass(frozen=True)
class PersonLoad:
    person: str
    counts: PageCounts
    weeks_on_call: float  # within the window
    per_week: float  # counted pages per week of their own on-call time (at least one week)

    @property
    def level(self) -> str:
        return level(self.per_week)


@dataclass(frozen=True)
class LoadReport:
    rotation_id: str
    start: datetime
    end: datetime
    weeks: list[WeekLoad]  # oldest first; each the 7 days ending at the next
    totals: PageCounts
    people: list[PersonLoad] = field(default_factory=list)

    @property
    def per_week(self) -> float:
        return self.totals.counted / len(self.weeks) if self.weeks else 0.0

    @property
    def level(self) -> str:
        return level(self.per_week)

    @property
    def restore_stability(self) -> bool:
        return self.level == UNSUSTAINABLE

    @property
    def fall_through_rate(self) -> float:
        return self.totals.fell_through / self.totals.pages if self.totals.pages else 0.0

    @property
    def off_hours_rate(self) -> float:
        return self.totals.off_hours / self.totals.pages if self.totals.pages else 0.0


def pages_of(session: Session, rotation_id: str, start: datetime, end: datetime) -> list[Page]:
    return list(
        session.exec(
            select(Page)
            .where(Page.rotation_id == rotation_id)
            .where(Page.opened_at >= start)
            .where(Page.opened_at < end)
            .order_by(col(Page.opened_at))
        ).all()
    )


class PageFacts(Protocol):
    """What the load figures read of a page (a `Page`, or a row of just these columns)."""

    opened_at: datetime
    primary_user: str | None
    classification: str | None
    off_hours: bool
    fell_through: bool


def _facts_of(session: Session, rotation_id: str, start: datetime, end: datetime) -> list[Any]:
    """The load's columns of the rotation's pages opened in [start, end): rows, not whole pages
    (a year of a busy rotation is tens of thousands of pages)."""
    return list(
        session.exec(
            select(
                Page.opened_at,
                Page.primary_user,
                Page.classification,
                Page.off_hours,
                Page.fell_through,
            )
            .where(Page.rotation_id == rotation_id)
            .where(Page.opened_at >= start)
            .where(Page.opened_at < end)
            .order_by(col(Page.opened_at))
        ).all()
    )


def weekly_load(
    session: Session,
    org: OrgConfig,
    rotation_id: str,
    now: datetime,
    weeks: int = DEFAULT_WEEKS,
) -> LoadReport:
    """The rotation's pager load over the `weeks` weeks ending now, week by week and per person."""
    org.rotation(rotation_id)  # UnknownRotation for a typo
    weeks = max(1, weeks)
    start = now - weeks * WEEK
    # Up to and including now: a page that has just opened counts.
    pages = _facts_of(session, rotation_id, start, now + timedelta(microseconds=1))
    buckets: list[list[PageFacts]] = [[] for _ in range(weeks)]
    for page in pages:
        buckets[min(int((page.opened_at - start) / WEEK), weeks - 1)].append(page)
    week_loads = [
        WeekLoad(start + i * WEEK, start + (i + 1) * WEEK, PageCounts.of(bucket))
        for i, bucket in enumerate(buckets)
    ]
    on_call = _on_call_weeks(session, org, rotation_id, now, weeks * WEEK)
    by_person: dict[str, list[PageFacts]] = {}  # one pass, not one per person
    for page in pages:
        if page.primary_user:
            by_person.setdefault(page.primary_user, []).append(page)
    people = []
    for who in sorted(set(by_person) | set(on_call)):
        counts = PageCounts.of(by_person.get(who, []))
        weeks_on = on_call.get(who, 0.0)
        people.append(PersonLoad(who, counts, weeks_on, counts.counted / max(weeks_on, 1.0)))
    people.sort(key=lambda p: (-p.per_week, p.person))
    return LoadReport(rotation_id, start, now, week_loads, PageCounts.of(pages), people)


def _on_call_weeks(
    session: Session, org: OrgConfig, rotation_id: str, now: datetime, window: timedelta
) -> dict[str, float]:
    """Each person's on-call time in the window, in weeks, from on-call's own accounting (keyed
    by config reference, as `Page.primary_user` is)."""
    from bot.oncall.service import load as on_call_load

    return {
        row.person: row.on_call / WEEK
        for row in on_call_load(session, org, rotation_id, now, window)
    }


# ---- providers for on-call's handoff report -------------------------------------------------


def shift_figures(session: Session, rotation_id: str, start: datetime, end: datetime) -> PageCounts:
    """Pages of a shift: `pages`, `business_impacting`, `false_alarms`, `off_hours` (and more)."""
    return PageCounts.of(pages_of(session, rotation_id, start, end))


def open_pages(session: Session, rotation_id: str) -> list[Page]:
    """The rotation's pages still open (each has `summary` and `opened_at`), oldest first."""
    return list(
        session.exec(
            select(Page)
            .where(Page.rotation_id == rotation_id)
            .where(col(Page.status).in_(OPEN_STATUSES))
            .order_by(col(Page.opened_at))
        ).all()
    )
