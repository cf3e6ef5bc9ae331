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

COMMANDS_HELP = "*Commands*: `/oncall help` · `/page help` · `/support help` · `/wins help`"


def home_view(runtime: Runtime, user_id: str, sections: Sequence[HomeSection]) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Your operations dashboard"}},
    ]
    for section in sections:
        part = section(runtime, user_id)
        if part:
            blocks.append({"type": "divider"})
            blocks.extend(part)
    blocks.append({"type": "divider"})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": COMMANDS_HELP}]})
    return {"type": "home", "blocks": blocks[:100]}


def publish_home(runtime: Runtime, user_id: str, sections: Sequence[HomeSection]) -> None:
    try:
        runtime.slack.views_publish(user_id=user_id, view=home_view(runtime, user_id, sections))
    except SlackApiError as exc:
        log.warning("could not publish App Home for %s: %s", user_id, exc.response.get("error"))


def register(app: App, runtime: Runtime, sections: Sequence[HomeSection]) -> None:
    runtime.extras["home_sections"] = list(sections)

    @app.event("app_home_opened")
    def on_home_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home":
            publish_home(runtime, event["user"], sections)
