"""Block Kit pieces every capability builds its messages from, within Slack's length limits."""

from __future__ import annotations

from typing import Any

from bot.mrkdwn import split_lines

TEXT_LIMIT = 3000  # a section's or a context element's text
BUTTON_TEXT_LIMIT = 75
BUTTON_VALUE_LIMIT = 2000
HEADER_LIMIT = 150
BLOCK_ID_LIMIT = 255


def text(value: str, kind: str = "mrkdwn") -> dict[str, Any]:
    """A text object. Callers split long texts into more blocks; this only guards Slack's limit,
    cutting at a line (never inside a mention, link or date token)."""
    if len(value) > TEXT_LIMIT:
        value = split_lines(value, TEXT_LIMIT - 10)[0] + " …"
    return {"type": kind, "text": value}


def plain(value: str, limit: int) -> dict[str, Any]:
    """Plain text cut to `limit` characters with an ellipsis; Slack refuses an empty one."""
    value = value if len(value) <= limit else value[: limit - 1] + "…"
    return {"type": "plain_text", "text": value or " "}


def section(
    value: str, accessory: dict[str, Any] | None = None, *, block_id: str | None = None
) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": text(value)}
    if accessory is not None:
        block["accessory"] = accessory
    if block_id:
        block["block_id"] = block_id[:BLOCK_ID_LIMIT]
    return block


def context(value: str) -> dict[str, Any]:
    return {"type": "context", "elements": [text(value)]}


def header(value: str) -> dict[str, Any]:
    return {"type": "header", "text": plain(value, HEADER_LIMIT)}


def button(label: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "text": plain(label, BUTTON_TEXT_LIMIT),
        "action_id": action_id,
        "value": value[:BUTTON_VALUE_LIMIT],
    }
    if style:
        element["style"] = style
    return element


def actions(*elements: dict[str, Any], block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "actions", "elements": list(elements)}
    if block_id:
        block["block_id"] = block_id[:BLOCK_ID_LIMIT]
    return block


def option(label: str, value: str, description: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"text": plain(label, 75), "value": value[:150]}
    if description:
        found["description"] = plain(description, 75)
    return found


def static_select(
    action_id: str, placeholder: str, options: list[dict[str, Any]], initial: str | None = None
) -> dict[str, Any]:
    """A select menu; `initial` (a value) is shown chosen when it is one of the options."""
    element: dict[str, Any] = {
        "type": "static_select",
        "action_id": action_id,
        "placeholder": plain(placeholder, 150),
        "options": options,
    }
    chosen = next((o for o in options if o["value"] == initial), None)
    if chosen is not None:
        element["initial_option"] = chosen
    return element
