"""The foundation every capability works with: settings, org config, clock, database, Slack
client, outbox, scheduler and directory, built once per process (or per test) and passed
explicitly to handlers, jobs and HTTP endpoints.

This module knows no capability. `handlers.build_runtime` (the one registration point) builds a
runtime with `assemble` and then installs every capability into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient

from bot.clock import Clock, SystemClock
from bot.config import OrgConfig
from bot.db import Database
from bot.directory import Directory
from bot.metrics import InstrumentedWebClient
from bot.outbox import OutboxSender
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


def make_slack_client(settings: Settings) -> WebClient:
    # Rate limits are honoured by the outbox (Retry-After on the row), so the client itself only
    # retries connection errors, its default.
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
) -> Runtime:
    """The foundation alone, with no capability installed (see `handlers.build_runtime`)."""
    clock = clock or SystemClock()
    client = client or make_slack_client(settings)
    db = db or Database(settings.database_url)
    return Runtime(
        settings=settings,
        org=org,
        db=db,
        clock=clock,
        slack=client,
        outbox=OutboxSender(db, client, clock),
        scheduler=Scheduler(db, clock),
        directory=Directory(db, client, clock),
    )
