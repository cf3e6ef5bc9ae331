"""Records and delivery: the quarter export, the archive, e-mail that survives an SMTP outage,
long digests split across messages, operations news in the form, and config checks."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from bot.cli import main
from bot.config import check_org_text
from bot.wins.digests import messages_of
from handlers import org_checks
from tests.wins_world import (
    DEVEX_MGR,
    INFRA_MGR,
    LEADS,
    NY,
    VP,
    SmtpServer,
    make,
    org_yaml,
    texts,
    write,
)

START = datetime(2026, 11, 16, 10, 0, tzinfo=NY)


def test_quarter_export_prints_markdown_grouped_by_team_and_cycle(
    world_factory, tmp_path, monkeypatch, capsys
):
    world = make(world_factory, START)
    write(world, INFRA_MGR, summary="Builds are *twice* as fast")
    write(
        world,
        INFRA_MGR,
        kind="challenge",
        summary="Review queue",
        result="Slipped 2 weeks.",
        visibility="internal",
    )
    world.advance(datetime(2026, 11, 25, 15, 1, tzinfo=NY) - world.clock.now())
    write(
        world, DEVEX_MGR, summary="Local setup in one command", result="From 2 days to 15 minutes."
    )
    config = tmp_path / "opsbot.yaml"
    config.write_text(org_yaml())
    monkeypatch.setenv("OPSBOT_CONFIG", str(config))
    monkeypatch.setenv("DATABASE_URL", world.db.url)
    assert main(["wins", "export", "--quarter", "2026Q4"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Wins and Challenges, 2026Q4")
    assert "## Platform Infrastructure" in out and "## Developer Experience" in out
    assert "### Two weeks to 25 Nov 2026" in out
    assert "- **Builds are \\*twice\\* as fast**" in out
    assert "- **Review queue** _(internal)_" in out
    assert "  - Result: Slipped 2 weeks." in out
    # A late entry belongs to the cycle it was late for.
    devex = out.split("## Developer Experience")[1]
    assert "25 Nov 2026" in devex.split("Local setup")[0]
    assert main(["wins", "export", "--quarter", "2026Q4", "--team", "devex"]) == 0
    only = capsys.readouterr().out
    assert "Platform Infrastructure" not in only and "Local setup" in only
    assert main(["wins", "export", "--quarter", "2026Q5"]) == 2
    assert "2026Q4" in capsys.readouterr().err
    assert main(["wins", "export", "--quarter", "2026Q4", "--team", "nope"]) == 2
    assert "no team 'nope'" in capsys.readouterr().err


def test_archive_lists_past_digests(world_factory):
    world = make(world_factory, START)
    write(world, INFRA_MGR)
    world.advance(datetime(2026, 11, 25, 15, 1, tzinfo=NY) - world.clock.now())
    world.slack.command("/wins", "archive infra 2026Q4", INFRA_MGR)
    text = world.last_response()["text"] + json.dumps(world.last_response().get("blocks"))
    assert "Platform Infrastructure" in text and "1 wins" in text
    world.slack.command("/wins", "archive 2025Q1", INFRA_MGR)
    assert "No digests yet" in json.dumps(world.last_response())


def _vp_publishes(world) -> None:
    write(world, INFRA_MGR)
    world.advance(datetime(2026, 11, 25, 15, 1, tzinfo=NY) - world.clock.now())
    # The director lets the window pass; the VP chooses everything.
    world.advance(datetime(2026, 11, 26, 15, 1, tzinfo=NY) - world.clock.now())
    ask = next(m for m in world.fake.dms(VP) if "Choose highlights" in str(m.blocks))
    world.slack.press(ask, "wins.select", VP)
    view = world.opened_view()
    values = {}
    for block in view["blocks"]:
        if block.get("block_id", "").startswith("pick_"):
            options = block["element"]["options"]
            values[block["block_id"]] = {
                "value": {"type": "checkboxes", "selected_options": options}
            }
    world.slack.submit_view(view, VP, values)
    rewrite = world.last_ack()["view"]
    state = {
        b["block_id"]: {"value": b["element"].get("initial_value", "")}
        for b in rewrite["blocks"]
        if b["type"] == "input"
    }
    world.slack.submit_view(rewrite, VP, state)


def test_stakeholder_email_waits_out_an_smtp_outage(world_factory):
    world = make(world_factory, START)
    smtp = SmtpServer()  # not started yet: the server is down
    world.runtime.settings = world.settings.model_copy(
        update={"smtp_url": smtp.url, "mail_from": "opsbot@example.com"}
    )
    _vp_publishes(world)
    assert "Builds are twice as fast" in texts(world.fake.posts(LEADS))
    world.advance(timedelta(seconds=30))
    smtp.start()
    try:
        assert smtp.inbox.messages == []
        world.advance(timedelta(minutes=5))
        assert len(smtp.inbox.messages) == 1
        world.advance(timedelta(hours=2))
        assert len(smtp.inbox.messages) == 1  # sent once
    finally:
        smtp.stop()


def test_a_long_digest_is_split_across_messages_never_cut():
    lines = [f"• *Entry {n}*\n   " + "word " * 60 for n in range(200)]
    text = "\n".join(lines)
    messages = messages_of(text)
    assert len(messages) > 1
    joined = "\n".join(b["text"]["text"] for m in messages for b in m["blocks"])
    assert joined == text
    assert all(len(b["text"]["text"]) <= 3000 for m in messages for b in m["blocks"])
    assert all(len(m["blocks"]) <= 50 for m in messages)


def test_form_shows_operations_news_from_paging_and_support(world_factory):
    world = make(world_factory, START)
    from bot.paging.models import Page
    from bot.support.models import Ticket

    now = world.clock.now()
    org_text = org_yaml()
    assert "infra" in org_text
    with world.db.session() as session:
        # No rotation or queue in this org: providers answer nothing, and the form says nothing.
        session.add(
            Page(
                summary="disk full",
                source="manual",
                policy_id="p",
                policy={},
                rotation_id="infra-oncall",
                team_id="infra",
                opened_at=now,
                last_alert_at=now,
            )
        )
        session.add(
            Ticket(
                queue_id="infra-help",
                team_id="infra",
                requester="U0APP00001",
                summary="help",
                intake="command",
                opened_at=now,
                updated_at=now,
            )
        )
    world.slack.command("/wins", "", INFRA_MGR)
    assert "Operations news" not in json.dumps(world.opened_view())
    world.slack.command("/wins", "news", INFRA_MGR)
    assert "no operations news" in world.last_response()["text"]


def test_form_is_prefilled_with_news_where_data_exists(world):
    """The sample org has an on-call rotation and a support queue for infra."""
    from bot.paging.models import Page
    from bot.support.models import Ticket

    now = world.clock.now()
    with world.db.session() as session:
        for n in range(3):
            session.add(
                Page(
                    summary=f"alert {n}",
                    source="manual",
                    policy_id="infra-default",
                    policy={},
                    rotation_id="infra-oncall",
                    team_id="infra",
                    opened_at=now - timedelta(days=n),
                    last_alert_at=now,
                    off_hours=n == 0,
                    classification="business_impacting" if n == 1 else None,
                )
            )
        session.add(
            Ticket(
                queue_id="infra-help",
                team_id="infra",
                requester="U0APP00001",
                summary="help",
                intake="command",
                opened_at=now,
                resolved_at=now,
                updated_at=now,
            )
        )
    world.slack.command("/wins", "news", INFRA_MGR)
    view = world.opened_view()
    dumped = json.dumps(view)
    assert "3 pages (1 business-impacting, 1 off hours)" in dumped
    assert "1 support ticket, SLA met on 100% of 1 decided" in dumped
    summary = next(b for b in view["blocks"] if b.get("block_id") == "summary")
    assert summary["element"]["initial_value"] == "A good two weeks of pages"


@pytest.mark.parametrize(
    ("teams", "message"),
    [
        (
            "  - {id: a, name: A, parent: b, managers: [U0A1]}\n"
            "  - {id: b, name: B, parent: a, managers: [U0B1]}\n",
            "cycle of parents: a → b → a",
        ),
        ("  - {id: a, name: A, parent: nowhere, managers: [U0A1]}\n", "unknown team 'nowhere'"),
        ("  - {id: a, name: A, members: [U0E1]}\n", "nobody would write its update"),
    ],
)
def test_config_check_finds_problems_in_the_wins_tree(teams, message):
    text = f"teams:\n{teams}wins:\n  first_deadline: '2026-11-25 15:00'\n"
    report = check_org_text(text, checks=org_checks())
    assert any(message in str(i) for i in report.issues), [str(i) for i in report.issues]
    issue = next(i for i in report.issues if message in str(i))
    assert issue.line is not None


def test_config_check_names_a_deadline_that_does_not_parse():
    report = check_org_text("wins:\n  first_deadline: 'next wednesday'\n", checks=org_checks())
    assert any(
        "wins.first_deadline" in str(i) and "YYYY-MM-DD HH:MM" in str(i) for i in report.errors
    )


def test_config_check_warns_about_a_deadline_clocks_skip_and_reminders_past_the_cadence():
    text = (
        "timezone: America/New_York\n"
        "wins:\n  first_deadline: '2027-03-14 02:30'\n  reminders: [3w]\n"
    )
    report = check_org_text(text, checks=org_checks())
    messages = [str(i) for i in report.issues]
    assert any("does not exist in America/New_York" in m for m in messages)
    assert any("wins.reminders[0]" in m for m in report.errors for m in [str(m)])


def test_a_failing_news_provider_is_skipped_and_the_form_still_opens(world):
    from bot.wins.news import OpsNews, register

    def broken(session, org, team_id, start, end):
        session.exec(select_nothing())  # a provider's bad query
        return OpsNews(pages=99)

    def select_nothing():
        from sqlalchemy import text

        return text("SELECT * FROM no_such_table")

    world.runtime.extras["wins.news_providers"] = []
    register(world.runtime.extras, broken)
    register(world.runtime.extras, lambda *a: OpsNews(tickets=4, sla_met=3, sla_decided=4))
    world.slack.command("/wins", "", INFRA_MGR)
    dumped = json.dumps(world.opened_view())
    assert "4 support tickets, SLA met on 75% of 4 decided" in dumped
    assert "99" not in dumped


def test_stakeholder_email_waits_for_missing_mail_settings_and_says_which(world_factory):
    from sqlmodel import select as sql_select

    from bot.scheduler import Timer

    world = make(world_factory, START)
    smtp = SmtpServer().start()
    try:
        world.runtime.settings = world.settings.model_copy(update={"smtp_url": smtp.url})
        _vp_publishes(world)
        world.advance(timedelta(minutes=1))
        assert smtp.inbox.messages == []
        with world.db.session() as session:
            timers = session.exec(sql_select(Timer).where(Timer.kind == "mail.send")).all()
        assert any("OPSBOT_MAIL_FROM not set" in (t.last_error or "") for t in timers)
        world.runtime.settings = world.settings.model_copy(
            update={"smtp_url": smtp.url, "mail_from": "opsbot@example.com"}
        )
        world.advance(timedelta(minutes=10))
        assert len(smtp.inbox.messages) == 1
        assert smtp.inbox.messages[0]["From"] == "opsbot@example.com"
    finally:
        smtp.stop()
