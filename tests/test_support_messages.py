"""What people read about their request: text from Slack events stays as they wrote it (no double
escaping, mentions and links intact, no broadcast through the bot), text typed into forms is
escaped once, long texts are split at line boundaries, and times are Slack date tokens."""

from __future__ import annotations

import json

from sqlmodel import select

from bot.support.models import Ticket

HELP = "C0HELP00001"
APP_DEV = "U0APP00001"
OTHER_DEV = "U0APP00002"
T1 = "U0ENG00004"  # infra-support, week of 16 Nov
ONCALL = "U0ENG00002"


def tickets(world) -> list[Ticket]:
    with world.db.session() as session:
        return list(session.exec(select(Ticket).order_by(Ticket.id)).all())


def everything_sent(world) -> str:
    posts = [(m.text, m.blocks) for m in world.fake.posts()]
    return json.dumps([posts, world.fake.calls], ensure_ascii=False, default=str)


def submit_form(world, user=APP_DEV, **values):
    state = {}
    for key, value in values.items():
        if key in ("category", "severity", "application", "impact", "queue"):
            state[key] = {"value": {"type": "static_select", "selected_option": {"value": value}}}
        else:
            state[key] = {"value": value}
    return world.slack.submit_view(world.opened_view(), user, state)


def test_a_channel_message_is_shown_as_written_not_escaped_twice(world):
    # What Slack sends for "R&D <3 @Dana see the doc @here".
    world.slack.message(
        HELP,
        APP_DEV,
        "R&amp;D &lt;3 <@U0APP00002> see <https://wiki.example.com/x|the doc> <!here>",
    )
    [found] = tickets(world)
    dm = next(m for m in world.fake.dms(T1) if "is yours" in m.text)
    assert "R&amp;D &lt;3 <@U0APP00002> see <https://wiki.example.com/x|the doc>" in dm.text
    sent = everything_sent(world)
    assert "&amp;amp;" not in sent and "&amp;lt;" not in sent and "&lt;@U0APP00002&gt;" not in sent
    assert "<!here>" not in sent and "@here" in found.summary


def test_group_and_channel_broadcasts_in_a_message_are_neutralised(world):
    world.slack.message(HELP, APP_DEV, "<!channel> <!subteam^S0INFRA|@infra> <!everyone> help")
    sent = everything_sent(world)
    assert "<!channel>" not in sent and "<!subteam" not in sent and "<!everyone>" not in sent
    assert "@channel @infra @everyone help" in tickets(world)[0].summary


def test_text_typed_into_the_form_is_escaped_once(world):
    world.slack.command("/support", "", user=APP_DEV, channel=HELP)
    submit_form(world, summary="R&D <!channel> <https://evil.example|bank>", details="a < b")
    sent = everything_sent(world)
    assert "R&amp;D &lt;!channel&gt; &lt;https://evil.example|bank&gt;" in sent
    assert "<!channel>" not in sent and "<https://evil" not in sent
    assert "&amp;amp;" not in sent


def test_the_message_shortcut_prefills_plain_text_and_keeps_the_message_mrkdwn(world):
    message = {
        "type": "message",
        "user": OTHER_DEV,
        "ts": "1763300000.000100",
        "text": "R&amp;D builds fail for <@U0APP00001>\nsee <https://ci.example.com/1|build 1>",
    }
    world.slack.message_shortcut("create_support_request", T1, "C0GENERAL01", message)
    summary = next(b for b in world.opened_view()["blocks"] if b["block_id"] == "summary")
    assert summary["element"]["initial_value"] == "R&D builds fail for @U0APP00001"
    submit_form(world, user=T1, summary="R&D builds fail", details="since 9 & counting")
    [found] = tickets(world)
    assert found.summary == "R&amp;D builds fail"
    assert found.details == (
        "since 9 &amp; counting\n\nR&amp;D builds fail for <@U0APP00001>\n"
        "see <https://ci.example.com/1|build 1>"
    )


def test_a_long_message_turned_into_a_request_is_cut_at_a_line_never_inside_a_link(world):
    lines = [f"step {n}: see <https://ci.example.com/build/{n}|build {n}>" for n in range(120)]
    message = {"type": "message", "user": OTHER_DEV, "ts": "1763300000.000200"}
    message["text"] = "\n".join(lines)
    world.slack.message_shortcut("create_support_request", T1, "C0GENERAL01", message)
    view = world.opened_view()
    assert len(view["private_metadata"]) <= 3000
    submit_form(world, user=T1, summary="CI broken")
    [found] = tickets(world)
    kept = found.details.splitlines()
    assert kept[-1] == "_(continues in the original message)_"
    assert all(line in lines for line in kept[:-1]) and len(kept) > 10


def test_a_long_summary_is_shortened_without_cutting_a_mention(world):
    text = "word " * 28 + "<@U0APP00002> " + "more " * 20
    world.slack.message(HELP, APP_DEV, text)
    [found] = tickets(world)
    assert found.summary.endswith("...") and len(found.summary) <= 150
    assert found.summary.count("<") == found.summary.count(">")  # no token cut in half


def test_the_page_of_a_critical_request_shows_its_text_escaped_once(world):
    world.slack.command("/support", "", user=APP_DEV, channel=HELP)
    submit_form(
        world,
        summary="R&D checkout fails",
        severity="critical",
        application="checkout",
        impact="revenue",
        why_now="Payments fail",
    )
    page_dm = next(m for m in world.fake.dms(ONCALL) if m.text.startswith("Page #"))
    assert "R&amp;D checkout fails" in page_dm.text and "&amp;amp;" not in page_dm.text


def test_ticket_times_are_date_tokens_readers_see_in_their_own_zone(world):
    world.slack.message(HELP, APP_DEV, "Deploys to staging fail")
    world.advance(hours=3, minutes=1)  # the 75 % reminder
    [reminder] = [m for m in world.fake.dms(T1) if "75%" in m.text]
    assert "<!date^" in reminder.text and "|Mon 16 Nov 13:30 EST>" in reminder.text


def test_a_long_history_handed_to_t2_keeps_the_newest_events_and_says_how_many_are_left_out():
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from bot.support import blocks
    from bot.support.models import TicketEvent

    start = datetime(2026, 11, 16, 14, 30, tzinfo=UTC)
    found = Ticket(
        id=7, queue_id="infra-help", team_id="infra", requester=APP_DEV, summary="x",
        intake="message", opened_at=start, updated_at=start,
    )  # fmt: skip
    history = [
        TicketEvent(
            ticket_id=7, at=start + timedelta(minutes=n), kind=f"step_{n}", detail="d" * 200
        )
        for n in range(45)
    ]
    rendered = blocks.history_blocks(found, "breached", history, ZoneInfo("America/New_York"))
    text = json.dumps(rendered)
    assert "25 earlier events" in text and "step 44" in text and "step 24" not in text
    assert all(len(b["text"]["text"]) <= 3000 for b in rendered if b["type"] == "section")
