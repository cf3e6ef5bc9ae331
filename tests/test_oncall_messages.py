"""The handoff report and the review agenda: the figures, the open items, and user text escaped."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.mrkdwn import user
from bot.oncall import messages
from bot.oncall.service import OnCall, PersonLoad

NY = ZoneInfo("America/New_York")
AT = datetime(2026, 11, 16, 15, 0, tzinfo=UTC)  # Mon 10:00 New York
NOW = AT + timedelta(minutes=1)
HOSTILE = "Heads up <!channel>, read <https://evil.example|click here> & <@U0BOSS>"


@dataclass
class Figures:
    pages: int = 7
    business_impacting: int = 3
    false_alarms: int = 2
    off_hours: int = 4


@dataclass
class Item:
    summary: str = ""
    title: str = ""
    opened_at: datetime = AT - timedelta(hours=5)


def report(**changes) -> tuple[str, list[dict]]:
    arguments = {
        "rotation_id": "infra-oncall",
        "at": AT,
        "zone": NY,
        "outgoing": OnCall("infra-oncall", AT, "U0A01", None, None, None),
        "incoming": OnCall(
            "infra-oncall",
            AT,
            "U0A02",
            "U0B01",
            AT,
            AT + timedelta(weeks=1),
            secondary_rotation_id="data-oncall",
        ),
        "figures": Figures(),
        "open_pages": [Item(summary="disk full on db-1")],
        "open_tickets": [Item(title="VPN broken")],
        "notes": "Watch the *db* failover",
        "notes_author": "U0A01",
        "loads": [
            PersonLoad("U0A01", timedelta(weeks=2), 0.154, timedelta(hours=80), 0.0952),
            PersonLoad("U0A02", timedelta(weeks=2), 0.154, timedelta(hours=70), 0.083),
        ],
        "mention": user,
        "now": NOW,
    }
    return messages.handoff_blocks(**(arguments | changes))


def agenda(**changes) -> tuple[str, list[dict]]:
    arguments = {
        "rotation_id": "infra-oncall",
        "start": AT - timedelta(weeks=1),
        "end": AT,
        "zone": NY,
        "figures": Figures(),
        "open_pages": [Item(summary="disk full on db-1")],
        "open_tickets": [Item(title="VPN broken")],
        "now": NOW,
    }
    return messages.agenda_blocks(**(arguments | changes))


def texts(blocks: list[dict]) -> list[str]:
    """The mrkdwn of each section and context, in order."""
    found = []
    for block in blocks:
        if block["type"] == "section":
            found.append(block["text"]["text"])
        elif block["type"] == "context":
            found += [element["text"] for element in block["elements"]]
    return found


def body(blocks: list[dict]) -> str:
    return "\n".join(texts(blocks))


def test_the_handoff_report_keeps_its_block_kit_layout():
    text, blocks = report()
    assert text == "Handoff for infra-oncall: <@U0A01> hands over to <@U0A02>"
    assert [b["type"] for b in blocks] == [
        "header",
        "section",
        "context",
        "divider",
        "section",
        "section",
        "section",
        "section",
        "context",
    ]
    assert blocks[0]["text"] == {"type": "plain_text", "text": "Handoff: infra-oncall"}


def test_the_handoff_report_shows_the_figures_open_items_notes_and_load():
    who, at, shift, pages, tickets, notes, load = texts(report()[1])
    until = int((AT + timedelta(weeks=1)).timestamp())
    assert who == (
        f"<@U0A01> hands over to <@U0A02>, on call until <!date^{until}^"
        "{date_short_pretty} {time}|Mon 23 Nov 10:00 EST>.\n"
        "Secondary: <@U0B01> (data-oncall)"
    )
    assert at.startswith(f"Handoff at <!date^{int(AT.timestamp())}^")
    assert shift == (
        "*Outgoing shift*\nPages: 7 · business-impacting: 3 · false alarms: 2 · off-hours: 4"
    )
    assert pages == "*Open pages (1)*\n• disk full on db-1 (open 5h 1m)"
    assert tickets == "*Open support tickets (1)*\n• VPN broken (open 5h 1m)"
    assert notes == "*Handoff notes from <@U0A01>*\n> Watch the *db* failover"
    assert load == (
        "On-call share over the last quarter: <@U0A01> 15% (off-hours 10%) · "
        "<@U0A02> 15% (off-hours 8%)"
    )


def test_an_empty_handoff_says_none_and_leaves_out_the_load():
    _, blocks = report(
        outgoing=OnCall("infra-oncall", AT, None, None, None, None),
        incoming=OnCall("infra-oncall", AT, "U0A02", None, AT, None),
        figures=Figures(0, 0, 0, 0),
        open_pages=[],
        open_tickets=[],
        notes=None,
        notes_author=None,
        loads=[],
    )
    assert texts(blocks)[0] == "nobody hands over to <@U0A02>"
    assert texts(blocks)[2:] == [
        "*Outgoing shift*\nPages: 0 · business-impacting: 0 · false alarms: 0 · off-hours: 0",
        "*Open pages*: none",
        "*Open support tickets*: none",
        "*Handoff notes*: none were written",
    ]


def test_more_than_ten_open_items_are_counted_not_listed():
    _, blocks = report(open_pages=[Item(summary=f"alert {i}") for i in range(13)])
    pages = texts(blocks)[3]
    assert pages.startswith("*Open pages (13)*\n• alert 0 (open 5h 1m)")
    assert "alert 9" in pages and "alert 10" not in pages
    assert pages.endswith("…and 3 more")


def test_handoff_notes_cannot_ping_the_channel_or_spoof_a_link():
    _, blocks = report(notes=HOSTILE + "\nsecond line <!here>")
    notes = texts(blocks)[5]
    assert notes == (
        "*Handoff notes from <@U0A01>*\n"
        "> Heads up &lt;!channel&gt;, read &lt;https://evil.example|click here&gt; "
        "&amp; &lt;@U0BOSS&gt;\n"
        "> second line &lt;!here&gt;"
    )


def test_page_summaries_and_ticket_titles_are_escaped_in_the_report_and_the_agenda():
    items = {"open_pages": [Item(summary=HOSTILE)], "open_tickets": [Item(title=HOSTILE)]}
    escaped = (
        "Heads up &lt;!channel&gt;, read &lt;https://evil.example|click here&gt; "
        "&amp; &lt;@U0BOSS&gt;"
    )
    for _, blocks in (report(**items), agenda(**items)):
        everything = json.dumps(blocks, ensure_ascii=False)
        assert everything.count(escaped) == 2
        for raw in ("<!channel>", "<https://evil", "<@U0BOSS>"):
            assert raw not in everything


def test_a_rotation_id_in_the_agenda_is_escaped():
    _, blocks = agenda(rotation_id="infra<!channel>")
    assert texts(blocks)[0].startswith("You just came off *infra&lt;!channel&gt;*")


def test_the_review_agenda_has_the_shift_figures_and_the_open_items():
    text, blocks = agenda()
    assert text == "Draft agenda for the weekly operational review (infra-oncall)"
    assert [b["type"] for b in blocks] == ["header", "section", "section", "context"]
    intro, items, footnote = texts(blocks)
    assert intro == (
        "You just came off *infra-oncall* (Mon 09 Nov 10:00 EST → Mon 16 Nov 10:00 EST), so "
        "preparing the weekly operational review is yours. Here is a draft to start from:"
    )
    assert items.splitlines() == [
        "*1. Pages* (7 this shift; 3 business-impacting, 2 false alarms, 4 off-hours). "
        "For each: why did it page at all? What removes the next one?",
        "  ◦ still open: disk full on db-1",
        "*2. Customer support issues* (1 open). Repeated categories?",
        "  ◦ VPN broken (open 5h 1m)",
        "*3. Incidents and postmortems*: follow-through on remediation items",
        "*4. Production changes*: what shipped, what went wrong, what needs automation",
        "*5. SLIs and SLOs*: dashboard review, trends and outliers",
    ]
    assert footnote == "Sustainable on-call: fewer than 5 business-impacting pages a week."


def test_the_agenda_counts_open_items_beyond_ten():
    _, blocks = agenda(
        open_pages=[Item(summary=f"alert {i}") for i in range(12)],
        open_tickets=[Item(title=f"ticket {i}") for i in range(11)],
    )
    items = texts(blocks)[1].splitlines()
    assert "  ◦ still open: alert 9" in items and "  ◦ …and 2 more still open" in items
    assert "  ◦ ticket 9 (open 5h 1m)" in items and "  ◦ …and 1 more" in items
    assert not any("alert 10" in line or "ticket 10" in line for line in items)
