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


def _median(values: Sequence[timedelta]) -> timedelta | None:
    if not values:
        return None
    return timedelta(seconds=statistics.median(v.total_seconds() for v in values))


def build_report(
    queue_id: str,
    facts: Sequence[TicketFacts],
    start: datetime,
    end: datetime,
    *,
    threshold: int = 3,
    load: OperationalLoad | None = None,
) -> SupportReport:
    """Tickets opened in [start, end), plus every ticket still open at `end`."""
    weeks = max(1, round((end - start) / timedelta(weeks=1)))
    opened = [f for f in facts if start <= f.opened_at < end]
    by_category = Counter(f.category or UNCATEGORISED for f in opened)
    by_severity = Counter(f.severity for f in opened)
    decided = [f for f in opened if f.sla_decided]
    ratings = [f.rating for f in opened if f.rating is not None]
    first_responses = [
        f.first_response_at - f.opened_at for f in opened if f.first_response_at is not None
    ]
    resolutions = [
        f.resolved_at - f.opened_at
        for f in opened
        if f.resolved_at is not None and f.resolved_at < end
    ]
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
        total=len(opened),
        by_category=dict(by_category.most_common()),
        by_severity=dict(by_severity),
        sla_met=sum(1 for f in decided if not f.breached),
        sla_decided=len(decided),
        median_first_response=_median(first_responses),
        median_resolution=_median(resolutions),
        satisfaction=(sum(ratings) / len(ratings)) if ratings else None,
        ratings=len(ratings),
        answered_by_docs=sum(1 for f in opened if f.answered_by_docs),
        still_open=sorted(f.number for f in facts if f.open_at(end)),
        investigate=investigate,
        threshold=threshold,
        load=load,
    )
