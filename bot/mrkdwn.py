"""Escaping user text for Slack mrkdwn, so nobody can trigger @channel or spoof a link through the bot."""

from __future__ import annotations


def escape(text: object) -> str:
    """Escape the three characters Slack treats as control characters in mrkdwn."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def user(user_id: str) -> str:
    """A mention of a person we resolved ourselves (a Slack id, never free user text)."""
    return f"<@{escape(user_id)}>"


def link(url: str, label: str) -> str:
    """A link whose label is user text: escape it, and strip the pipe that would end the label."""
    return f"<{escape(url)}|{escape(label).replace('|', '¦')}>"


def quote(text: str) -> str:
    return "\n".join("> " + line for line in escape(text).splitlines() or [""])
