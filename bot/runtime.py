"""The foundation every capability works with: settings, org config, clock, database, Slack
client, outbox, scheduler and directory, built once per process (or per test) and passed
explicitly to handlers, jobs and HTTP endpoints.

This module knows no capability. `handlers.build_runtime` (the one registration point) builds a
runtime with `assemble` and then installs every capability into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk import WebClient
from sqlmodel import Session

from bot.clock import Clock, SystemClock
from bot.config import OrgConfig
from bot.db import Database
from bot.directory import Directory
from bot.metrics import InstrumentedWebClient
from bot.outbox import OutboxSender
from bot.outbox.health import Audience
from bot.outbox.limits import RateLimiter, SlackLimits
from bot.scheduler import Scheduler
from bot.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    org: OrgConfig
    db: Database
    clock: Clock
    slack: WebClient
    outbox: OutboxSender
    scheduler: Scheduler
    directory: Directory
    # Capabilities may keep process-wide objects here (e.g. a runbook index) by name.
    extras: dict[str, Any] = field(default_factory=dict)
    # Background loops a capability adds (objects with start() and stop()); they run wherever
    # the scheduler and the outbox run (`serve` without --no-worker, `worker`, `socket`).
    loops: list[Any] = field(default_factory=list)


def outage_audience(runtime: Runtime) -> Audience:
    """Who hears that a Slack outage is over: the platform team's channel, else the admins."""

    def audience(session: Session) -> tuple[list[str], ZoneInfo]:
        org = runtime.org
        zone = ZoneInfo(org.timezone)
        team_id = org.platform_migrations.platform_team
        team = next((t for t in org.teams if t.id == team_id), None)
        if team is not None and team.channel:
            return [team.channel], zone
        return [runtime.directory.user_id(a, session) for a in org.admins], zone

    return audience


def make_slack_client(settings: Settings) -> WebClient:
    # Rate limits are honoured by the outbox (it paces itself and pauses a method on 429), so
    # the client itself only retries connection errors, its default.
    return InstrumentedWebClient(
        token=settings.slack_bot_token or "xoxb-unset", base_url=settings.slack_api_url
    )


def assemble(
    settings: Settings,
    org: OrgConfig,
    *,
    clock: Clock | None = None,
    client: WebClient | None = None,
    db: Database | None = None,
    pace_slack: bool = True,
) -> Runtime:
    """The foundation alone, with no capability installed (see `handlers.build_runtime`).

    `pace_slack=False` (tests, the demo) sends without real-time pacing: a frozen clock only moves
    when told to.
    """
    clock = clock or SystemClock()
    client = client or make_slack_client(settings)
    db = db or Database(settings.database_url)
    runtime = Runtime(
        settings=settings,
        org=org,
        db=db,
        clock=clock,
        slack=client,
        outbox=OutboxSender(
            db,
            client,
            clock,
            limiter=RateLimiter(SlackLimits.published(), margin=0.95, spare=1)
            if pace_slack
            else None,
        ),
        scheduler=Scheduler(db, clock),
        directory=Directory(db, client, clock),
    )
    runtime.outbox.health.audience = outage_audience(runtime)
    return runtime
