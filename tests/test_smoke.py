"""The app answers through Slack's own request shapes: signatures, retries, health, metrics."""

from __future__ import annotations

import json
import time

from bot.demo.driver import sign


def test_app_home_is_published_when_opened(world):
    world.slack.home_opened("U0ENG00001")
    published = world.fake.calls_to("views.publish")
    assert len(published) == 1
    assert published[0].args["user_id"] == "U0ENG00001"


def test_retried_event_is_acted_on_once(world):
    event = {
        "type": "app_home_opened",
        "user": "U0ENG00002",
        "channel": "D0ENG00002",
        "tab": "home",
        "event_ts": "1.1",
    }
    first = world.slack.event(event, event_id="Ev0SAME0001")
    retry = world.slack.event(event, event_id="Ev0SAME0001", retry_num=1)
    assert first.status_code == 200 and retry.status_code == 200
    assert len(world.fake.calls_to("views.publish")) == 1


def test_bad_signature_is_rejected_with_401(world):
    body = json.dumps({"type": "event_callback", "event_id": "Ev1", "event": {}})
    response = world.slack.post(body, "application/json", signature="v0=deadbeef")
    assert response.status_code == 401


def test_stale_signature_is_rejected_with_401(world):
    body = json.dumps(
        {
            "type": "event_callback",
            "event_id": "Ev2",
            "event": {"type": "app_home_opened", "user": "U0ENG00001"},
        }
    )
    old = int(time.time()) - 3600
    response = world.slack.post(
        body,
        "application/json",
        timestamp=old,
        signature=sign("demo-signing-secret", str(old), body),
    )
    assert response.status_code == 401
    assert not world.fake.calls_to("views.publish")


def test_healthz_and_metrics(world):
    assert world.http.get("/healthz").json() == {"status": "ok"}
    world.slack.home_opened("U0ENG00001")
    metrics = world.http.get("/metrics").text
    assert 'opsbot_inbox_events_total{kind="event"}' in metrics
