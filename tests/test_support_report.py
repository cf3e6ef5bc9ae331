"""The support report aggregates what the book says to look at, from ticket facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.support.report import OperationalLoad, TicketFacts, build_report

MONDAY = datetime(2026, 11, 16, 5, 0, tzinfo=UTC)
NEXT_MONDAY = MONDAY + timedelta(weeks=1)


def at(hours: float) -> datetime:
    return MONDAY + timedelta(hours=hours)


def facts(number: int, category: str | None = "how_to", **kwargs) -> TicketFacts:
    kwargs.setdefault("opened_at", at(number))
    kwargs.setdefault("severity", "normal")
    return TicketFacts(number=number, category=category, **kwargs)


def test_counts_by_category_and_severity_and_flags_categories_above_the_threshold():
    tickets = [facts(n, "how_to") for n in range(1, 5)]  # 4 how-to questions in a week
    tickets += [facts(10, "bug", severity="high"), facts(11, None)]
    report = build_report("q", tickets, MONDAY, NEXT_MONDAY, threshold=3)
    assert report.total == 6
    assert report.by_category == {"how_to": 4, "bug": 1, "uncategorised": 1}
    assert report.by_severity == {"normal": 5, "high": 1}
    assert report.investigate == ["how_to"]


def test_exactly_the_threshold_is_not_flagged_and_weeks_average_the_count():
    three = [facts(n) for n in range(1, 4)]
    assert build_report("q", three, MONDAY, NEXT_MONDAY, threshold=3).investigate == []
    seven_in_two_weeks = [facts(n, opened_at=at(n * 20)) for n in range(1, 8)]
    two_weeks = build_report("q", seven_in_two_weeks, MONDAY, MONDAY + timedelta(weeks=2))
    assert two_weeks.weeks == 2 and two_weeks.investigate == ["how_to"]


def test_sla_attainment_counts_only_decided_tickets():
    tickets = [
        facts(1, resolved_at=at(5)),
        facts(2, resolved_at=at(30), resolution_breached=True),
        facts(3, first_response_breached=True),  # open, already missed
        facts(4),  # open, not yet decided
        facts(5, "office_hours", has_sla=False, resolved_at=at(40)),
    ]
    report = build_report("q", tickets, MONDAY, NEXT_MONDAY)
    assert (report.sla_met, report.sla_decided) == (1, 3)
    assert report.sla_attainment == 1 / 3


def test_medians_satisfaction_and_docs_share():
    tickets = [
        facts(1, opened_at=at(0), first_response_at=at(1), resolved_at=at(2), rating=5),
        facts(2, opened_at=at(0), first_response_at=at(3), resolved_at=at(10), rating=3),
        facts(
            3, opened_at=at(0), first_response_at=at(5), answered_by_docs=True, resolved_at=at(1)
        ),
        facts(4, opened_at=at(0)),
    ]
    report = build_report("q", tickets, MONDAY, NEXT_MONDAY)
    assert report.median_first_response == timedelta(hours=3)
    assert report.median_resolution == timedelta(hours=2)
    assert report.satisfaction == 4.0 and report.ratings == 2
    assert report.docs_share == 0.25


def test_still_open_at_the_end_of_the_week_includes_older_and_reopened_tickets():
    before = MONDAY - timedelta(days=3)
    tickets = [
        facts(1, opened_at=before),  # from last week, never resolved
        facts(2, resolved_at=at(10), lifecycle=((at(10), "resolved"),)),
        facts(3, lifecycle=((at(10), "resolved"), (at(20), "reopened"))),
        # resolved only after the week ended: open at the end of the week
        facts(
            4,
            resolved_at=NEXT_MONDAY + timedelta(hours=1),
            lifecycle=((NEXT_MONDAY + timedelta(hours=1), "resolved"),),
        ),
        facts(5, opened_at=NEXT_MONDAY + timedelta(hours=2)),  # after the week
    ]
    report = build_report("q", tickets, MONDAY, NEXT_MONDAY)
    assert report.still_open == [1, 3, 4]
    assert report.total == 3


def test_operational_load_above_half_is_over_the_books_limit():
    assert not OperationalLoad(team_size=5, oncall=0.2, support=0.2).over_limit
    heavy = OperationalLoad(team_size=3, oncall=1 / 3, support=1 / 3)
    assert heavy.combined > 0.5 and heavy.over_limit
