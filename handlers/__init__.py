"""Bolt listeners and HTTP endpoints, one module per capability, wired in one place."""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from starlette.routing import BaseRoute

from bot.runtime import Runtime
from handlers import alerts, home, oncall, paging, support, wins


def register_listeners(app: App, runtime: Runtime) -> None:
    oncall.register(app, runtime)
    paging.register(app, runtime)
    support.register(app, runtime)
    wins.register(app, runtime)
    home.register(
        app,
        runtime,
        sections=[
            oncall.home_section,
            paging.home_section,
            support.home_section,
            wins.home_section,
        ],
    )


def http_routes(runtime: Runtime) -> list[BaseRoute]:
    return [*alerts.routes(runtime), *oncall.http_routes(runtime)]


def manifest_parts() -> list[dict[str, Any]]:
    """What each capability needs from Slack: commands, shortcuts, scopes, events."""
    return [oncall.MANIFEST, paging.MANIFEST, support.MANIFEST, wins.MANIFEST]
