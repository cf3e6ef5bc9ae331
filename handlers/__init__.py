"""Bolt listeners and HTTP endpoints, one module per capability, wired in one place."""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from starlette.routing import BaseRoute

from bot.runtime import Runtime
from handlers import home


def register_listeners(app: App, runtime: Runtime) -> None:
    home.register(app, runtime, sections=[])


def http_routes(runtime: Runtime) -> list[BaseRoute]:
    return []


def manifest_parts() -> list[dict[str, Any]]:
    """What each capability needs from Slack: commands, shortcuts, scopes, events."""
    return []
