"""The fake Slack answers as Slack's published specs say, and fails on purpose when told to.

Checked against /work/shared/slack-api-specs (skipped when absent; the specs are not copied here).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator, Draft7Validator
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.demo.driver import SlackDriver
from bot.demo.fake_slack import FakeSlack
from tests.harness import SHARED

SPECS = SHARED / "slack-api-specs"
WEB_API = SPECS / "web-api" / "slack_web_openapi_v2.json"
EVENT_WRAPPER = SPECS / "events-api" / "slack_common_event_wrapper_schema.json"
needs_web_spec = pytest.mark.skipif(not WEB_API.exists(), reason="Slack Web API spec absent")
needs_event_spec = pytest.mark.skipif(not EVENT_WRAPPER.exists(), reason="Events API spec absent")

VIEW = {"type": "modal", "title": {"type": "plain_text", "text": "Page"}, "blocks": []}
# Arguments for one realistic call of each method; "TS" is replaced by a message just posted.
CALLS: dict[str, dict[str, Any]] = {
    "api.test": {},
    "auth.test": {},
    "chat.postMessage": {"channel": "C0INFRA0001", "text": "Checkout is down"},
    "chat.postEphemeral": {"channel": "C0INFRA0001", "user": "U0ENG00001", "text": "only you"},
    "chat.update": {"channel": "C0INFRA0001", "ts": "TS", "text": "Acked"},
    "chat.delete": {"channel": "C0INFRA0001", "ts": "TS"},
    "chat.getPermalink": {"channel": "C0INFRA0001", "message_ts": "TS"},
    "conversations.history": {"channel": "C0INFRA0001", "oldest": "0"},
    "conversations.open": {"users": "U0ENG00001"},
    "conversations.replies": {"channel": "C0INFRA0001", "ts": "TS"},
    "conversations.setTopic": {"channel": "C0INFRA0001", "topic": "On call: Alice"},
    "conversations.info": {"channel": "C0INFRA0001"},
    "users.info": {"user": "U0ENG00001"},
    "users.lookupByEmail": {"email": "alice@example.com"},
    "usergroups.users.update": {"usergroup": "S0INFRAONC", "users": "U0ENG00001,U0ENG00002"},
    "usergroups.users.list": {"usergroup": "S0INFRAONC"},
    "usergroups.list": {"include_disabled": True},
    "views.open": {"trigger_id": "1.2.abc", "view": VIEW},
    "views.push": {"trigger_id": "1.2.abc", "view": VIEW},
    "views.update": {"view_id": "V0000000001", "view": VIEW},
    "views.publish": {"user_id": "U0ENG00001", "view": {"type": "home", "blocks": []}},
    "reactions.add": {"channel": "C0INFRA0001", "timestamp": "TS", "name": "eyes"},
    "team.info": {},
    "files.getUploadURLExternal": {"filename": "chart.png", "length": 3},
    "files.completeUploadExternal": {"files": [{"id": "UPLOADED"}], "channel_id": "D0ENG00001"},
}
# Methods newer than the spec snapshot in ../shared/slack-api-specs; their shapes follow Slack's
# method pages (upload_url + file_id; files[]) and are checked by the upload test below.
NEWER_THAN_SPEC = {"files.getUploadURLExternal", "files.completeUploadExternal"}
# Errors the fake gives on its own, with the call that causes each.
ERRORS: list[tuple[str, dict[str, Any], str]] = [
    ("chat.postMessage", {"channel": "C0INFRA0001"}, "no_text"),
    ("chat.update", {"channel": "C0INFRA0001", "ts": "1.000000", "text": "x"}, "message_not_found"),
    ("chat.delete", {"channel": "C0INFRA0001", "ts": "1.000000"}, "message_not_found"),
    ("users.info", {"user": "U0NOBODY01"}, "user_not_found"),
    ("users.lookupByEmail", {"email": "nobody@example.com"}, "users_not_found"),
    ("views.open", {"view": VIEW}, "invalid_trigger_id"),
    ("conversations.info", {"channel": "C0GONE00001"}, "channel_not_found"),
]


def fake_methods() -> list[str]:
    return sorted(n[3:].replace("_", ".") for n in dir(FakeSlack) if n.startswith("_m_"))


@cache
def web_spec() -> dict[str, Any]:
    return json.loads(WEB_API.read_text())


def response_schema(method: str, status: str = "200") -> dict[str, Any]:
    """The spec's response schema for a method, with its `#/definitions/...` refs resolvable."""
    spec = web_spec()
    operation = next(iter(spec["paths"][f"/{method}"].values()))
    return {**operation["responses"][status]["schema"], "definitions": spec["definitions"]}


def problems(schema: dict[str, Any], answer: dict[str, Any], draft: type = Draft4Validator) -> list:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:200]}"
        for e in draft(schema).iter_errors(answer)
    ]


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    slack = FakeSlack().start()
    slack.add_user("U0ENG00001", "alice", "alice@example.com")
    slack.existing_usergroups.add("S0INFRAONC")
    slack.channels["C0GONE00001"] = None  # archived and deleted: conversations.info fails
    yield slack
    slack.stop()


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=fake.api_url, retry_handlers=[])


def call(client: WebClient, method: str, args: dict[str, Any]) -> dict[str, Any]:
    if method == "conversations.history":  # the spec wants at least one message back
        client.chat_postMessage(channel="C0INFRA0001", text="history")
    if "TS" in args.values():
        ts = client.chat_postMessage(channel="C0INFRA0001", text="to act on")["ts"]
        args = {k: ts if v == "TS" else v for k, v in args.items()}
    return client.api_call(method, json=args).data  # type: ignore[return-value]


# ---- the Web API spec ------------------------------------------------------------------------------


def test_every_fake_method_has_a_realistic_call_in_this_test():
    assert fake_methods() == sorted(CALLS)


@needs_web_spec
@pytest.mark.parametrize("method", sorted(set(fake_methods()) - NEWER_THAN_SPEC))
def test_every_fake_method_exists_in_slacks_web_api_spec(method):
    assert f"/{method}" in web_spec()["paths"], f"{method} is not a Slack Web API method"


@needs_web_spec
@pytest.mark.parametrize("method", sorted(set(CALLS) - NEWER_THAN_SPEC))
def test_fake_answers_match_the_specs_success_schema(client, method):
    answer = call(client, method, CALLS[method])
    assert answer["ok"] is True
    assert problems(response_schema(method), answer) == []


@needs_web_spec
def test_post_message_answers_carry_ok_channel_and_ts(client):
    answer = client.chat_postMessage(channel="C0INFRA0001", text="hello").data
    required = set(response_schema("chat.postMessage")["required"])
    assert {"ok", "channel", "ts"} <= required <= set(answer)
    assert answer["channel"] == "C0INFRA0001"
    assert answer["message"]["ts"] == answer["ts"]


@needs_web_spec
@pytest.mark.parametrize(("method", "args", "error"), ERRORS)
def test_fake_errors_are_ones_the_spec_lists_for_the_method(client, method, args, error):
    with pytest.raises(SlackApiError) as raised:
        client.api_call(method, json=args)
    answer = raised.value.response.data
    assert answer == {"ok": False, "error": error}
    assert problems(response_schema(method, "default"), answer) == []


def test_a_checker_that_cannot_fail_would_be_worthless():
    # The validation above does reject an answer missing what the spec requires.
    if not WEB_API.exists():
        pytest.skip("Slack Web API spec absent")
    assert problems(response_schema("chat.postMessage"), {"ok": True, "channel": "C0X01"}) != []


# ---- the Events API envelope -----------------------------------------------------------------------


class CapturingHttp:
    """Stands in for the app: keeps what the driver would have sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []

    def post(self, path: str, content: str, headers: dict[str, str]) -> None:
        self.requests.append((content, headers))


@needs_event_spec
def test_event_envelopes_match_slacks_event_wrapper_schema(fake):
    http = CapturingHttp()
    driver = SlackDriver(http, "secret", fake)
    driver.message("C0INFRA0001", "U0ENG00001", "hello")
    driver.message("C0INFRA0001", "U0ENG00001", "in a thread", thread_ts="1.000001")
    driver.reaction("U0ENG00001", "eyes", "C0INFRA0001", "1.000001")
    driver.home_opened("U0ENG00001")
    driver.event({"type": "emoji_changed", "subtype": "add", "event_ts": "1.1"}, retry_num=1)
    schema = json.loads(EVENT_WRAPPER.read_text())
    assert len(http.requests) == 5
    for body, headers in http.requests:
        envelope = json.loads(body)
        assert problems(schema, envelope, Draft7Validator) == [], envelope["event"]["type"]
        assert envelope["type"] == "event_callback"
        assert headers["X-Slack-Signature"].startswith("v0=")
    assert http.requests[-1][1]["X-Slack-Retry-Num"] == "1"


# ---- test controls ---------------------------------------------------------------------------------


def test_auth_test_names_the_granted_scopes_in_its_header(fake, client):
    assert client.auth_test().headers["x-oauth-scopes"].split(",") == fake.granted_scopes()
    fake.scopes = ["chat:write"]
    assert client.auth_test().headers["x-oauth-scopes"] == "chat:write"


def test_fail_with_429_answers_retry_after_then_recovers(fake, client):
    fake.fail("chat.postMessage", status=429, retry_after=3)
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="C0INFRA0001", text="too fast")
    response = raised.value.response
    assert response.status_code == 429
    assert response["error"] == "ratelimited"
    assert response.headers["Retry-After"] == "3"
    assert client.chat_postMessage(channel="C0INFRA0001", text="later")["ok"] is True
    assert [m.text for m in fake.posts("C0INFRA0001")] == ["later"]


def test_fail_with_500_answers_a_server_error(fake, client):
    fake.fail("views.publish", status=500, times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as raised:
            client.views_publish(user_id="U0ENG00001", view={"type": "home", "blocks": []})
        assert raised.value.response.status_code == 500
    assert client.views_publish(user_id="U0ENG00001", view={"type": "home", "blocks": []})["ok"]
    assert [c.status for c in fake.calls_to("views.publish")] == [500, 500, 200]


def test_fail_with_a_slack_error_answers_ok_false(fake, client):
    fake.fail("chat.postMessage", error="channel_not_found")
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="C0GONE00001", text="x")
    assert raised.value.response.status_code == 200
    assert raised.value.response.data == {"ok": False, "error": "channel_not_found"}
    assert fake.posts() == []
    assert client.chat_postMessage(channel="C0INFRA0001", text="next")["ok"]  # only once


def test_failures_apply_only_to_their_method(fake, client):
    fake.fail("chat.update", status=500, times=5)
    assert client.chat_postMessage(channel="C0INFRA0001", text="fine")["ok"]


def test_calls_without_a_token_are_not_authed(fake):
    anonymous = WebClient(base_url=fake.api_url)
    with pytest.raises(SlackApiError) as raised:
        anonymous.chat_postMessage(channel="C0INFRA0001", text="x")
    assert raised.value.response["error"] == "not_authed"


def test_an_unknown_method_is_refused(client):
    with pytest.raises(SlackApiError) as raised:
        client.api_call("chat.scheduleMessage", json={"channel": "C0INFRA0001"})
    assert raised.value.response["error"] == "unknown_method"


# ---- what the fake remembers -----------------------------------------------------------------------


def test_the_fake_keeps_messages_as_people_see_them(fake, client):
    posted = client.chat_postMessage(channel="C0INFRA0001", text="Paging Alice")
    client.chat_postMessage(channel="U0ENG00001", text="You are paged")
    client.chat_update(channel="C0INFRA0001", ts=posted["ts"], text="Acked by Alice")
    [message] = fake.posts("C0INFRA0001")
    assert (message.text, message.updates) == ("Acked by Alice", 1)
    [dm] = fake.dms("U0ENG00001")
    assert dm.channel == "D0ENG00001" and dm.text == "You are paged"
    assert fake.message("C0INFRA0001", posted["ts"]) is message
    client.chat_delete(channel="C0INFRA0001", ts=posted["ts"])
    assert fake.posts("C0INFRA0001") == []


def test_the_fake_keeps_usergroups_topics_and_home_views(fake, client):
    client.usergroups_users_update(usergroup="S0INFRAONC", users=["U0ENG00002"])
    client.conversations_setTopic(channel="C0INFRA0001", topic="On call: Bob")
    client.views_publish(user_id="U0ENG00001", view={"type": "home", "blocks": []})
    assert fake.usergroups == {"S0INFRAONC": ["U0ENG00002"]}
    assert client.usergroups_users_list(usergroup="S0INFRAONC")["users"] == ["U0ENG00002"]
    assert fake.topics == {"C0INFRA0001": "On call: Bob"}
    assert fake.home_views["U0ENG00001"]["type"] == "home"


def test_form_encoded_calls_are_understood_too(fake, client):
    client.api_call(
        "chat.postMessage",
        params={"channel": "C0INFRA0001", "text": "form", "blocks": json.dumps([])},
    )
    client.api_call("users.info", params={"user": "U0ENG00001"})
    assert fake.posts("C0INFRA0001")[0].text == "form"
    assert fake.calls_to("users.info")[0].args == {"user": "U0ENG00001"}


def test_response_url_posts_are_recorded(fake):
    import httpx

    url = fake.response_url("command")
    assert httpx.post(url, json={"text": "only you", "response_type": "ephemeral"}).json() == {
        "ok": True
    }
    assert fake.responses[-1].args == {"text": "only you", "response_type": "ephemeral"}


def test_spec_files_are_not_copied_into_the_repository():
    root = Path(__file__).resolve().parents[1]
    copies = [p for p in root.rglob("slack_web_openapi*.json") if ".venv" not in p.parts]
    assert copies == []


def test_file_upload_takes_the_three_steps_slack_sdk_makes(fake, client):
    """files_upload_v2: getUploadURLExternal, a POST of the bytes to the loopback upload URL,
    completeUploadExternal sharing it in a conversation."""
    png = b"\x89PNG\r\n\x1a\nfake"
    answer = client.files_upload_v2(
        channel="D0ENG00001",
        content=png,
        filename="burn-up.png",
        title="Burn-up",
        initial_comment="Burn-up of the migration",
    )
    assert answer["ok"] is True
    file_id = answer["file"]["id"]
    assert fake.files[file_id]["content"] == png
    assert fake.files[file_id]["channels"] == ["D0ENG00001"]
    url = fake.calls_to("files.getUploadURLExternal")[0].response
    assert url["upload_url"].startswith(fake.base_url) and url["file_id"] == file_id
    assert fake.dms("U0ENG00001")[-1].text == "Burn-up of the migration"


def test_completing_an_upload_that_never_received_its_bytes_fails(fake, client):
    file_id = client.files_getUploadURLExternal(filename="x.png", length=3)["file_id"]
    with pytest.raises(SlackApiError) as raised:
        client.files_completeUploadExternal(files=[{"id": file_id}])
    assert raised.value.response["error"] == "file_not_found"
