"""Escalation steps that notify an outbound webhook (PagerDuty Events API v2, generic JSON), so a
phone-capable service can ring someone whose Slack is on Do Not Disturb. Delivered to a real HTTP
server on loopback that the test starts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlmodel import select

from bot.config import check_org_text
from bot.demo.story import sample_org_text
from bot.paging.models import WebhookDelivery
from tests.paging_samples import alertmanager_body
from tests.test_paging import INFRA, PRIMARY, dms, page_row, pages_in, send, text_of, timeline

ROUTING_KEY = "R0UTINGKEY0000000000000000000000"
TOKEN = "gateway-token"


class Receiver:
    """A real HTTP server that records what it is sent and answers as told (202 by default)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: dict[str, list[int]] = {}  # path -> statuses to answer, in order
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
                )
                waiting = receiver.answers.get(self.path)
                status = waiting.pop(0) if waiting else 202
                reply = json.dumps({"status": "success" if status < 300 else "error"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def to(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def org_with_webhooks(url: str) -> str:
    text = sample_org_text().replace(
        '      - {notify: "user:U0MGR00001", after: 30m}\n',
        '      - {notify: "user:U0MGR00001", after: 30m}\n'
        '      - {notify: "webhook:pd", after: 45m}\n'
        '      - {notify: "webhook:gateway", after: 45m}\n',
    )
    return text + (
        "\nwebhooks:\n"
        f"  - {{id: pd, format: pagerduty, url: {url}/pd, routing_key_env: TEST_PD_KEY}}\n"
        f"  - {{id: gateway, format: json, url: {url}/gateway, token_env: TEST_GATEWAY_TOKEN}}\n"
    )


@pytest.fixture
def hooked(world_factory, receiver, monkeypatch):
    monkeypatch.setenv("TEST_PD_KEY", ROUTING_KEY)
    monkeypatch.setenv("TEST_GATEWAY_TOKEN", TOKEN)
    return world_factory(org_yaml=org_with_webhooks(receiver.url))


def test_an_unanswered_page_triggers_pagerduty_and_the_gateway_after_the_slack_steps(
    hooked, receiver
):
    send(hooked, "alertmanager", alertmanager_body())
    hooked.advance(minutes=44)
    assert receiver.requests == []
    hooked.advance(minutes=1)
    (pd,) = receiver.to("/pd")
    event = pd["json"]
    assert event["routing_key"] == ROUTING_KEY
    assert event["event_action"] == "trigger" and event["dedup_key"] == "opsbot-page-1"
    assert event["payload"]["summary"] == "Page #1: Pod payments/api-7d9 is crash looping"
    assert event["payload"]["severity"] == "critical" and event["payload"]["source"]
    assert event["payload"]["timestamp"].startswith("2026-11-16T14:30:00")
    assert event["links"] == [
        {
            "href": "http://prometheus.example.com/graph?g0.expr=kube_pod_restarts",
            "text": "Alert source",
        }
    ]
    (gateway,) = receiver.to("/gateway")
    assert gateway["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert gateway["json"]["event"] == "page.triggered"
    assert gateway["json"]["dedup_key"] == "opsbot-page-1"
    assert gateway["json"]["page"]["summary"] == "Pod payments/api-7d9 is crash looping"
    post = text_of(pages_in(hooked, INFRA)[0])
    assert "step 4, webhook:pd (PagerDuty Events API v2)" in post
    assert page_row(hooked, 1).fell_through


def test_acknowledging_in_slack_acknowledges_in_pagerduty_and_resolving_resolves(hooked, receiver):
    send(hooked, "alertmanager", alertmanager_body())
    hooked.advance(minutes=45)
    hooked.slack.press(dms(hooked, PRIMARY)[0], "page.acknowledge", PRIMARY)
    # The button's answer never waits on a webhook: nothing was sent during the request.
    assert [r["json"]["event_action"] for r in receiver.to("/pd")] == ["trigger"]
    hooked.tick()
    assert [r["json"]["event_action"] for r in receiver.to("/pd")] == ["trigger", "acknowledge"]
    hooked.slack.press(dms(hooked, PRIMARY)[0], "page.resolve", PRIMARY)
    hooked.slack.submit_view(
        hooked.opened_view(),
        PRIMARY,
        {
            "classification": {
                "value": {
                    "type": "radio_buttons",
                    "selected_option": {"value": "business_impacting"},
                }
            }
        },
    )
    hooked.tick()
    actions = [r["json"]["event_action"] for r in receiver.to("/pd")]
    assert actions == ["trigger", "acknowledge", "resolve"]
    assert {r["json"]["dedup_key"] for r in receiver.to("/pd")} == {"opsbot-page-1"}
    assert "payload" not in receiver.to("/pd")[-1]["json"]  # only a trigger carries one
    assert [r["json"]["event"] for r in receiver.to("/gateway")] == [
        "page.triggered",
        "page.acknowledged",
        "page.resolved",
    ]
    hooked.advance(hours=2)
    assert len(receiver.to("/pd")) == 3  # nothing more once resolved


def test_a_page_that_never_reached_a_webhook_sends_it_nothing(hooked, receiver):
    send(hooked, "alertmanager", alertmanager_body())
    hooked.slack.press(dms(hooked, PRIMARY)[0], "page.acknowledge", PRIMARY)
    hooked.advance(hours=2)
    assert receiver.requests == []


def test_a_webhook_answering_503_is_retried_with_backoff_until_it_takes_the_event(hooked, receiver):
    receiver.answers = {"/pd": [503, 503]}
    send(hooked, "alertmanager", alertmanager_body())
    hooked.advance(minutes=45)
    assert len(receiver.to("/pd")) == 1
    with hooked.db.session() as session:
        row = session.exec(select(WebhookDelivery).where(WebhookDelivery.webhook_id == "pd")).one()
        assert row.status == "pending" and row.last_error.startswith("503")
    hooked.advance(seconds=2)
    hooked.advance(seconds=4)
    assert len(receiver.to("/pd")) == 3
    with hooked.db.session() as session:
        row = session.exec(select(WebhookDelivery).where(WebhookDelivery.webhook_id == "pd")).one()
        assert row.status == "sent" and row.attempts == 3
    assert "webhook_failed" not in [kind for kind, _ in timeline(hooked, 1)]


def test_a_webhook_that_refuses_the_event_is_reported_on_the_page(hooked, receiver):
    receiver.answers = {"/pd": [400]}
    send(hooked, "alertmanager", alertmanager_body())
    hooked.advance(minutes=45)
    hooked.advance(minutes=5)
    assert len(receiver.to("/pd")) == 1  # a 400 is not retried
    post = text_of(pages_in(hooked, INFRA)[0])
    assert "webhook failed" in post and "pd: 400" in post


def test_a_missing_secret_is_reported_on_the_page_not_silently_dropped(
    world_factory, receiver, monkeypatch
):
    monkeypatch.delenv("TEST_PD_KEY", raising=False)
    monkeypatch.setenv("TEST_GATEWAY_TOKEN", TOKEN)
    world = world_factory(org_yaml=org_with_webhooks(receiver.url))
    send(world, "alertmanager", alertmanager_body())
    world.advance(minutes=45)
    assert receiver.to("/pd") == [] and len(receiver.to("/gateway")) == 1
    post = text_of(pages_in(world, INFRA)[0])
    assert "the environment variable TEST_PD_KEY is not set" in post


def test_an_unreachable_phone_service_is_retried_while_the_page_needs_it_and_then_reported(
    world_factory, monkeypatch
):
    monkeypatch.setenv("TEST_PD_KEY", ROUTING_KEY)
    monkeypatch.setenv("TEST_GATEWAY_TOKEN", TOKEN)
    from bot.paging import lifecycle

    world = world_factory(org_yaml=org_with_webhooks("http://127.0.0.1:9"))  # nothing listens
    send(world, "alertmanager", alertmanager_body())
    world.advance(minutes=45)
    with world.db.session() as session:
        rows = session.exec(select(WebhookDelivery)).all()
        assert {r.status for r in rows} == {"pending"}
        assert all(r.last_error.startswith("connection") for r in rows)
    for _ in range(8):  # 40 minutes of failures: nobody has the page, so the hooks keep trying
        world.advance(minutes=5)
    with world.db.session() as session:
        rows = session.exec(select(WebhookDelivery)).all()
        assert [(r.action, r.status) for r in rows] == [("trigger", "pending")] * 2
        assert min(r.attempts for r in rows) >= 8
    assert [kind for kind, _ in timeline(world, 1)].count("webhook_failing") == 2  # once a hook
    post = text_of(pages_in(world, INFRA)[0])
    assert "webhook failing" in post and "still trying" in post

    # Someone answers in Slack: ringing a phone is moot, the acknowledgement is what to send.
    world.slack.press(dms(world, PRIMARY)[0], "page.acknowledge", PRIMARY)
    world.advance(minutes=5)
    with world.db.session() as session:
        states = {(r.action, r.status) for r in session.exec(select(WebhookDelivery)).all()}
    assert ("trigger", "superseded") in states and ("acknowledge", "pending") in states
    assert "webhook_failed" not in [kind for kind, _ in timeline(world, 1)]

    # Resolved: the resolve is retried for a day, then the page says the hook never took it.
    with world.db.session() as session:
        lifecycle.resolve(world.runtime, session, 1, PRIMARY, classification="business_impacting")
    for _ in range(26):
        world.advance(hours=1)
    with world.db.session() as session:
        rows = session.exec(
            select(WebhookDelivery).where(WebhookDelivery.action == "resolve")
        ).all()
        assert [r.status for r in rows] == ["failed", "failed"]
        assert all("gave up after" in (r.last_error or "") for r in rows)
    assert [k for k, _ in timeline(world, 1)].count("webhook_failed") == 2


def test_the_webhook_sender_loop_delivers_without_waiting_for_a_scheduler_tick(hooked, receiver):
    """`serve` and `worker` run the sender's own loop: a page's webhook goes out within a
    second of the request that queued it, not at the scheduler's next tick."""
    from bot.paging import service

    sender = hooked.runtime.extras["paging.webhooks"]
    assert sender in hooked.runtime.loops
    sender.interval = 0.05
    with hooked.db.session() as session:
        page = service.trigger_page(
            hooked.runtime, session, policy_id="infra-default", summary="Disk full on db-1"
        )
        service.run_chain(hooked.runtime, session, page, 3, hooked.clock.now())  # the pd step
    sender.start()
    try:
        deadline = time.monotonic() + 10
        while not receiver.to("/pd") and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sender.stop()
    assert [r["json"]["event_action"] for r in receiver.to("/pd")] == ["trigger"]


# ---- config ------------------------------------------------------------------------------------


def test_config_check_names_an_unknown_webhook_and_a_pagerduty_hook_without_its_key():
    text = org_with_webhooks("http://127.0.0.1:1").replace("webhook:gateway", "webhook:gatewy")
    text = text.replace(", routing_key_env: TEST_PD_KEY", "")
    report = check_org_text(text)
    messages = [str(issue) for issue in report.errors]
    assert any("unknown webhook 'gatewy'" in m and "steps[4].notify" in m for m in messages)
    assert any("webhooks[0].routing_key_env" in m for m in messages)


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        ("{id: x, format: opsgenie, url: https://a.example.com}", "format"),
        ("{id: x, format: json, url: ftp://a.example.com}", "is not an http(s) URL"),
        ("{id: x, format: json}", "a json webhook needs a url"),
    ],
)
def test_config_check_refuses_a_bad_webhook(hook, message):
    report = check_org_text(sample_org_text() + f"\nwebhooks:\n  - {hook}\n")
    assert any(message in str(issue) for issue in report.errors), report.errors


def test_a_page_stood_down_by_its_closed_source_or_cleared_alert_resolves_in_pagerduty(
    hooked, receiver
):
    from bot.paging import lifecycle
    from tests.paging_samples import alertmanager_alert

    send(hooked, "alertmanager", alertmanager_body())
    send(hooked, "generic", {"summary": "Backups failing", "labels": {"team": "infra"}})
    hooked.advance(minutes=45)
    with hooked.db.session() as session:
        lifecycle.stand_down(hooked.runtime, session, 2, None, "its support request was resolved")
    send(hooked, "alertmanager", alertmanager_body(alertmanager_alert(status="resolved")))
    hooked.tick()
    events = [(r["json"]["dedup_key"], r["json"]["event_action"]) for r in receiver.to("/pd")]
    assert ("opsbot-page-1", "resolve") in events and ("opsbot-page-2", "resolve") in events
