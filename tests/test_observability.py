"""What an operator watches: /metrics by route and Slack request kind, paging figures, timer lag,
outbox depth from the database on every replica, Slack errors by code, /healthz and /readyz, and
the log line each change of a page writes."""

from __future__ import annotations

import logging

from prometheus_client.parser import text_string_to_metric_families

from bot.app import build_bolt_app, build_http_app
from bot.db import Database
from bot.health import HEARTBEATS, Heartbeat, watch_workers
from bot.metrics import slack_request_kind
from handlers import build_runtime
from tests.paging_samples import alertmanager_body
from tests.test_paging import PRIMARY, dms, send


def scrape(http) -> dict[tuple[str, tuple], float]:
    response = http.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def grew(before, after, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


# ---- requests ----------------------------------------------------------------------------------


def test_requests_are_counted_and_timed_by_route_and_slack_request_kind(world):
    before = scrape(world.http)
    world.slack.command("/oncall", "", user=PRIMARY)
    world.slack.home_opened(PRIMARY)
    send(world, "grafana", {"alerts": []}, token="wrong")
    after = scrape(world.http)
    route = "/slack/events"
    assert (
        grew(
            before,
            after,
            "opsbot_http_requests_total",
            route=route,
            kind="command:/oncall",
            status="200",
        )
        == 1
    )
    assert (
        grew(
            before,
            after,
            "opsbot_http_requests_total",
            route=route,
            kind="event:app_home_opened",
            status="200",
        )
        == 1
    )
    assert (
        grew(
            before, after, "opsbot_http_request_seconds_count", route=route, kind="command:/oncall"
        )
        == 1
    )
    # A route template, not the path: one series for every source.
    assert (
        grew(
            before,
            after,
            "opsbot_http_requests_total",
            route="/alerts/{source}",
            kind="none",
            status="401",
        )
        == 1
    )


def test_the_kind_of_slack_request_is_read_from_its_body():
    assert slack_request_kind(b'{"type":"url_verification","challenge":"x"}') == "url_verification"
    assert slack_request_kind(b'{"type":"event_callback","event":{"type":"message"}}') == (
        "event:message"
    )
    assert slack_request_kind(b"command=%2Fpage&text=infra") == "command:/page"
    assert slack_request_kind(b"payload=%7B%22type%22%3A%22view_submission%22%7D") == (
        "view_submission"
    )
    assert slack_request_kind(b"{not json") == "unknown"


# ---- paging ------------------------------------------------------------------------------------


def test_alerts_pages_acknowledgements_and_time_to_acknowledge_are_counted(world):
    before = scrape(world.http)
    send(world, "alertmanager", alertmanager_body())
    send(world, "alertmanager", alertmanager_body())  # the same fingerprint: a repeat
    world.advance(minutes=4)
    world.slack.press(dms(world, PRIMARY)[0], "page.acknowledge", PRIMARY)
    after = scrape(world.http)
    assert (
        grew(before, after, "opsbot_alerts_received_total", source="alertmanager", action="opened")
        == 1
    )
    assert (
        grew(
            before, after, "opsbot_alerts_received_total", source="alertmanager", action="repeated"
        )
        == 1
    )
    assert grew(before, after, "opsbot_pages_opened_total", source="alertmanager") == 1
    assert grew(before, after, "opsbot_pages_acknowledged_total") == 1
    assert grew(before, after, "opsbot_page_time_to_acknowledge_seconds_count") == 1
    assert grew(before, after, "opsbot_page_time_to_acknowledge_seconds_sum") == 240
    assert grew(before, after, "opsbot_page_time_to_acknowledge_seconds_bucket", le="300.0") == 1
    assert grew(before, after, "opsbot_page_time_to_acknowledge_seconds_bucket", le="120.0") == 0


def test_escalations_and_timer_lag_are_measured(world):
    before = scrape(world.http)
    send(world, "alertmanager", alertmanager_body())
    world.clock.advance(minutes=17)  # the worker was away: the 15-minute step fires 2 min late
    world.runtime.scheduler.tick()
    world.settle()
    after = scrape(world.http)
    assert grew(before, after, "opsbot_page_escalations_total", reason="timeout") == 1
    lag = "opsbot_timer_lag_seconds"
    assert grew(before, after, f"{lag}_count", kind="page.escalate") >= 1
    assert grew(before, after, f"{lag}_bucket", kind="page.escalate", le="60.0") == 0
    assert grew(before, after, f"{lag}_bucket", kind="page.escalate", le="120.0") == 1


def test_each_change_of_a_page_is_one_log_line_with_its_ids(world, caplog):
    caplog.set_level(logging.INFO, logger="bot.paging")
    page_id = send(world, "alertmanager", alertmanager_body()).json()["page_ids"][0]
    world.slack.press(dms(world, PRIMARY)[0], "page.acknowledge", PRIMARY)
    lines = [
        (r.getMessage(), getattr(r, "page_id", None))
        for r in caplog.records
        if r.name == "bot.paging"
    ]
    assert ("page opened", page_id) in lines
    assert ("page acknowledged", page_id) in lines
    (acked,) = [r for r in caplog.records if r.getMessage() == "page acknowledged"]
    assert (acked.by, acked.policy, acked.team) == (PRIMARY, "infra-default", "infra")


# ---- outbox and Slack --------------------------------------------------------------------------


def test_outbox_depth_and_oldest_age_come_from_the_database_alike_on_every_replica(world):
    world.fake.fail("chat.postMessage", status=503, times=10)
    send(world, "alertmanager", alertmanager_body())  # its DM and channel post now wait
    world.clock.advance(seconds=90)
    replica = build_runtime(
        world.settings, org=world.org, clock=world.clock, db=Database(world.settings.database_url)
    )
    try:
        other = build_http_app(replica, build_bolt_app(replica))
        from starlette.testclient import TestClient

        for http in (world.http, TestClient(other)):
            samples = scrape(http)
            assert value(samples, "opsbot_outbox_pending") == 2
            assert value(samples, "opsbot_outbox_oldest_pending_age_seconds") == 90
            assert value(samples, "opsbot_database_up") == 1
    finally:
        replica.db.dispose()


def test_slack_api_errors_are_counted_by_method_and_code(world):
    before = scrape(world.http)
    world.fake.fail("chat.postMessage", error="channel_not_found")
    send(world, "alertmanager", alertmanager_body())
    after = scrape(world.http)
    assert (
        grew(
            before,
            after,
            "opsbot_slack_api_errors_total",
            method="chat.postMessage",
            error="channel_not_found",
        )
        == 1
    )


# ---- health ------------------------------------------------------------------------------------


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_healthz_is_503_when_the_scheduler_stops_beating(world):
    ticks = Ticks()
    beat = Heartbeat("scheduler", allowed=120, monotonic=ticks)
    world.runtime.scheduler.after_tick.append(beat.beat)
    world.runtime.extras[HEARTBEATS] = [beat]
    world.runtime.scheduler.tick()
    ticks.now += 119
    assert world.http.get("/healthz").status_code == 200
    ticks.now += 2
    response = world.http.get("/healthz")
    assert response.status_code == 503
    assert response.json()["problems"] == ["the scheduler has not completed a round for 121s"]
    world.runtime.scheduler.tick()  # it beats again: healthy again
    assert world.http.get("/healthz").json() == {"status": "ok"}


def test_healthz_is_503_when_the_outbox_sender_thread_died(world):
    watch_workers(world.runtime)
    world.runtime.outbox.start(interval=0.01)
    world.runtime.outbox.stop()
    response = world.http.get("/healthz")
    assert response.status_code == 503
    assert "the outbox sender thread has stopped" in response.json()["problems"]


def test_a_replica_without_workers_is_healthy_on_the_database_alone(world):
    assert HEARTBEATS not in world.runtime.extras
    assert world.http.get("/healthz").json() == {"status": "ok"}


def test_readyz_says_ready_only_at_the_newest_schema(world, tmp_path):
    assert world.http.get("/readyz").json() == {"status": "ready"}
    fresh = Database(f"sqlite:///{tmp_path / 'new.db'}")  # no revision applied yet
    runtime = build_runtime(world.settings, org=world.org, clock=world.clock, db=fresh)
    try:
        from starlette.testclient import TestClient

        http = TestClient(build_http_app(runtime, build_bolt_app(runtime)))
        response = http.get("/readyz")
        assert response.status_code == 503
        assert response.json()["error"].startswith("the database has no schema yet")
        fresh.upgrade()
        assert http.get("/readyz").status_code == 200
    finally:
        fresh.dispose()


# ---- the other state changes an operator reads in the log --------------------------------------


def fields(record: logging.LogRecord, *names: str) -> tuple:
    return tuple(getattr(record, name, None) for name in names)


def test_sla_reminder_and_breach_are_logged_with_the_ticket(world, caplog):
    caplog.set_level(logging.INFO, logger="bot.support")
    world.slack.message("C0HELP00001", "U0APP00001", "Deploys to staging fail with a 503")
    world.advance(hours=3, minutes=1)  # past 75 % of the 4-hour first response
    world.advance(hours=1)  # breached
    lines = [r for r in caplog.records if r.name == "bot.support"]
    reminder = [r for r in lines if r.getMessage() == "SLA reminder"]
    breach = [r for r in lines if r.getMessage() == "SLA breached"]
    assert len(reminder) == 1 and len(breach) == 1
    assert fields(reminder[0], "ticket_id", "queue", "target", "assignee") == (
        1,
        "infra-help",
        "first_response",
        "U0ENG00004",
    )
    assert breach[0].levelno == logging.WARNING and breach[0].ticket_id == 1


def test_a_handoff_is_logged_with_who_hands_over_to_whom(world, caplog):
    caplog.set_level(logging.INFO, logger="bot.oncall")
    world.advance(minutes=31)  # 10:00 New York: Bob hands over to Carla
    (line,) = [r for r in caplog.records if r.getMessage() == "handoff"]
    assert fields(line, "rotation", "outgoing", "incoming", "secondary") == (
        "infra-oncall",
        "U0ENG00002",
        "U0ENG00003",
        "U0ENG00012",
    )


def test_an_outbox_give_up_is_a_warning_with_the_key_method_and_slack_error(world, caplog):
    caplog.set_level(logging.INFO, logger="bot.outbox")
    world.fake.fail("chat.postMessage", error="channel_not_found", times=5)
    send(world, "alertmanager", alertmanager_body())
    gave_up = [r for r in caplog.records if r.getMessage() == "outbox gave up"]
    assert gave_up and all(r.levelno == logging.WARNING for r in gave_up)
    assert gave_up[0].method == "chat.postMessage"
    assert "channel_not_found" in gave_up[0].error
    assert gave_up[0].key.startswith("page:")


def test_a_worker_serves_its_own_health_and_metrics(world):
    from starlette.testclient import TestClient

    from bot.health import worker_http_app

    ticks = Ticks()
    beat = Heartbeat("scheduler", allowed=120, monotonic=ticks)
    world.runtime.extras[HEARTBEATS] = [beat]
    http = TestClient(worker_http_app(world.runtime))
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").json() == {"status": "ready"}
    assert "opsbot_timer_lag_seconds" in http.get("/metrics").text
    assert http.post("/slack/events").status_code == 404  # no Slack endpoints on a worker
    ticks.now += 121
    assert http.get("/healthz").status_code == 503


def test_healthz_is_503_when_the_inbox_sweeper_thread_died(world):
    import threading

    from bot.app import inbox_worker

    sweeper = inbox_worker(world.runtime)
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()
    sweeper._thread = dead  # its loop ended, as an uncaught error would end it
    try:
        response = world.http.get("/healthz")
        assert response.status_code == 503
        assert response.json()["problems"] == ["the inbox sweeper thread has stopped"]
    finally:
        sweeper._thread = None
