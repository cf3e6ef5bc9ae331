"""Listener matching: Bolt's built-in matchers, asked with the body alone (`match_on_body`), pick
the same listeners as Bolt asking them its own way."""

from __future__ import annotations

import json
from typing import Any

import pytest
from slack_bolt import BoltResponse
from slack_bolt.listener_matcher.builtins import BuiltinListenerMatcher

from bot.intake import ParsedRequest
from bot.plain_acks import BodyMatcher

# Who pressed or submitted, as an interaction payload names them.
PRESSED_BY = {"team": {"id": "T0OPSBOT01"}, "user": {"id": "U0ENG00001"}}

REQUESTS: dict[str, dict[str, Any]] = {
    "slash command": {
        "command": "/oncall",
        "text": "now",
        "user_id": "U0ENG00001",
        "channel_id": "C0GENERAL01",
        "team_id": "T0OPSBOT01",
        "trigger_id": "1.2.abc",
        "response_url": "https://hooks.slack.com/commands/T0/1/abc",
    },
    "page button": {
        "type": "block_actions",
        **PRESSED_BY,
        "trigger_id": "1.2.def",
        "container": {"type": "message", "channel_id": "C0INFRA0001", "message_ts": "1.000100"},
        "actions": [
            {"action_id": "page.acknowledge", "block_id": "actions", "value": "1", "type": "button"}
        ],
    },
    "support message": {
        "type": "event_callback",
        "team_id": "T0OPSBOT01",
        "event_id": "Ev0MATCH001",
        "event": {
            "type": "message",
            "channel": "C0HELP00001",
            "user": "U0APP00001",
            "text": "The deploy pipeline fails",
            "ts": "1.000200",
        },
    },
    "form submitted": {
        "type": "view_submission",
        **PRESSED_BY,
        "trigger_id": "1.2.ghi",
        "view": {
            "id": "V0PAGE0001",
            "type": "modal",
            "callback_id": "page.request",
            "state": {"values": {}},
        },
    },
}


def request_for(body: dict[str, Any]) -> ParsedRequest:
    return ParsedRequest(json.dumps(body), body, {"content-type": ["application/json"]})


def test_every_body_only_matcher_is_asked_with_the_body(world):
    listeners = world.bolt._listeners
    kinds = [type(m) for listener in listeners for m in listener.matchers]
    assert kinds.count(BodyMatcher) >= len(listeners)  # each has at least its built-in matcher
    assert not [
        m
        for listener in listeners
        for m in listener.matchers
        if type(m) is BuiltinListenerMatcher and m.arg_names == ["body"]
    ]


def answers(matchers: list[Any], request: ParsedRequest, response: BoltResponse) -> list[bool]:
    """Each matcher's answer, in order, up to the first no (as Bolt asks them)."""
    said = []
    for matcher in matchers:
        said.append(matcher.matches(request, response))
        if not said[-1]:
            break
    return said


@pytest.mark.parametrize("kind", sorted(REQUESTS))
def test_the_same_listeners_match_as_with_bolts_own_matching(world, kind):
    request, response = request_for(REQUESTS[kind]), BoltResponse(status=200)
    matched = []
    for listener in world.bolt._listeners:
        bolts_own = [
            BuiltinListenerMatcher(func=m.func) if isinstance(m, BodyMatcher) else m
            for m in listener.matchers
        ]
        fast = answers(listener.matchers, request, response)
        assert fast == answers(bolts_own, request, response), listener.ack_function
        matched.append(all(fast))
    assert any(matched), f"no listener takes the {kind}"
