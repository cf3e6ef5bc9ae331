"""Prometheus metrics, exported at GET /metrics by every `serve` replica.

Counters and histograms count what this process did (sum them over replicas and the worker);
gauges about shared state (outbox depth, overdue timers, open pages) are read from the database
at scrape time (`DatabaseCollector`), so every replica reports the same, correct figures. The
names are listed in the README's operating guide.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import select
from starlette.routing import Match

if TYPE_CHECKING:
    from bot.db import Database

REGISTRY = CollectorRegistry(auto_describe=True)

# Slack's 3-second rule is about the ack, so the buckets are fine below 3 s.
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
_ACK_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400)
_LAG_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)

# ---- HTTP ---------------------------------------------------------------------------------------
http_requests = Counter(
    "opsbot_http_requests_total",
    "HTTP requests answered, by route, Slack request kind and status",
    ["route", "kind", "status"],
    registry=REGISTRY,
)
http_latency = Histogram(
    "opsbot_http_request_seconds",
    "Time to answer an HTTP request (for /slack/events: the ack Slack waits 3 s for)",
    ["route", "kind"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)

# ---- inbox and alerts ---------------------------------------------------------------------------
inbox_events = Counter(
    "opsbot_inbox_events_total", "Slack requests recorded in the inbox", ["kind"], registry=REGISTRY
)
inbox_duplicates = Counter(
    "opsbot_inbox_duplicates_total",
    "Slack retries or replays recognised and skipped",
    ["kind"],
    registry=REGISTRY,
)
alerts_received = Counter(
    "opsbot_alerts_received_total",
    "Alerts received on /alerts/{source}, by source and what became of them",
    ["source", "action"],
    registry=REGISTRY,
)

# ---- paging -------------------------------------------------------------------------------------
pages_opened = Counter(
    "opsbot_pages_opened_total",
    "Pages opened, by origin (alert source or manual)",
    ["source"],
    registry=REGISTRY,
)
pages_acknowledged = Counter(
    "opsbot_pages_acknowledged_total", "Pages acknowledged", registry=REGISTRY
)
time_to_acknowledge = Histogram(
    "opsbot_page_time_to_acknowledge_seconds",
    "From a page opening to its first acknowledgement",
    buckets=_ACK_BUCKETS,
    registry=REGISTRY,
)
escalations = Counter(
    "opsbot_page_escalations_total",
    "Escalations: `timeout` (nobody acknowledged in time), `manual` (Escalate pressed), "
    "`exhausted` (every step notified)",
    ["reason"],
    registry=REGISTRY,
)
pages_resolved = Counter("opsbot_pages_resolved_total", "Pages resolved", registry=REGISTRY)

# ---- outbox and Slack ---------------------------------------------------------------------------
outbox_sent = Counter(
    "opsbot_outbox_sent_total", "Outbox messages delivered to Slack", ["method"], registry=REGISTRY
)
outbox_failed = Counter(
    "opsbot_outbox_failed_total", "Outbox messages given up on", ["method"], registry=REGISTRY
)
outbox_expired = Counter(
    "opsbot_outbox_expired_total",
    "Outbox messages dropped unsent because they were no longer useful",
    registry=REGISTRY,
)
outbox_retries = Counter(
    "opsbot_outbox_retries_total",
    "Outbox deliveries postponed for a retry",
    ["reason"],
    registry=REGISTRY,
)
# The depth is exported from the database at scrape time (opsbot_outbox_pending); this per-process
# gauge is kept, unexported, so that older callers of `outbox_pending.set()` keep working.
outbox_pending = Gauge("opsbot_outbox_pending_process", "unexported", registry=None)
send_latency = Histogram(
    "opsbot_slack_call_seconds",
    "Latency of the outbox's Slack Web API calls",
    ["method"],
    registry=REGISTRY,
)
slack_api_errors = Counter(
    "opsbot_slack_api_errors_total",
    "Slack Web API calls that failed, by method and Slack's error code (`http_NNN` without one)",
    ["method", "error"],
    registry=REGISTRY,
)

# ---- scheduler ----------------------------------------------------------------------------------
job_runs = Counter(
    "opsbot_job_runs_total", "Scheduled firings run", ["job", "outcome"], registry=REGISTRY
)
timers_fired = Counter(
    "opsbot_timers_fired_total", "Timers fired", ["kind", "outcome"], registry=REGISTRY
)
timer_lag = Histogram(
    "opsbot_timer_lag_seconds",
    "How late a timer or scheduled job fired: when it ran minus when it was due",
    ["kind"],
    buckets=_LAG_BUCKETS,
    registry=REGISTRY,
)


def observe_lag(kind: str, due: datetime, now: datetime | None = None) -> None:
    fired = now or datetime.now(UTC)
    timer_lag.labels(kind).observe(max(0.0, (fired - due).total_seconds()))


class InstrumentedWebClient(WebClient):
    """The real slack_sdk WebClient, counting Slack's errors by method and code.

    Every method of WebClient goes through `api_call`, so this sees outbox posts, lookups,
    views and user-group updates alike.
    """

    def api_call(self, api_method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().api_call(api_method, *args, **kwargs)
        except SlackApiError as exc:
            response = exc.response
            code = response.get("error") if isinstance(response.data, dict) else None
            slack_api_errors.labels(api_method, code or f"http_{response.status_code}").inc()
            raise


class DatabaseCollector(Collector):
    """Gauges read from the database when Prometheus scrapes: the same on every replica."""

    def __init__(self, db: Database, now: Callable[[], datetime]) -> None:
        self.db = db
        self.now = now

    def describe(self) -> list:
        return []  # collected on demand only (no query at registration)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from bot.outbox import OutboxMessage
        from bot.scheduler import Timer

        depth = GaugeMetricFamily(
            "opsbot_outbox_pending", "Outbox messages waiting to be sent (from the database)"
        )
        oldest = GaugeMetricFamily(
            "opsbot_outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox message still waiting (0 when none)",
        )
        overdue = GaugeMetricFamily(
            "opsbot_timers_overdue",
            "Pending timers more than a minute past due (a stalled worker shows here)",
        )
        up = GaugeMetricFamily(
            "opsbot_database_up", "1 when the scrape could read the database, else 0"
        )
        now = self.now()
        try:
            with self.db.session() as session:
                count, first = session.exec(
                    select(func.count(), func.min(OutboxMessage.created_at)).where(
                        OutboxMessage.status == "pending"
                    )
                ).one()
                late = session.exec(
                    select(func.count())
                    .select_from(Timer)
                    .where(Timer.status == "pending", Timer.due_at < now - timedelta(minutes=1))
                ).one()
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        depth.add_metric([], count)
        oldest.add_metric([], max(0.0, (now - first).total_seconds()) if first else 0.0)
        overdue.add_metric([], late)
        up.add_metric([], 1)
        yield from (depth, oldest, overdue, up)


def render(*extra: CollectorRegistry) -> bytes:
    """The process's metrics, then any per-app registries (the database gauges)."""
    return generate_latest(REGISTRY) + b"".join(generate_latest(r) for r in extra)


# ---- HTTP middleware ----------------------------------------------------------------------------

_PEEK = 64 * 1024  # enough of a Slack body to read its type; larger ones are "unknown"


SLACK_KIND = "opsbot.slack_kind"  # ASGI scope key: the kind, from the body /slack/events parsed


def kind_of(data: dict[str, Any]) -> str:
    """The metrics label for a parsed Slack request body."""
    if "command" in data and "type" not in data:
        return f"command:{data['command']}"
    if data.get("type") == "event_callback":
        return f"event:{(data.get('event') or {}).get('type', 'unknown')}"
    return str(data.get("type") or "unknown")


def slack_request_kind(body: bytes) -> str:
    """What Slack sent, for the metrics label: `event:app_mention`, `command:/page`,
    `block_actions`, `view_submission`, `url_verification`... or `unknown`."""
    try:
        if body.lstrip().startswith(b"{"):
            data = json.loads(body)
        else:
            form = {name: values[0] for name, values in parse_qs(body.decode("utf-8")).items()}
            data = (
                json.loads(form["payload"]) if "payload" in form and "command" not in form else form
            )
        return kind_of(data)
    except (ValueError, AttributeError, UnicodeDecodeError, RecursionError):
        pass  # unsigned and unparsed yet: /slack/events refuses it; the label only says unknown
    return "unknown"


class RequestMetrics:
    """ASGI middleware: counts and times every request by route template, status and, for
    /slack/events, the kind of Slack request. It only peeks at the body as it streams past."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        is_slack = scope.get("path") == "/slack/events"
        body = bytearray()
        status = 500

        async def peek(message: dict | None = None) -> dict:
            message = await receive()
            if is_slack and message.get("type") == "http.request" and len(body) < _PEEK:
                body.extend(message.get("body", b"")[: _PEEK - len(body)])
            return message

        async def watch(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, peek, watch)
        finally:
            route = _route_template(scope)
            kind = scope.get(SLACK_KIND)  # set by /slack/events once it parsed the body
            if kind is None:  # refused before that (unsigned, too big): peek at what arrived
                kind = slack_request_kind(bytes(body)) if is_slack and body else "none"
            http_requests.labels(route, kind, str(status)).inc()
            http_latency.labels(route, kind).observe(time.perf_counter() - started)


def _route_template(scope: dict) -> str:
    """`/alerts/{source}` rather than `/alerts/grafana`, so the label set stays small."""
    app = scope.get("app")
    for route in getattr(app, "routes", []):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return getattr(route, "path", "unmatched")
    return "unmatched"
