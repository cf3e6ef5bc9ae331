"""Queueing notifications: what capabilities call inside their own unit of work.

A notification exists exactly when the change that caused it was committed. Each row carries
an idempotency key, a priority (pages before bulk notices) and how long it stays useful; the
sender (bot.outbox.sender) delivers it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column, Index, update
from sqlmodel import Field, Session, SQLModel, col, select

from bot.db import UTCDateTime, after_commit

PENDING, SENDING, SENT, FAILED, SUPERSEDED = "pending", "sending", "sent", "failed", "superseded"
# No longer useful before it could be delivered (its moment passed, the page was resolved).
EXPIRED = "expired"

# Priorities: lower goes first. A page never waits behind a digest or 5,000 nudges.
URGENT, NORMAL, BULK = 0, 1, 2
# Kinds (the key's first segment) and key parts that mark a notification as bulk.
_BULK_KINDS = {"migration", "wins", "digest", "nudge", "report"}
_BULK_PARTS = {"digest", "nudge", "report", "summary"}
_BULK_METHODS = {"views.publish"}  # App Home refreshes: nice to have, never urgent
# How long a notification stays worth sending after its moment, by priority. Pages have no
# time limit: they stay useful until their page is resolved (a usefulness check says so).
USEFUL_FOR: dict[int, timedelta | None] = {
    URGENT: None,
    NORMAL: timedelta(hours=12),
    BULK: timedelta(hours=24),
}


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "priority", "not_before"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=255, unique=True)
    method: str = Field(max_length=64)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # Another message whose (channel, ts) this call needs, e.g. the post a chat.update edits.
    ref_key: str | None = Field(default=None, max_length=255)
    # A newer pending message with the same coalesce key makes this one unnecessary.
    coalesce_key: str | None = Field(default=None, max_length=255, index=True)
    # What is sent one call at a time, in order: a channel (or DM), or the edits of one message.
    lane: str | None = Field(default=None, max_length=255, index=True)
    status: str = Field(default=PENDING, max_length=16, index=True)
    priority: int = Field(default=NORMAL)
    # After this instant the notification is no longer worth sending; None: no time limit.
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0
    not_before: datetime = Field(sa_type=UTCDateTime, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)
    result_channel: str | None = Field(default=None, max_length=32)
    result_ts: str | None = Field(default=None, max_length=32)


def enqueue(
    session: Session,
    key: str,
    method: str,
    payload: dict[str, Any],
    now: datetime,
    *,
    ref: str | None = None,
    coalesce: str | None = None,
    not_before: datetime | None = None,
    priority: int | None = None,
    expires_at: datetime | None = None,
) -> OutboxMessage:
    """Add a notification to the caller's unit of work; a key seen before returns the old row.

    `priority` defaults by kind (`default_priority`); `expires_at` defaults to the moment plus
    `USEFUL_FOR[priority]` (a reminder is useless once its moment has long passed).
    """
    existing = session.exec(select(OutboxMessage).where(OutboxMessage.key == key)).first()
    if existing is not None:
        return existing
    if coalesce is not None:
        session.exec(
            update(OutboxMessage)
            .where(col(OutboxMessage.coalesce_key) == coalesce)
            .where(col(OutboxMessage.status) == PENDING)
            .values(status=SUPERSEDED)
        )
    due = not_before or now
    if priority is None:
        priority = default_priority(key, method)
    if expires_at is None and USEFUL_FOR.get(priority) is not None:
        expires_at = due + USEFUL_FOR[priority]  # type: ignore[operator]
    message = OutboxMessage(
        key=key,
        method=method,
        payload=payload,
        ref_key=ref,
        coalesce_key=coalesce,
        not_before=due,
        created_at=now,
        priority=priority,
        expires_at=expires_at,
        lane=(coalesce or str(payload.get("channel") or "") or key)[:255],
    )
    session.add(message)
    session.flush()
    after_commit(session, _count_commit, once="outbox.queued")
    return message


class _Queued:
    # Units of work that queued a message and committed, in this process (`committed`).
    count = 0


def _count_commit() -> None:
    _Queued.count += 1


def committed() -> int:
    """How many units of work that queued a message have committed in this process so far: a
    sender told to wake looks at the outbox only when this moved since its last look."""
    return _Queued.count


def post(
    session: Session,
    key: str,
    channel: str,
    text: str,
    now: datetime,
    blocks: list[dict[str, Any]] | None = None,
    thread_ts: str | None = None,
    *,
    priority: int | None = None,
    expires_at: datetime | None = None,
    **extra: Any,
) -> OutboxMessage:
    """Queue a chat.postMessage; `channel` may be a user id, which Slack delivers as a DM."""
    payload: dict[str, Any] = {"channel": channel, "text": text, **extra}
    if blocks is not None:
        payload["blocks"] = blocks
    if thread_ts is not None:
        payload["thread_ts"] = thread_ts
    return enqueue(
        session, key, "chat.postMessage", payload, now, priority=priority, expires_at=expires_at
    )


def update_message(
    session: Session,
    key: str,
    of: str,
    text: str,
    now: datetime,
    blocks: list[dict[str, Any]] | None = None,
    *,
    priority: int | None = None,
) -> OutboxMessage:
    """Queue a chat.update of the message posted under key `of`; only the newest edit is sent."""
    payload: dict[str, Any] = {"text": text}
    if blocks is not None:
        payload["blocks"] = blocks
    return enqueue(
        session,
        key,
        "chat.update",
        payload,
        now,
        ref=of,
        coalesce=f"update:{of}",
        priority=priority,
    )


def message_ref(session: Session, key: str) -> tuple[str, str] | None:
    """(channel, ts) of a message the outbox has posted, once it has been posted."""
    row = session.exec(select(OutboxMessage).where(OutboxMessage.key == key)).first()
    if row is None or row.status != SENT or not row.result_ts:
        return None
    return row.result_channel or "", row.result_ts


class SlackHealth(SQLModel, table=True):
    """Whether Slack is failing for this app, shared by every sender (replica or worker)."""

    __tablename__ = "slack_health"

    id: str = Field(default="slack", primary_key=True, max_length=16)
    # The first failed call of the current outage; None while Slack answers.
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_failure_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    failures: int = 0
    last_error: str | None = Field(default=None, max_length=500)


def kind_of(key: str) -> str:
    """A notification's kind is its key's first segment: `page:12:dm:U1` is a `page`."""
    return key.split(":", 1)[0]


def default_priority(key: str, method: str) -> int:
    """Pages are urgent; digests, reports, nudges and App Home refreshes are bulk."""
    kind = kind_of(key)
    if kind == "page":
        return URGENT
    parts = set(key.split(":")[1:3])
    if kind in _BULK_KINDS or parts & _BULK_PARTS or method in _BULK_METHODS:
        return BULK
    return NORMAL


# A capability can say which of its queued notifications are no longer worth sending (a page's
# DMs once the page is resolved): kind -> check(session, rows) -> ids of the useless rows.
UsefulnessCheck = Callable[[Session, list[OutboxMessage]], Iterable[int]]
_USEFULNESS: dict[str, UsefulnessCheck] = {}


def register_usefulness(kind: str, check: UsefulnessCheck) -> None:
    """Let the sender drop notifications of `kind` that `check` finds useless before sending."""
    _USEFULNESS[kind] = check


def useless(session: Session, rows: list[OutboxMessage]) -> set[int]:
    """Ids among `rows` that their capability says are no longer worth sending."""
    by_kind: dict[str, list[OutboxMessage]] = {}
    for row in rows:
        by_kind.setdefault(kind_of(row.key), []).append(row)
    found: set[int] = set()
    for kind, group in by_kind.items():
        check = _USEFULNESS.get(kind)
        if check is not None:
            found.update(check(session, group))
    return found
