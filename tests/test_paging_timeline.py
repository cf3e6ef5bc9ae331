"""A long page timeline keeps its newest lines and says how many older ones were left out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.paging.blocks import page_blocks, timeline_text
from bot.paging.models import Page, PageEvent
from tests.harness import check_blocks

NY = ZoneInfo("America/New_York")
OPENED = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)  # 03:00 in New York


def events(count: int) -> list[PageEvent]:
    return [
        PageEvent(
            page_id=1,
            at=OPENED + timedelta(minutes=n),
            kind="notified" if n % 2 else "escalated",
            actor=f"U0ENG{n % 100:05d}",
            detail=f"step {n % 3 + 1}, rotation:infra-oncall; repeat {n}",
        )
        for n in range(count)
    ]


def test_a_short_timeline_is_shown_whole():
    text = timeline_text(events(5), NY)
    assert text.count("\n•") == 5 and "not shown" not in text


def test_a_long_timeline_keeps_the_newest_events_and_counts_the_rest():
    many = events(300)
    text = timeline_text(many, NY)
    assert len(text) <= 3000
    assert "repeat 299" in text  # the newest is there
    assert "repeat 0\n" not in text  # the oldest is not
    shown = text.count("\n•")
    assert f"_… {300 - shown} earlier entries not shown_" in text
    # Nothing cut in the middle: every shown line is whole, with its date token closed.
    for line in text.split("\n")[2:]:
        assert line.startswith("• <!date^") and line.count("<") == line.count(">")


def test_exactly_at_the_limit_nothing_is_left_out():
    few = events(3)
    full = timeline_text(few, NY, limit=10_000)
    assert timeline_text(few, NY, limit=len(full)) == full
    assert "1 earlier entry not shown" in timeline_text(few, NY, limit=len(full) - 1)


def test_a_page_with_hundreds_of_events_is_valid_block_kit():
    page = Page(
        id=1,
        summary="Checkout 502s",
        source="alertmanager",
        policy_id="infra-default",
        policy={"id": "infra-default", "steps": [{"notify": "rotation:infra-oncall", "after": 0}]},
        position=0,
        opened_at=OPENED,
        last_alert_at=OPENED,
    )
    check_blocks(page_blocks(page, events(500), NY))
