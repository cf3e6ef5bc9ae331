"""The support report: what the book says to look at, aggregated from ticket facts (pure, no I/O)."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# The book: "if the combined operational load gets much above 50%, you are going to have trouble
# putting sufficient time into improving the platform".
OPERATIONAL_LOAD_LIMIT = 0.5
UNCATEGORISED = "uncategorised"


@dataclass(frozen=True)
class TicketFacts:
    number: int
    category: str | None
    severity: str
    opened_at: datetime
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    first_response_breached: bool = False
    resolution_breached: bool = False
    has_sla: bool = True
    rating: int | None = None
    answered_by_docs: bool = False
    # (instant, "resolved" | "reopened"), in order: whether it was open at a given instant.
    lifecycle: tuple[tuple[datetime, str], ...] = ()

    def open_at(self, instant: datetime) -> bool:
        if self.opened_at >= instant:
            return False
        state = "open"
        for at, change in self.lifecycle:
            if at >= instant:
                break
            state = "resolved" if change == "resolved" else "open"
        return state == "open"

    @property
    def sla_decided(self) -> bool:
        """Whether we know yet if the SLA was met: breached, or resolved without a breach."""
        return self.has_sla and (self.breached or self.resolved_at is not None)

    @property
    def breached(self) -> bool:
        return self.first_response_breached or self.resolution_breached


@dataclass(frozen=True)
class OperationalLoad:
    """Share of the team's time spent on on-call and support rotation shifts."""

    team_size: int
    oncall: float
    support: float

    @property
    def combined(self) -> float:
        return self.oncall + self.support

    @property
    def over_limit(self) -> bool:
        return self.combined > OPERATIONAL_LOAD_LIMIT


@dataclass(frozen=True)
class SupportReport:
    queue_id: str
    start: datetime
    end: datetime
    weeks: int
    total: int
    by_category: dict[str, int]
    by_severity: dict[str, int]
    sla_met: int
    sla_decided: int
    median_first_response: timedelta | None
    median_resolution: timedelta | None
    satisfaction: float | None
    ratings: int
    answered_by_docs: int
    still_open: list[int]
    investigate: list[str]
    threshold: int
    load: OperationalLoad | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def sla_attainment(self) -> float | None:
        return self.sla_met / self.sla_decided if self.sla_decided else None

    @property
    def docs_share(self) -> float | None:
        return self.answered_by_docs / self.total if self.total else None


def _median(seconds: Sequence[float]) -> timedelta | None:
    if not seconds:
        return None
    return timedelta(seconds=statistics.median(seconds))


def build_report(
    queue_id: str,
    facts: Sequence[TicketFacts],
    start: datetime,
    end: datetime,
    *,
    threshold: int = 3,
    load: OperationalLoad | None = None,
) -> SupportReport:
    """Tickets opened in [start, end), plus every ticket still open at `end`.

    The reference over ticket facts; the database path (`bot.support.reporting.report`) gets the
    same figures with aggregate SQL and hands them to `assemble_report`.
    """
    opened = [f for f in facts if start <= f.opened_at < end]
    decided = [f for f in opened if f.sla_decided]
    ratings = [f.rating for f in opened if f.rating is not None]
    return assemble_report(
        queue_id,
        start,
        end,
        by_category=Counter(f.category or UNCATEGORISED for f in opened),
        by_severity=Counter(f.severity for f in opened),
        sla_met=sum(1 for f in decided if not f.breached),
        sla_decided=len(decided),
        first_responses=[
            (f.first_response_at - f.opened_at).total_seconds()
            for f in opened
            if f.first_response_at is not None
        ],
        resolutions=[
            (f.resolved_at - f.opened_at).total_seconds()
            for f in opened
            if f.resolved_at is not None and f.resolved_at < end
        ],
        rating_sum=sum(ratings),
        ratings=len(ratings),
        answered_by_docs=sum(1 for f in opened if f.answered_by_docs),
        still_open=[f.number for f in facts if f.open_at(end)],
        threshold=threshold,
        load=load,
    )


def assemble_report(
    queue_id: str,
    start: datetime,
    end: datetime,
    *,
    by_category: Counter[str],
    by_severity: Counter[str],
    sla_met: int,
    sla_decided: int,
    first_responses: Sequence[float],
    resolutions: Sequence[float],
    rating_sum: int,
    ratings: int,
    answered_by_docs: int,
    still_open: Sequence[int],
    threshold: int = 3,
    load: OperationalLoad | None = None,
) -> SupportReport:
    """The report from its aggregates. Counters list their keys in order of first ticket (ties
    in `by_category` keep that order); durations are seconds from opening."""
    weeks = max(1, round((end - start) / timedelta(weeks=1)))
    investigate = sorted(
        category
        for category, count in by_category.items()
        if category != UNCATEGORISED and count / weeks > threshold
    )
    return SupportReport(
        queue_id=queue_id,
        start=start,
        end=end,
        weeks=weeks,
        total=sum(by_category.values()),
        by_category=dict(by_category.most_common()),
        by_severity=dict(by_severity),
        sla_met=sla_met,
        sla_decided=sla_decided,
        median_first_response=_median(first_responses),
        median_resolution=_median(resolutions),
        satisfaction=(rating_sum / ratings) if ratings else None,
        ratings=ratings,
        answered_by_docs=answered_by_docs,
        still_open=sorted(still_open),
        investigate=investigate,
        threshold=threshold,
        load=load,
    )
