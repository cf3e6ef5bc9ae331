"""The app factory's product: settings, org config, clock, database, Slack client, outbox, scheduler.

Built once per process (or per test) and passed explicitly to handlers, jobs and HTTP endpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient

from bot.clock import Clock, SystemClock
from bot.config import OrgConfig, load_org
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


# Each capability wires its scheduled jobs and timer handlers into the runtime here, in one place.
def _capability_installers() -> list[Callable[[Runtime], None]]:
    from bot.mail import install as install_mail
    from bot.oncall.jobs import install as install_oncall
    from bot.paging.service import install as install_paging
    from bot.paging.wins_news import install as install_paging_news
    from bot.support.schedule import install as install_support
    from bot.support.wins_news import install as install_support_news
    from bot.wins.jobs import install as install_wins

    installers: list[Callable[[Runtime], None]] = []
    installers.append(install_oncall)
    installers.append(install_paging)
    installers.append(install_support)
    installers.append(install_mail)
    installers.append(install_wins)
    installers.append(install_paging_news)
    installers.append(install_support_news)
    return installers


def build_runtime(
    settings: Settings,
    *,
    org: OrgConfig | None = None,
    clock: Clock | None = None,
    client: WebClient | None = None,
    db: Database | None = None,
) -> Runtime:
    clock = clock or SystemClock()
    client = client or make_slack_client(settings)
    db = db or Database(settings.database_url)
    runtime = Runtime(
        settings=settings,
        org=org if org is not None else load_org(settings.config_path),
        db=db,
        clock=clock,
        slack=client,
        outbox=OutboxSender(db, client, clock),
        scheduler=Scheduler(db, clock),
        directory=Directory(db, client, clock),
    )
    for install in _capability_installers():
        install(runtime)
    return runtime
