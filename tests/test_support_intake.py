"""Support intake: which messages become tickets, the /support form, the shortcut, the experts rule."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.runbooks import RunbookIndex
from bot.support.models import Ticket

HELP = "C0HELP00001"
EXPERTS = "C0EXPERTS01"
APP_DEV = "U0APP00001"
OTHER_DEV = "U0APP00002"
T1 = "U0ENG00004"  # infra-support's member in the week of 16 Nov (third week since 2 Nov)
ONCALL = "U0ENG00002"  # infra-oncall until the 10:00 handoff on Mon 16 Nov


def tickets(world) -> list[Ticket]:
    with world.db.session() as session:
        return list(session.exec(select(Ticket).order_by(Ticket.id)).all())


def thread_replies(world, ts, channel=HELP):
    return [m for m in world.fake.posts(channel) if m.thread_ts == ts]


@pytest.fixture
def quiet_runbooks(world, tmp_path):
    """An empty runbooks directory, so cards show no suggestions unless a test adds some."""
    world.runtime.extras["runbooks"] = RunbookIndex(tmp_path)
    return tmp_path


def test_top_level_message_in_queue_channel_becomes_ticket_answered_in_thread(world):
    _, ts = world.slack.message(
        HELP, APP_DEV, "Deploys to staging fail with a 503 from the gateway"
    )
    [ticket] = tickets(world)
    assert ticket.queue_id == "infra-help" and ticket.requester == APP_DEV
    assert ticket.assignee == T1 and ticket.state == "new" and ticket.tier == 1
    assert (ticket.thread_channel, ticket.thread_ts) == (HELP, ts)
    [card] = thread_replies(world, ts)
    assert f"Ticket #{ticket.id}" in card.text
    text = json.dumps(card.blocks)
    assert "infra-help" in text and T1 in text
    due = int(datetime(2026, 11, 16, 13, 30, tzinfo=ZoneInfo("America/New_York")).timestamp())
    # A date token: each reader sees their own zone; the fallback names the team's.
    assert "SLA" in text and f"first response by <!date^{due}^" in text
    assert "|Mon 16 Nov 13:30 EST>" in text
    assert "support.claim" in text and "support.resolve" in text and "support.escalate" in text
    assert any(m.channel[1:] == T1 or m.channel == "D" + T1[1:] for m in world.fake.dms(T1))


@pytest.mark.parametrize(
    "extra",
    [
        {"bot_id": "B0OTHERBOT1"},
        {"subtype": "message_changed"},
        {"subtype": "message_deleted"},
        {"subtype": "channel_join"},
        {"thread_ts": "1700000000.000001"},  # a reply in some other thread
    ],
    ids=["bot message", "edit", "deletion", "join", "thread reply"],
)
def test_messages_that_are_not_new_human_requests_never_create_tickets(world, extra):
    world.slack.message(HELP, APP_DEV, "Not a new request", **extra)
    assert tickets(world) == []
    assert world.fake.posts(HELP) == []


def test_messages_outside_support_channels_are_ignored(world):
    world.slack.message("C0GENERAL01", APP_DEV, "lunch?")
    assert tickets(world) == []


def test_a_retried_event_creates_one_ticket(world):
    _, ts = world.slack.message(HELP, APP_DEV, "Builds are slow", event_id="Ev0RETRY0001")
    world.slack.message(
        HELP, APP_DEV, "Builds are slow", ts=ts, event_id="Ev0RETRY0001", retry_num=1
    )
    # Even the same message delivered under a new event id (a second subscription) is one ticket.
    world.slack.message(HELP, APP_DEV, "Builds are slow", ts=ts, event_id="Ev0OTHER0001")
    assert len(tickets(world)) == 1
    assert len(thread_replies(world, ts)) == 1


def test_support_help_lists_the_commands(world):
    world.slack.command("/support", "help", user=APP_DEV)
    text = world.last_ack()["text"]
    assert "/support report [queue] [weeks]" in text and "<#C0HELP00001>" in text


def test_unknown_subcommand_says_so_and_shows_help(world):
    world.slack.command("/support", "frobnicate", user=APP_DEV)
    text = world.last_ack()["text"]
    assert "`/support frobnicate`" in text and "/support help" in text


def test_support_command_opens_the_request_form(world):
    world.slack.command("/support", "", user=APP_DEV, channel=HELP)
    view = world.opened_view()
    assert view["callback_id"] == "support.request"
    block_ids = [b.get("block_id") for b in view["blocks"]]
    for field in ("summary", "details", "category", "severity", "application", "impact", "why_now"):
        assert field in block_ids


def submit_form(world, user=APP_DEV, **values):
    view = world.opened_view()
    state = {}
    for key, value in values.items():
        if key in ("category", "severity", "application", "impact", "queue"):
            state[key] = {"value": {"type": "static_select", "selected_option": {"value": value}}}
        else:
            state[key] = {"value": value}
    return world.slack.submit_view(view, user, state)


def test_form_request_is_posted_as_a_card_in_the_queue_channel(world, quiet_runbooks):
    world.slack.command("/support", "", user=APP_DEV)
    response = submit_form(
        world,
        summary="Need a new namespace for payments",
        details="Team payments is onboarding",
        category="how_to",
        severity="low",
        application="wiki",
    )
    assert response.status_code == 200
    [ticket] = tickets(world)
    assert (ticket.category, ticket.severity, ticket.application_id) == ("how_to", "low", "wiki")
    assert ticket.intake == "command" and ticket.source_ts is None
    [card] = [m for m in world.fake.posts(HELP) if m.thread_ts is None]
    assert "Need a new namespace for payments" in card.text
    # The card heads the thread; replies there find the ticket.
    world.slack.message(HELP, T1, "On it", thread_ts=card.ts)
    assert tickets(world)[0].first_response_at is not None
    assert any(f"Support ticket #{ticket.id} opened" in m.text for m in world.fake.dms(APP_DEV))


def test_critical_without_impact_and_reason_is_refused_on_the_form(world):
    world.slack.command("/support", "", user=APP_DEV)
    submit_form(world, summary="Everything is down", severity="critical")
    errors = world.last_ack()["errors"]
    assert set(errors) == {"impact", "why_now"}
    assert tickets(world) == []


def test_critical_with_only_an_impact_is_still_refused(world):
    world.slack.command("/support", "", user=APP_DEV)
    submit_form(world, summary="Checkout errors", severity="critical", impact="revenue")
    assert set(world.last_ack()["errors"]) == {"why_now"}


def test_message_shortcut_opens_the_form_prefilled_and_files_for_the_author(world, quiet_runbooks):
    message = {
        "type": "message",
        "user": OTHER_DEV,
        "ts": "1763300000.000100",
        "text": "Our cron jobs stopped running at midnight\nlogs attached",
    }
    world.slack.message_shortcut("create_support_request", T1, "C0GENERAL01", message)
    view = world.opened_view()
    summary = next(b for b in view["blocks"] if b["block_id"] == "summary")
    assert summary["element"]["initial_value"] == "Our cron jobs stopped running at midnight"
    submit_form(
        world,
        user=T1,
        summary="Our cron jobs stopped running at midnight",
        category="troubleshooting",
    )
    [ticket] = tickets(world)
    assert ticket.requester == OTHER_DEV and ticket.intake == "shortcut"
    assert (ticket.source_channel, ticket.source_ts) == ("C0GENERAL01", "1763300000.000100")
    assert "logs attached" in ticket.details
    assert any(
        "turned your message into support ticket" in m.text for m in world.fake.dms(OTHER_DEV)
    )
    # The same message again: already a ticket.
    world.slack.message_shortcut("create_support_request", T1, "C0GENERAL01", message)
    assert "already support ticket" in world.last_response()["text"]


def test_experts_channel_post_by_someone_else_becomes_a_ticket_and_they_are_told_why(
    world, quiet_runbooks
):
    _, ts = world.slack.message(
        EXPERTS, APP_DEV, "Checkout pods restart every hour, is it the platform?"
    )
    [ticket] = tickets(world)
    assert ticket.intake == "experts" and ticket.queue_id == "infra-help"
    assert (ticket.source_channel, ticket.source_ts) == (EXPERTS, ts)
    [why] = world.fake.calls_to("chat.postEphemeral")
    assert why.args["user"] == APP_DEV and why.args["channel"] == EXPERTS
    assert "only the platform experts and the people on call post there" in why.args["text"]
    assert [m for m in world.fake.posts(HELP) if m.thread_ts is None]  # the ticket card


@pytest.mark.parametrize("poster", ["U0EXP00001", ONCALL], ids=["expert", "on call now"])
def test_experts_and_people_on_call_may_post_in_the_experts_channel(world, poster):
    world.slack.message(EXPERTS, poster, "Heads up: we are upgrading the ingress at 14:00")
    assert tickets(world) == []
    assert world.fake.calls_to("chat.postEphemeral") == []


def test_experts_given_by_email_are_recognised(world_factory):
    from bot.demo.story import sample_org_text

    org = sample_org_text().replace(
        "experts: [U0EXP00001, U0EXP00002]", "experts: [jade@example.com]"
    )
    world = world_factory(org_yaml=org)
    world.slack.message(EXPERTS, "U0EXP00001", "FYI: new runbook for disk alerts")
    assert tickets(world) == []


def test_rotation_members_given_by_email_are_assigned_by_slack_id(world_factory):
    from bot.demo.story import sample_org_text

    org = sample_org_text().replace(
        "members: [U0ENG00002, U0ENG00003, U0ENG00004, U0ENG00005, U0ENG00001]",
        "members: [U0ENG00002, U0ENG00003, dev@example.com, U0ENG00005, U0ENG00001]",
    )
    world = world_factory(org_yaml=org)
    world.slack.message(HELP, APP_DEV, "Is the artifact registry slow for anyone else?")
    [ticket] = tickets(world)
    assert ticket.assignee == T1
