"""The outbox: notifications are rows with an idempotency key, delivered to Slack by a sender.

Capabilities enqueue inside their own unit of work, so a notification exists exactly when the
change that caused it was committed. The sender claims rows one at a time, posts them with the
real slack_sdk WebClient, retries transient failures with backoff, honours 429 Retry-After, and
never posts a key twice.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy import JSON, Column, update
from sqlmodel import Field, Session, SQLModel, col, select

from bot import logs, metrics
from bot.clock import Clock
from bot.db import Database, UTCDateTime

log = logging.getLogger(__name__)

PENDING, SENDING, SENT, FAILED, SUPERSEDED = "pending", "sending", "sent", "failed", "superseded"

# Slack errors that will not go away by trying again later.
_PERMANENT = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "msg_too_long",
    "no_text",
    "invalid_blocks",
    "invalid_blocks_format",
    "user_not_found",
    "users_not_found",
    "cant_update_message",
    "message_not_found",
    "edit_window_closed",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "missing_scope",
    "no_such_subteam",
    "restricted_action",
    "invalid_arguments",
    "unknown_method",
    "not_allowed_token_type",
}


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=255, unique=True)
    method: str = Field(max_length=64)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # Another message whose (channel, ts) this call needs, e.g. the post a chat.update edits.
    ref_key: str | None = Field(default=None, max_length=255)
    # A newer pending message with the same coalesce key makes this one unnecessary.
    coalesce_key: str | None = Field(default=None, max_length=255, index=True)
    status: str = Field(default=PENDING, max_length=16, index=True)
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
) -> OutboxMessage:
    """Add a notification to the caller's unit of work; a key seen before returns the old row."""
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
    message = OutboxMessage(
        key=key,
        method=method,
        payload=payload,
        ref_key=ref,
        coalesce_key=coalesce,
        not_before=not_before or now,
        created_at=now,
    )
    session.add(message)
    session.flush()
    return message


def post(
    session: Session,
    key: str,
    channel: str,
    text: str,
    now: datetime,
    blocks: list[dict[str, Any]] | None = None,
    thread_ts: str | None = None,
    **extra: Any,
) -> OutboxMessage:
    """Queue a chat.postMessage; `channel` may be a user id, which Slack delivers as a DM."""
    payload: dict[str, Any] = {"channel": channel, "text": text, **extra}
    if blocks is not None:
        payload["blocks"] = blocks
    if thread_ts is not None:
        payload["thread_ts"] = thread_ts
    return enqueue(session, key, "chat.postMessage", payload, now)


def update_message(
    session: Session,
    key: str,
    of: str,
    text: str,
    now: datetime,
    blocks: list[dict[str, Any]] | None = None,
) -> OutboxMessage:
    """Queue a chat.update of the message posted under key `of`; only the newest edit is sent."""
    payload: dict[str, Any] = {"text": text}
    if blocks is not None:
        payload["blocks"] = blocks
    return enqueue(session, key, "chat.update", payload, now, ref=of, coalesce=f"update:{of}")


def message_ref(session: Session, key: str) -> tuple[str, str] | None:
    """(channel, ts) of a message the outbox has posted, once it has been posted."""
    row = session.exec(select(OutboxMessage).where(OutboxMessage.key == key)).first()
    if row is None or row.status != SENT or not row.result_ts:
        return None
    return row.result_channel or "", row.result_ts


class OutboxSender:
    """Delivers due outbox rows. `drain()` is what the worker thread, the demo and tests call."""

    def __init__(
        self,
        db: Database,
        client: WebClient,
        clock: Clock,
        *,
        max_attempts: int = 8,
        stuck_after: timedelta = timedelta(minutes=5),
    ) -> None:
        self.db = db
        self.client = client
        self.clock = clock
        self.max_attempts = max_attempts
        self.stuck_after = stuck_after
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- delivery -----------------------------------------------------------------------------

    def drain(self, limit: int = 500) -> int:
        """Send every due message, oldest first; returns how many were delivered."""
        delivered = 0
        for message_id in self._due_ids(limit):
            if self._deliver(message_id):
                delivered += 1
        self._refresh_gauge()
        return delivered

    def _due_ids(self, limit: int) -> list[int]:
        now = self.clock.now()
        with self.db.session() as session:
            return list(
                session.exec(
                    select(OutboxMessage.id)
                    .where(OutboxMessage.status == PENDING)
                    .where(OutboxMessage.not_before <= now)
                    .order_by(col(OutboxMessage.id))
                    .limit(limit)
                ).all()
            )

    def _deliver(self, message_id: int) -> bool:
        now = self.clock.now()
        with self.db.session() as session:
            message = session.get(OutboxMessage, message_id)
            if message is None or message.status != PENDING:
                return False
            payload = dict(message.payload)
            if message.ref_key:
                target = session.exec(
                    select(OutboxMessage).where(OutboxMessage.key == message.ref_key)
                ).first()
                if target is None or target.status in (FAILED, SUPERSEDED):
                    message.status = FAILED
                    message.last_error = (
                        f"the message it refers to ({message.ref_key}) was never posted"
                    )
                    metrics.outbox_failed.labels(message.method).inc()
                    logs.event(
                        log,
                        "outbox gave up",
                        level=logging.WARNING,
                        key=message.key,
                        method=message.method,
                        error=message.last_error,
                    )
                    return False
                if target.status != SENT:
                    message.not_before = now + timedelta(seconds=1)
                    return False
                payload.setdefault("channel", target.result_channel)
                payload.setdefault("ts", target.result_ts)
            # Claim: only one sender (thread or replica) moves a row out of pending.
            claimed = session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == message_id)
                .where(col(OutboxMessage.status) == PENDING)
                .values(status=SENDING, attempts=OutboxMessage.attempts + 1, claimed_at=now)
            )
            if claimed.rowcount != 1:
                return False
        method = message.method
        try:
            started = time.perf_counter()
            response = self.client.api_call(method, json=payload)
            metrics.send_latency.labels(method).observe(time.perf_counter() - started)
        except SlackApiError as exc:
            return self._failed(
                message_id,
                method,
                exc.response.status_code,
                exc.response.get("error"),
                exc.response.headers,
            )
        except (SlackClientError, OSError) as exc:
            return self._failed(message_id, method, None, f"connection: {exc}", {})
        data = response.data if isinstance(response.data, dict) else {}
        with self.db.session() as session:
            row = session.get(OutboxMessage, message_id)
            assert row is not None
            row.status = SENT
            row.sent_at = self.clock.now()
            row.last_error = None
            row.result_channel = data.get("channel") or payload.get("channel")
            row.result_ts = data.get("ts") or data.get("message_ts")
            if isinstance(data.get("channel"), dict):
                row.result_channel = data["channel"].get("id")
        metrics.outbox_sent.labels(method).inc()
        return True

    def _failed(
        self,
        message_id: int,
        method: str,
        status: int | None,
        error: str | None,
        headers: Any,
    ) -> bool:
        now = self.clock.now()
        with self.db.session() as session:
            row = session.get(OutboxMessage, message_id)
            assert row is not None
            row.last_error = f"{status or ''} {error or ''}".strip()[:500]
            # Slack answers "ratelimited"; its published spec spells it "rate_limited".
            if status == 429 or error in ("ratelimited", "rate_limited"):
                retry_after = _retry_after(headers)
                row.status = PENDING
                row.not_before = now + timedelta(seconds=retry_after)
                metrics.outbox_retries.labels("rate_limited").inc()
                log.info("rate limited on %s, retrying in %ss", method, retry_after)
            elif (error in _PERMANENT) or row.attempts >= self.max_attempts:
                row.status = FAILED
                metrics.outbox_failed.labels(method).inc()
                logs.event(
                    log,
                    "outbox gave up",
                    level=logging.WARNING,
                    key=row.key,
                    method=method,
                    error=row.last_error,
                    attempts=row.attempts,
                )
            else:
                # Exponential backoff: 2s, 4s, 8s ... capped at 10 minutes.
                delay = min(2**row.attempts, 600)
                row.status = PENDING
                row.not_before = now + timedelta(seconds=delay)
                metrics.outbox_retries.labels("error").inc()
        return False

    def recover(self) -> int:
        """On start: rows left 'sending' by a crash may or may not have reached Slack.

        Re-sending could post twice, so they are marked failed (outcome unknown) instead.
        """
        cutoff = self.clock.now() - self.stuck_after
        with self.db.session() as session:
            result = session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.status) == SENDING)
                .where(col(OutboxMessage.claimed_at) <= cutoff)
                .values(status=FAILED, last_error="outcome unknown after a crash; not re-sent")
            )
            if result.rowcount:
                reason = "outcome unknown after a crash; not re-sent"
                logs.event(
                    log,
                    "outbox gave up",
                    level=logging.WARNING,
                    count=result.rowcount,
                    error=reason,
                )
            return result.rowcount or 0

    def _refresh_gauge(self) -> None:
        with self.db.session() as session:
            pending = session.exec(
                select(OutboxMessage.id).where(OutboxMessage.status == PENDING)
            ).all()
        metrics.outbox_pending.set(len(pending))

    # -- background thread --------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def start(self, interval: float = 1.0) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    # Every round, not only at start: a row claimed just before a quick restart
                    # is not stuck yet then, and would stay 'sending' forever.
                    self.recover()
                    self.drain()
                except Exception:  # keep the worker alive; the row stays pending for a retry
                    log.exception("outbox drain failed")
                self._wake.wait(interval)
                self._wake.clear()

        self._thread = threading.Thread(target=loop, name="opsbot-outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _retry_after(headers: Any) -> int:
    value = None
    if headers:
        for name in ("Retry-After", "retry-after"):
            raw = headers.get(name)
            if raw:
                value = raw[0] if isinstance(raw, list) else raw
                break
    try:
        return max(1, int(value)) if value is not None else 30
    except ValueError:
        return 30
