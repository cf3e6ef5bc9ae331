"""The HTTP surface: /slack/events verifies Slack's signature, /healthz and /metrics answer operators.

(Bad and stale signatures on a well-formed event are in test_smoke.py.)
"""

from __future__ import annotations

import json
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.db import Database
from bot.demo.driver import sign
from bot.demo.world import SIGNING_SECRET

EVENT = json.dumps(
    {
        "type": "event_callback",
        "event_id": "Ev0HTTP0001",
        "team_id": "T0OPSBOT01",
        "event": {
            "type": "app_home_opened",
            "user": "U0ENG00001",
            "tab": "home",
            "event_ts": "1.1",
        },
    }
)


def now() -> str:
    return str(int(time.time()))


# ---- /healthz ---------------------------------------------------------------------------------------


def test_healthz_is_200_json_when_the_database_answers(world):
    response = world.http.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status": "ok"}


def test_healthz_is_503_json_when_the_database_is_unreachable(world, tmp_path):
    healthy = world.runtime.db
    world.runtime.db = Database(f"sqlite:///{tmp_path / 'no-such-dir' / 'opsbot.db'}")
    try:
        response = world.http.get("/healthz")
    finally:
        world.runtime.db.dispose()
        world.runtime.db = healthy
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "error": "database does not answer",
        "problems": ["database does not answer"],
    }
    assert world.http.get("/healthz").status_code == 200  # and recovers with the database


# ---- /metrics ---------------------------------------------------------------------------------------


def test_metrics_are_prometheus_text(world):
    world.slack.home_opened("U0ENG00001")
    response = world.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    for name in (
        "opsbot_inbox_events",
        "opsbot_inbox_duplicates",
        "opsbot_outbox_sent",
        "opsbot_outbox_failed",
        "opsbot_outbox_retries",
        "opsbot_outbox_pending",
        "opsbot_job_runs",
        "opsbot_timers_fired",
        "opsbot_slack_call_seconds",
    ):
        assert name in families, f"{name} missing from /metrics"
    inbox = {
        s.labels["kind"]: s.value
        for s in families["opsbot_inbox_events"].samples
        if s.name.endswith("_total")
    }
    assert inbox["event"] >= 1


def test_metrics_count_a_retry_as_a_duplicate(world):
    def duplicates() -> float:
        text = world.http.get("/metrics").text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "opsbot_inbox_duplicates_total" and sample.labels == {
                    "kind": "event"
                }:
                    return sample.value
        return 0.0

    before = duplicates()
    event = {"type": "app_home_opened", "user": "U0ENG00002", "tab": "home", "event_ts": "1.2"}
    world.slack.event(event, event_id="Ev0DUP00001")
    world.slack.event(event, event_id="Ev0DUP00001", retry_num=1)
    assert duplicates() == before + 1


# ---- /slack/events ----------------------------------------------------------------------------------


def test_url_verification_challenge_is_answered(world):
    body = json.dumps({"type": "url_verification", "token": "t", "challenge": "3eZbrw1aB"})
    response = world.slack.post(body, "application/json")
    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aB"}


def test_url_verification_needs_a_valid_signature_too(world):
    body = json.dumps({"type": "url_verification", "token": "t", "challenge": "3eZbrw1aB"})
    response = world.slack.post(body, "application/json", signature="v0=" + "1" * 64)
    assert response.status_code == 401
    assert "3eZbrw1aB" not in response.text


def test_ssl_check_is_answered(world):
    response = world.slack.post("ssl_check=1&token=t", "application/x-www-form-urlencoded")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("case", "headers"),
    [
        ("no signature at all", {}),
        ("signed with another secret", "other-secret"),
        ("timestamp from the future", "future"),
        ("body changed after signing", "tampered"),
    ],
)
def test_requests_not_signed_by_slack_get_401(world, case, headers):
    ts = now()
    body = EVENT
    if headers == "other-secret":
        headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign("x", ts, body)}
    elif headers == "future":
        later = str(int(ts) + 3600)
        headers = {
            "X-Slack-Request-Timestamp": later,
            "X-Slack-Signature": sign(SIGNING_SECRET, later, body),
        }
    elif headers == "tampered":
        headers = {
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sign(SIGNING_SECRET, ts, body),
        }
        body = body.replace("U0ENG00001", "U0ENG00002")
    response = world.http.post(
        "/slack/events", content=body, headers={"Content-Type": "application/json", **headers}
    )
    assert response.status_code == 401, case
    assert not world.fake.calls_to("views.publish")


@pytest.mark.parametrize("signed", [True, False])
def test_a_body_that_is_not_json_gets_a_4xx_json_error_not_a_trace(world, signed):
    body = '{"type": "event_callback", '
    ts = now()
    headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": ts}
    headers["X-Slack-Signature"] = sign(SIGNING_SECRET if signed else "x", ts, body)
    response = world.http.post("/slack/events", content=body, headers=headers)
    assert response.status_code == (400 if signed else 401)
    assert "error" in response.json()
    assert "Traceback" not in response.text


def test_events_only_accepts_post(world):
    assert world.http.get("/slack/events").status_code == 405


def test_unknown_paths_are_404(world):
    assert world.http.get("/nope").status_code == 404
