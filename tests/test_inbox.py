"""The inbox: every Slack request is recorded by Slack's ids first, so retries and replicas act once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest

from bot import metrics
from bot.demo.driver import API_APP_ID
from bot.demo.fake_slack import TEAM_ID
from bot.demo.story import START, fake_users, sample_org_text
from bot.inbox import inbox_key, record
from tests.harness import TestWorld

NOW = datetime(2026, 11, 16, 14, 30, tzinfo=UTC)
USER = {"id": "U0ENG00001", "username": "alice", "name": "alice", "team_id": TEAM_ID}

# ---- keys ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"type": "event_callback", "event_id": "Ev0123", "event": {"type": "message"}},
            ("event", "event:Ev0123"),
        ),
        (
            {"command": "/oncall", "text": "who", "trigger_id": "13345.224.abc"},
            ("command", "command:13345.224.abc"),
        ),
        (
            {
                "type": "block_actions",
                "trigger_id": "1.2.t",
                "actions": [{"action_id": "ack", "action_ts": "1731767400.000100"}],
            },
            ("action", "action:1.2.t:1731767400.000100"),
        ),
        (
            {
                "type": "view_submission",
                "trigger_id": "1.2.v",
                "view": {"id": "V0AAA", "hash": "1731.abc"},
            },
            ("view", "view:1.2.v:V0AAA:1731.abc"),
        ),
        (
            {"type": "view_closed", "view": {"id": "V0AAA", "hash": "1731.abc"}},
            ("view", "view_closed:V0AAA:1731.abc"),
        ),
        (
            {"type": "shortcut", "callback_id": "new_page", "trigger_id": "9.9.s"},
            ("shortcut", "shortcut:9.9.s"),
        ),
        (
            {"type": "message_action", "callback_id": "ticket", "trigger_id": "9.9.m"},
            ("shortcut", "shortcut:9.9.m"),
        ),
    ],
)
def test_each_kind_of_request_is_keyed_by_slacks_own_ids(body, expected):
    assert inbox_key(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        {"type": "url_verification", "challenge": "abc"},
        {"type": "ssl_check"},
        {"type": "block_suggestion", "action_id": "pick", "value": "ab"},  # answered every time
        {"type": "event_callback", "event": {"type": "message"}},  # no id: nothing to key on
        {},
    ],
)
def test_requests_without_an_identity_are_not_recorded(body):
    assert inbox_key(body) is None


def test_two_presses_of_the_same_button_are_two_interactions():
    press = {"type": "block_actions", "trigger_id": "1.2.t", "actions": [{"action_ts": "1.1"}]}
    again = {"type": "block_actions", "trigger_id": "1.3.t", "actions": [{"action_ts": "1.2"}]}
    assert inbox_key(press) != inbox_key(again)


def test_record_accepts_a_key_once(db):
    def duplicates() -> float:
        labels = {"kind": "event"}
        return metrics.REGISTRY.get_sample_value("opsbot_inbox_duplicates_total", labels) or 0.0

    before = duplicates()
    assert record(db, "event", "event:Ev1", NOW) is True
    assert record(db, "event", "event:Ev1", NOW, retry_num=1) is False
    assert record(db, "event", "event:Ev1", NOW, retry_num=2) is False
    assert record(db, "event", "event:Ev2", NOW) is True
    assert duplicates() == before + 2


# ---- through Slack ---------------------------------------------------------------------------------


class Probe:
    """Listeners of our own on the real app, so the test needs no capability's behaviour."""

    def __init__(self, world: TestWorld) -> None:
        self.seen: list[str] = []
        app = world.bolt

        @app.command("/inbox-probe")
        def command(ack: Any, body: dict[str, Any]) -> None:
            ack("noted")
            self.seen.append("command")

        @app.action("inbox_probe_button")
        def action(ack: Any) -> None:
            ack()
            self.seen.append("action")

        @app.view("inbox_probe_modal")
        def view(ack: Any) -> None:
            ack()
            self.seen.append("view")

        @app.shortcut("inbox_probe_shortcut")
        def shortcut(ack: Any) -> None:
            ack()
            self.seen.append("shortcut")

        @app.event("emoji_changed")
        def event(event: dict[str, Any]) -> None:
            self.seen.append("event")


def interactive(world: TestWorld, payload: dict[str, Any], retry_num: int | None = None) -> Any:
    body = urlencode({"payload": json.dumps(payload)})
    return world.slack.post(body, "application/x-www-form-urlencoded", retry_num=retry_num)


def button_press(
    trigger: str = "100.200.press", action_ts: str = "1731767400.000100"
) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "team": {"id": TEAM_ID, "domain": "opsbot-demo"},
        "user": USER,
        "api_app_id": API_APP_ID,
        "trigger_id": trigger,
        "container": {"type": "message", "message_ts": "1.000001", "channel_id": "C0INFRA0001"},
        "channel": {"id": "C0INFRA0001", "name": "platform-infra"},
        "message": {"type": "message", "ts": "1.000001", "text": "probe"},
        "response_url": "http://127.0.0.1:9/response/unused",
        "actions": [
            {
                "type": "button",
                "action_id": "inbox_probe_button",
                "block_id": "b",
                "value": "v",
                "text": {"type": "plain_text", "text": "Probe"},
                "action_ts": action_ts,
            }
        ],
    }


def modal_submission() -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "opsbot-demo"},
        "user": USER,
        "api_app_id": API_APP_ID,
        "trigger_id": "100.200.submit",
        "view": {
            "id": "V0PROBE001",
            "hash": "1731767400.abc",
            "type": "modal",
            "callback_id": "inbox_probe_modal",
            "title": {"type": "plain_text", "text": "Probe"},
            "blocks": [],
            "state": {"values": {}},
        },
        "response_urls": [],
    }


def shortcut_use() -> dict[str, Any]:
    return {
        "type": "shortcut",
        "callback_id": "inbox_probe_shortcut",
        "trigger_id": "100.200.shortcut",
        "team": {"id": TEAM_ID, "domain": "opsbot-demo"},
        "user": USER,
    }


EMOJI_EVENT = {"type": "emoji_changed", "subtype": "add", "name": "probe", "event_ts": "1.1"}


def test_slack_retries_of_every_kind_of_request_are_acted_on_once(world):
    probe = Probe(world)
    for retry in (None, 1, 2):
        response = world.slack.command(
            "/inbox-probe", "", "U0ENG00001", trigger_id="100.200.cmd", retry_num=retry
        )
        assert response.status_code == 200
        assert (
            world.slack.event(EMOJI_EVENT, event_id="Ev0PROBE01", retry_num=retry).status_code
            == 200
        )
        assert interactive(world, button_press(), retry).status_code == 200
        assert interactive(world, modal_submission(), retry).status_code == 200
        assert interactive(world, shortcut_use(), retry).status_code == 200
    assert sorted(probe.seen) == ["action", "command", "event", "shortcut", "view"]


def test_new_interactions_are_each_acted_on(world):
    probe = Probe(world)
    world.slack.command("/inbox-probe", "", "U0ENG00001")
    world.slack.command("/inbox-probe", "", "U0ENG00001")
    interactive(world, button_press("1.1.a"))
    interactive(world, button_press("1.1.b", action_ts="1731767460.000200"))
    world.slack.event(EMOJI_EVENT)
    world.slack.event(EMOJI_EVENT)
    assert sorted(probe.seen) == ["action", "action", "command", "command", "event", "event"]


def test_a_forged_request_cannot_use_up_an_event_id(world):
    probe = Probe(world)
    body = json.dumps(
        {
            "type": "event_callback",
            "event_id": "Ev0FORGED1",
            "team_id": TEAM_ID,
            "event": EMOJI_EVENT,
        }
    )
    forged = world.slack.post(body, "application/json", signature="v0=" + "0" * 64)
    assert forged.status_code == 401
    world.slack.event(EMOJI_EVENT, event_id="Ev0FORGED1")
    assert probe.seen == ["event"]


@pytest.fixture
def replica(world) -> Iterator[TestWorld]:
    """A second process of the same deployment: its own app and Slack client, the same database."""
    other = TestWorld(
        sample_org_text(), world.settings.database_url, START, users=fake_users(), upgrade=False
    )
    try:
        yield other
        other.check_payloads()
    finally:
        other.close()


def test_a_second_replica_does_not_act_on_what_the_first_did(world, replica):
    first, second = Probe(world), Probe(replica)
    for app in (world, replica):
        app.slack.command("/inbox-probe", "", "U0ENG00001", trigger_id="7.7.cmd")
        app.slack.event(EMOJI_EVENT, event_id="Ev0REPLICA")
        interactive(app, button_press())
        interactive(app, modal_submission())
        interactive(app, shortcut_use())
    assert sorted(first.seen) == ["action", "command", "event", "shortcut", "view"]
    assert second.seen == []


def test_app_home_opened_on_two_replicas_is_published_once(world, replica):
    event = {
        "type": "app_home_opened",
        "user": "U0ENG00003",
        "channel": "D0ENG00003",
        "tab": "home",
    }
    world.slack.event(event, event_id="Ev0HOME0001")
    replica.slack.event(event, event_id="Ev0HOME0001", retry_num=1)
    published = world.fake.calls_to("views.publish") + replica.fake.calls_to("views.publish")
    assert len(published) == 1
