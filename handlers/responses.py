"""How listeners answer: ephemeral replies, and core errors turned into clear messages, never traces."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.errors import OpsbotError
from bot.mrkdwn import escape

log = logging.getLogger(__name__)


def ephemeral(respond: Any, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
    """Reply only to the person who asked (through the request's response_url)."""
    kwargs: dict[str, Any] = {"text": text, "response_type": "ephemeral"}
    if blocks is not None:
        kwargs["blocks"] = blocks
    respond(**kwargs)


def tell_user(client: Any, channel: str | None, user: str, text: str) -> None:
    """An ephemeral note to one user where there is no response_url (e.g. after a modal)."""
    try:
        if channel:
            client.chat_postEphemeral(channel=channel, user=user, text=text)
        else:
            client.chat_postMessage(channel=user, text=text)
    except SlackApiError as exc:
        log.warning("could not tell %s: %s", user, exc.response.get("error"))


def friendly_errors(listener: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a core error into an ephemeral message for the person who caused it.

    The listener must have acked before raising; Bolt passes `respond` for commands, actions and
    shortcuts that carry a response_url, else we DM the user.
    """

    @functools.wraps(listener)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return listener(*args, **kwargs)
        except OpsbotError as exc:
            message = f":warning: {escape(str(exc))}"
            body = kwargs.get("body") or {}
            respond = kwargs.get("respond")
            if respond is not None and (body.get("response_url") or body.get("response_urls")):
                ephemeral(respond, message)
            else:
                user = (body.get("user") or {}).get("id") or body.get("user_id")
                client = kwargs.get("client")
                if user and client is not None:
                    channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
                    tell_user(client, channel, user, message)
            return None

    return wrapper
