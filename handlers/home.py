"""App Home: a personal dashboard assembled from each capability's section."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt import App
from slack_sdk.errors import SlackApiError

from bot.runtime import Runtime

log = logging.getLogger(__name__)

HomeSection = Callable[[Runtime, str], list[dict[str, Any]]]


def commands_help(commands: Sequence[str]) -> str:
    return "*Commands*: " + " · ".join(f"`{command} help`" for command in commands)


def home_view(
    runtime: Runtime,
    user_id: str,
    sections: Sequence[HomeSection],
    commands: Sequence[str] = (),
) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Your operations dashboard"}},
    ]
    for section in sections:
        part = section(runtime, user_id)
        if part:
            blocks.append({"type": "divider"})
            blocks.extend(part)
    if commands:
        blocks.append({"type": "divider"})
        help_text = commands_help(commands)
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": help_text}]})
    return {"type": "home", "blocks": blocks[:100]}


def publish_home(
    runtime: Runtime,
    user_id: str,
    sections: Sequence[HomeSection],
    commands: Sequence[str] = (),
) -> None:
    view = home_view(runtime, user_id, sections, commands)
    try:
        runtime.slack.views_publish(user_id=user_id, view=view)
    except SlackApiError as exc:
        log.warning("could not publish App Home for %s: %s", user_id, exc.response.get("error"))


def register(
    app: App,
    runtime: Runtime,
    sections: Sequence[HomeSection],
    commands: Sequence[str] = (),
) -> None:
    runtime.extras["home_sections"] = list(sections)

    @app.event("app_home_opened")
    def on_home_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home":
            publish_home(runtime, event["user"], sections, commands)
