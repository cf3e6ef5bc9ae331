"""Prometheus metrics for the process, exported at GET /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

inbox_events = Counter(
    "opsbot_inbox_events_total", "Slack requests recorded in the inbox", ["kind"], registry=REGISTRY
)
inbox_duplicates = Counter(
    "opsbot_inbox_duplicates_total",
    "Slack retries or replays recognised and skipped",
    ["kind"],
    registry=REGISTRY,
)
outbox_sent = Counter(
    "opsbot_outbox_sent_total", "Outbox messages delivered to Slack", ["method"], registry=REGISTRY
)
outbox_failed = Counter(
    "opsbot_outbox_failed_total", "Outbox messages given up on", ["method"], registry=REGISTRY
)
outbox_retries = Counter(
    "opsbot_outbox_retries_total",
    "Outbox deliveries postponed for a retry",
    ["reason"],
    registry=REGISTRY,
)
outbox_pending = Gauge(
    "opsbot_outbox_pending", "Outbox messages waiting to be sent", registry=REGISTRY
)
job_runs = Counter(
    "opsbot_job_runs_total", "Scheduled firings run", ["job", "outcome"], registry=REGISTRY
)
timers_fired = Counter(
    "opsbot_timers_fired_total", "Timers fired", ["kind", "outcome"], registry=REGISTRY
)
send_latency = Histogram(
    "opsbot_slack_call_seconds", "Slack Web API call latency", ["method"], registry=REGISTRY
)


def render() -> bytes:
    return generate_latest(REGISTRY)
