"""The inbox: every incoming Slack request is recorded, keyed by Slack's ids, before it is acted on."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel

from bot import metrics
from bot.db import Database, UTCDateTime


class InboxEvent(SQLModel, table=True):
    __tablename__ = "inbox_events"

    key: str = Field(primary_key=True, max_length=255)
    kind: str = Field(max_length=32)
    received_at: datetime = Field(sa_type=UTCDateTime)
    retry_num: int = 0


def inbox_key(body: dict[str, Any]) -> tuple[str, str] | None:
    """(kind, key) for a Slack request body, or None for requests that change nothing.

    Events carry a unique event_id; commands, actions, shortcuts and view submissions carry a
    trigger_id that Slack issues once per user interaction, so a retry repeats the same key.
    """
    kind = body.get("type")
    if kind == "event_callback" and body.get("event_id"):
        return "event", f"event:{body['event_id']}"
    if kind in ("url_verification", "ssl_check", "block_suggestion"):
        return None
    if "command" in body and body.get("trigger_id"):
        return "command", f"command:{body['trigger_id']}"
    trigger = body.get("trigger_id")
    if kind == "block_actions":
        actions = body.get("actions") or [{}]
        action_ts = actions[0].get("action_ts", "")
        return "action", f"action:{trigger or ''}:{action_ts}"
    if kind == "view_submission":
        view = body.get("view") or {}
        return "view", f"view:{trigger or ''}:{view.get('id', '')}:{view.get('hash', '')}"
    if kind == "view_closed":
        view = body.get("view") or {}
        return "view", f"view_closed:{view.get('id', '')}:{view.get('hash', '')}"
    if kind in ("shortcut", "message_action") and trigger:
        return "shortcut", f"shortcut:{trigger}"
    return None


def record(db: Database, kind: str, key: str, now: datetime, retry_num: int = 0) -> bool:
    """Store the request; False when it was stored before (a retry or another replica's copy)."""
    try:
        with db.session() as session:
            session.add(InboxEvent(key=key, kind=kind, received_at=now, retry_num=retry_num))
    except IntegrityError:
        metrics.inbox_duplicates.labels(kind).inc()
        return False
    metrics.inbox_events.labels(kind).inc()
    return True
