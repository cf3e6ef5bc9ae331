"""The one registration point: every capability, and what each plugs into the bot.

A capability is listed once, in `CAPABILITIES` below, with its config checks, its installer
(scheduled jobs, timer handlers, providers), its Bolt listeners, HTTP routes, App Home section
and Slack manifest part. Everything that needs "all capabilities" (building the runtime,
`opsbot config check`, the Bolt app, the HTTP app, App Home, `opsbot manifest`) reads this list,
so the core modules never import a capability and each module imports alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from starlette.routing import BaseRoute

from bot import mail
from bot.clock import Clock
from bot.config import ConfigReport, OrgCheck, OrgConfig, check_org_file, load_org
from bot.db import Database
from bot.oncall import jobs as oncall_jobs
from bot.oncall import rules as oncall_rules
from bot.paging import service as paging_service
from bot.paging import wins_news as paging_wins_news
from bot.platform_migrations import jobs as migration_jobs
from bot.runtime import Runtime, assemble
from bot.settings import Settings
from bot.support import schedule as support_schedule
from bot.support import wins_news as support_wins_news
from bot.wins import jobs as wins_jobs
from bot.wins import rules as wins_rules
from handlers import alerts, home, migrations, oncall, paging, support, wins

Installer = Callable[[Runtime], None]
Listeners = Callable[[App, Runtime], None]
Routes = Callable[[Runtime], list[BaseRoute]]


@dataclass(frozen=True)
class Capability:
    """What one capability plugs in; leave out what it does not have."""

    name: str
    checks: Sequence[OrgCheck] = ()  # semantic config checks (`opsbot config check`, start)
    installers: Sequence[Installer] = ()  # scheduled jobs, timer handlers, providers
    listeners: Listeners | None = None  # Bolt commands, actions, views, events
    routes: Routes | None = None  # Starlette routes beside /slack/events
    home_section: home.HomeSection | None = None  # its part of the App Home dashboard
    manifest: dict[str, Any] | None = None  # commands, shortcuts, scopes, events


# The order is the order of installation and of App Home sections.
CAPABILITIES: tuple[Capability, ...] = (
    Capability(
        "oncall",
        checks=oncall_rules.CHECKS,
        installers=(oncall_jobs.install,),
        listeners=oncall.register,
        routes=oncall.http_routes,
        home_section=oncall.home_section,
        manifest=oncall.MANIFEST,
    ),
    Capability(
        "paging",
        # paging_wins_news: the team's pages in the Wins and Challenges form's news.
        installers=(paging_service.install, paging_wins_news.install),
        listeners=paging.register,
        routes=alerts.routes,
        home_section=paging.home_section,
        manifest=paging.MANIFEST,
    ),
    Capability(
        "support",
        # support_wins_news: the team's tickets in the Wins and Challenges form's news.
        installers=(support_schedule.install, support_wins_news.install),
        listeners=support.register,
        home_section=support.home_section,
        manifest=support.MANIFEST,
    ),
    # Outgoing e-mail (digests): no Slack surface, only its delivery timers.
    Capability("mail", installers=(mail.install,)),
    Capability(
        "wins",
        checks=wins_rules.CHECKS,
        installers=(wins_jobs.install,),
        listeners=wins.register,
        home_section=wins.home_section,
        manifest=wins.MANIFEST,
    ),
    Capability(
        "platform_migrations",
        installers=(migration_jobs.install,),
        listeners=migrations.register,
        routes=migrations.http_routes,
        home_section=migrations.home_section,
        manifest=migrations.MANIFEST,
    ),
)


def org_checks() -> list[OrgCheck]:
    """Every capability's config checks (the cross-reference checks in bot.config always run)."""
    return [check for capability in CAPABILITIES for check in capability.checks]


def check_config(path: str | Path) -> ConfigReport:
    """`opsbot config check`: the file validated with every capability's checks."""
    return check_org_file(path, checks=org_checks())


def build_runtime(
    settings: Settings,
    *,
    org: OrgConfig | None = None,
    clock: Clock | None = None,
    client: WebClient | None = None,
    db: Database | None = None,
    pace_slack: bool = True,
) -> Runtime:
    """The runtime with every capability installed; the org is loaded and checked unless given."""
    if org is None:
        org = load_org(settings.config_path, checks=org_checks())
    runtime = assemble(settings, org, clock=clock, client=client, db=db, pace_slack=pace_slack)
    for capability in CAPABILITIES:
        for install in capability.installers:
            install(runtime)
    return runtime


def register_listeners(app: App, runtime: Runtime) -> None:
    for capability in CAPABILITIES:
        if capability.listeners is not None:
            capability.listeners(app, runtime)
    sections = [c.home_section for c in CAPABILITIES if c.home_section is not None]
    home.register(app, runtime, sections=sections, commands=slash_commands())


def http_routes(runtime: Runtime) -> list[BaseRoute]:
    return [
        route
        for capability in CAPABILITIES
        if capability.routes is not None
        for route in capability.routes(runtime)
    ]


def manifest_parts() -> list[dict[str, Any]]:
    """What each capability needs from Slack: commands, shortcuts, scopes, events."""
    return [c.manifest for c in CAPABILITIES if c.manifest is not None]


def slash_commands() -> list[str]:
    return [cmd["command"] for part in manifest_parts() for cmd in part.get("commands", [])]
