"""Delivering the outbox to Slack: most urgent first, within Slack's rate limits, through outages.

- Order: by priority (pages, then normal notices, then bulk), then oldest first.
- Rate limits: with a `RateLimiter` the sender paces each method and each channel to Slack's
  published limits; a 429 pauses the whole method for `Retry-After` and costs no attempt.
- Failures: 5xx, network errors and Slack's own transient errors are retried with capped,
  jittered backoff for as long as the notification is useful (its `expires_at`, or its
  capability's usefulness check); while Slack fails, one row at a time probes it. Permanent
  errors fail at once; unknown ones after `max_attempts`.
- Crashes: a row left "sending" is looked up in the channel's history by the outbox key carried
  in the message's metadata; found, it is marked sent; not found (or not checkable), it is sent
  again. Delivery is therefore at least once, and a post Slack did receive is not repeated.
- In the background (`start`) rows are sent by a pool of threads, never two at once to the
  same channel (so messages keep their order), and the loop survives its own exceptions.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy import func, or_, update
from sqlmodel import col, select

from bot import metrics
from bot.clock import Clock, as_utc
from bot.db import Database
from bot.outbox.health import Audience, SlackHealthTracker
from bot.outbox.limits import RateLimiter
from bot.outbox.queue import (
    EXPIRED,
    FAILED,
    PENDING,
    SENDING,
    SENT,
    SUPERSEDED,
    URGENT,
    OutboxMessage,
    useless,
)

log = logging.getLogger(__name__)

# Slack errors that will not go away by trying again later.
PERMANENT = {
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
# Errors Slack answers when the trouble is on its side: retried as long as useful.
TRANSIENT = {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
RATE_LIMITED = {"ratelimited", "rate_limited"}  # Slack says the first; its spec the second
METADATA_TYPE = "opsbot_outbox"
BACKOFF_CAP = {URGENT: 30.0}  # seconds; a page is tried at least twice a minute
DEFAULT_BACKOFF_CAP = 300.0
PROBE_CAP = 10.0  # while Slack fails, it is asked again at least every 10 seconds


def equal_jitter(delay: float) -> float:
    """Somewhere in the second half of the delay: senders that failed together spread out."""
    return random.uniform(delay / 2, delay)


@dataclass
class _Job:
    id: int
    key: str
    method: str
    payload: dict[str, Any]
    priority: int
    lane: str  # what must not be in flight twice: the channel, else the key


class OutboxSender:
    """Delivers due outbox rows. `drain()` is what tests, the demo and `settle()` call."""

    def __init__(
        self,
        db: Database,
        client: WebClient,
        clock: Clock,
        *,
        limiter: RateLimiter | None = None,
        workers: int = 8,
        max_attempts: int = 8,
        stuck_after: timedelta = timedelta(seconds=90),
        audience: Audience | None = None,
        announce_after: timedelta = timedelta(minutes=1),
        jitter: Callable[[float], float] = equal_jitter,
        batch: int = 200,
        loop_backoff: float = 1.0,
    ) -> None:
        self.db = db
        self.client = client
        self.clock = clock
        self.limiter = limiter
        self.workers = max(1, workers)
        self.max_attempts = max_attempts
        self.stuck_after = stuck_after
        self.jitter = jitter
        self.batch = batch
        self.loop_backoff = loop_backoff
        self.health = SlackHealthTracker(db, clock, audience, announce_after)
        self._paused: dict[str, datetime] = {}  # method -> until (429 Retry-After)
        self._lane_ready: dict[str, float] = {}  # lane -> when its bucket has a token again
        self._method_ready: dict[str, float] = {}  # method -> the same, for the method's bucket
        self._swept: datetime | None = None
        self._probe_after: datetime | None = None  # while Slack fails: when to try again
        self._failures_in_row = 0
        self._lanes: set[str] = set()  # lanes with a call in flight in this process
        self._lanes_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one round: what may go now ---------------------------------------------------------

    def drain(self, limit: int = 5000) -> int:
        """Send every due message now, most urgent first; returns how many were delivered."""
        delivered = 0
        handed = 0
        results: list[bool] = []
        while handed < limit:
            results.clear()
            count, _ = self._round(lambda job: results.append(self._send(job)), limit - handed)
            handed += count
            delivered += sum(results)
            if count == 0 or not any(results):
                break
        self._refresh_gauge()
        return delivered

    def _round(self, submit: Callable[[_Job], None], slots: int) -> tuple[int, float | None]:
        """Claim due rows in order and hand each to `submit`; (how many, seconds to wait)."""
        now = self.clock.now()
        tick = self.limiter.monotonic() if self.limiter is not None else 0.0
        # Lanes and methods that cannot send now are left out of the query, so a busy channel
        # (a thousand posts queued for it) never hides the rows behind it from this round.
        self._lane_ready = {k: t for k, t in self._lane_ready.items() if t > tick}
        self._method_ready = {k: t for k, t in self._method_ready.items() if t > tick}
        with self._lanes_lock:
            busy_lanes = set(self._lanes) | set(self._lane_ready)
        paused_until = {m: t for m, t in self._paused.copy().items() if t > now}
        busy_methods = set(self._method_ready) | set(paused_until)
        if self.health.failing:
            # One probe at a time while Slack fails, and not before the probe backoff says.
            if busy_lanes - set(self._lane_ready):
                return 0, None
            if self._probe_after is not None and now < self._probe_after:
                return 0, (self._probe_after - now).total_seconds()
        rows = self._due(now, busy_lanes, busy_methods)
        handed = 0
        wait: float | None = None
        blocked: set[str] = set()
        for row in rows:
            if handed >= slots or self._stop_probing(handed):
                break
            # Edits of one message, and posts to one channel, go one at a time and in order:
            # once a lane must wait, its later rows wait this round too.
            lane = row.lane or row.key
            if lane in blocked or row.method in blocked:
                continue
            paused = self._paused.get(row.method)  # a 429 earlier in this round
            if paused is not None and paused > now:
                continue
            with self._lanes_lock:
                busy = lane in self._lanes
            if busy:
                blocked.add(lane)
                continue
            if self.limiter is not None:
                delay, bucket = self.limiter.take_or_wait(row.method, row.payload.get("channel"))
                if delay > 0:
                    if bucket == row.method:  # the whole method must wait
                        blocked.add(row.method)
                        self._method_ready[row.method] = tick + delay
                    else:
                        blocked.add(lane)
                        self._lane_ready[lane] = tick + delay
                    wait = delay if wait is None else min(wait, delay)
                    continue
            job = self._claim(row.id, lane, now)  # type: ignore[arg-type]
            if job is None:
                continue
            handed += 1
            submit(job)
        # Wake for the first lane, method or pause that frees up, not a whole idle interval later.
        soon = [t - tick for t in (*self._lane_ready.values(), *self._method_ready.values())]
        soon += [(t - now).total_seconds() for t in paused_until.values()]
        if wait is not None:
            soon.append(wait)
        return handed, (min(soon) if soon else None)

    def _stop_probing(self, handed: int) -> bool:
        # While Slack fails, one call per round finds out whether it is back.
        return self.health.failing and handed >= 1

    def _due(
        self,
        now: datetime,
        busy_lanes: set[str] | None = None,
        busy_methods: set[str] | None = None,
    ) -> list[OutboxMessage]:
        with self.db.session() as session:
            if self._swept is None or now - self._swept >= timedelta(seconds=1):
                self._swept = now  # at most once a second: an UPDATE takes SQLite's write lock
                self._expire(session, now)
            query = (
                select(OutboxMessage)
                .where(OutboxMessage.status == PENDING)
                .where(OutboxMessage.not_before <= now)
            )
            if busy_lanes:
                query = query.where(
                    or_(
                        col(OutboxMessage.lane).is_(None),
                        col(OutboxMessage.lane).notin_(busy_lanes),
                    )
                )
            if busy_methods:
                query = query.where(col(OutboxMessage.method).notin_(busy_methods))
            rows = list(
                session.exec(
                    query.order_by(col(OutboxMessage.priority), col(OutboxMessage.id)).limit(
                        self.batch
                    )
                ).all()
            )
            dropped = useless(session, rows)
            if dropped:
                session.exec(  # type: ignore[call-overload]
                    update(OutboxMessage)
                    .where(col(OutboxMessage.id).in_(dropped))
                    .where(col(OutboxMessage.status) == PENDING)
                    .values(status=EXPIRED, last_error="no longer useful; not sent")
                )
                metrics.outbox_expired.inc(len(dropped))
            for row in rows:
                session.expunge(row)
        return [r for r in rows if r.id not in dropped]

    @staticmethod
    def _expire(session: Any, now: datetime) -> None:
        expired = session.exec(
            update(OutboxMessage)
            .where(col(OutboxMessage.status) == PENDING)
            .where(col(OutboxMessage.expires_at) <= now)
            .values(status=EXPIRED, last_error="no longer useful; not sent")
        )
        if expired.rowcount:
            metrics.outbox_expired.inc(expired.rowcount)
            log.info("%s outbox messages expired unsent", expired.rowcount)

    def _claim(self, message_id: int, lane: str, now: datetime) -> _Job | None:
        with self.db.session() as session:
            message = session.get(OutboxMessage, message_id)
            if message is None or message.status != PENDING:
                return None
            payload = dict(message.payload)
            if message.ref_key:
                target = session.exec(
                    select(OutboxMessage).where(OutboxMessage.key == message.ref_key)
                ).first()
                if target is None or target.status in (FAILED, SUPERSEDED, EXPIRED):
                    message.status = FAILED
                    message.last_error = (
                        f"the message it refers to ({message.ref_key}) was never posted"
                    )
                    metrics.outbox_failed.labels(message.method).inc()
                    return None
                if target.status != SENT:
                    return None  # its post is still on the way; the next round tries again
                payload.setdefault("channel", target.result_channel)
                payload.setdefault("ts", target.result_ts)
            if message.method == "chat.postMessage":
                # Carried in the message, so a post a crash interrupted can be found again.
                payload.setdefault(
                    "metadata", {"event_type": METADATA_TYPE, "event_payload": {"key": message.key}}
                )
            # Claim: only one sender (thread or replica) moves a row out of pending.
            claimed = session.exec(  # type: ignore[call-overload]
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == message_id)
                .where(col(OutboxMessage.status) == PENDING)
                .values(status=SENDING, attempts=OutboxMessage.attempts + 1, claimed_at=now)
            )
            if claimed.rowcount != 1:
                return None
        with self._lanes_lock:
            self._lanes.add(lane)
        return _Job(message_id, message.key, message.method, payload, message.priority, lane)

    # -- one call ---------------------------------------------------------------------------

    def _send(self, job: _Job) -> bool:
        try:
            try:
                started = time.perf_counter()
                response = self.client.api_call(job.method, json=job.payload)
                metrics.send_latency.labels(job.method).observe(time.perf_counter() - started)
            except SlackApiError as exc:
                return self._failed(
                    job,
                    exc.response.status_code,
                    exc.response.get("error"),
                    exc.response.headers,
                )
            except (SlackClientError, OSError) as exc:
                return self._failed(job, None, f"connection: {exc}", {})
            data = response.data if isinstance(response.data, dict) else {}
            self._sent(job.id, job.payload, data)
            metrics.outbox_sent.labels(job.method).inc()
            self._failures_in_row = 0
            self._probe_after = None
            if self.health.failing:
                self._release_held_back()
            self.health.succeeded()
            return True
        finally:
            with self._lanes_lock:
                self._lanes.discard(job.lane)
            self._wake.set()

    def _release_held_back(self) -> None:
        """Slack answers again: rows backing off because of the outage go now, pages first."""
        now = self.clock.now()
        with self.db.session() as session:
            session.exec(  # type: ignore[call-overload]
                update(OutboxMessage)
                .where(col(OutboxMessage.status) == PENDING)
                .where(col(OutboxMessage.attempts) > 0)
                .where(col(OutboxMessage.not_before) > now)
                .where(~col(OutboxMessage.last_error).contains("ratelimited"))
                .where(~col(OutboxMessage.last_error).contains("rate_limited"))
                .values(not_before=now)
            )

    def _sent(self, message_id: int, payload: dict[str, Any], data: dict[str, Any]) -> None:
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

    def _failed(self, job: _Job, status: int | None, error: str | None, headers: Any) -> bool:
        now = self.clock.now()
        described = f"{status or ''} {error or ''}".strip()[:500]
        rate_limited = status == 429 or error in RATE_LIMITED
        transient = not rate_limited and (status is None or status >= 500 or error in TRANSIENT)
        with self.db.session() as session:
            row = session.get(OutboxMessage, job.id)
            assert row is not None
            row.last_error = described
            if rate_limited:
                # Not a failure: the whole method waits, and the attempt is given back.
                until = now + timedelta(seconds=_retry_after(headers))
                self._paused[job.method] = max(until, self._paused.get(job.method, until))
                row.status = PENDING
                row.attempts = max(0, row.attempts - 1)
                row.not_before = until
                metrics.outbox_retries.labels("rate_limited").inc()
                log.info("rate limited on %s until %s", job.method, until.isoformat())
            elif error in PERMANENT or (not transient and row.attempts >= self.max_attempts):
                row.status = FAILED
                metrics.outbox_failed.labels(job.method).inc()
                log.warning("giving up on outbox message %s (%s): %s", row.key, job.method, error)
            else:
                cap = BACKOFF_CAP.get(row.priority, DEFAULT_BACKOFF_CAP)
                delay = self.jitter(min(2.0 ** max(row.attempts, 1), cap))
                row.status = PENDING
                row.not_before = now + timedelta(seconds=delay)
                metrics.outbox_retries.labels("error").inc()
        if transient:
            self._failures_in_row += 1
            probe = self.jitter(min(2.0 ** (self._failures_in_row - 1), PROBE_CAP))
            self._probe_after = now + timedelta(seconds=probe)
            self.health.failed(described)
        return False

    # -- crashes ----------------------------------------------------------------------------

    def recover(self) -> int:
        """Rows a crash left "sending": mark sent what Slack has, send again what it has not."""
        cutoff = self.clock.now() - self.stuck_after
        with self.db.session() as session:
            stuck = list(
                session.exec(
                    select(OutboxMessage)
                    .where(OutboxMessage.status == SENDING)
                    .where(col(OutboxMessage.claimed_at) <= cutoff)
                ).all()
            )
            for row in stuck:
                session.expunge(row)
        recovered = 0
        for row in stuck:
            try:
                found = self._find_posted(row) if row.method == "chat.postMessage" else None
            except (SlackApiError, SlackClientError, OSError) as exc:
                log.warning("cannot check whether %s reached Slack yet: %s", row.key, exc)
                continue  # Slack is not answering; look again next time
            with self.db.session() as session:
                fresh = session.get(OutboxMessage, row.id)
                if fresh is None or fresh.status != SENDING or fresh.claimed_at != row.claimed_at:
                    continue
                if found is not None:
                    fresh.status = SENT
                    fresh.sent_at = self.clock.now()
                    fresh.result_channel, fresh.result_ts = found
                    fresh.last_error = None
                else:
                    fresh.status = PENDING
                    fresh.not_before = self.clock.now()
                    fresh.last_error = "interrupted while sending; not found in Slack, sent again"
            recovered += 1
        return recovered

    def _find_posted(self, row: OutboxMessage) -> tuple[str, str] | None:
        """(channel, ts) of the post carrying this row's key, if Slack has it."""
        channel = str(row.payload.get("channel") or "")
        try:
            if channel[:1] in ("U", "W"):  # a DM: its history is in the IM channel
                opened = self.client.conversations_open(users=channel)
                channel = opened["channel"]["id"]
            oldest = (as_utc(row.claimed_at or row.created_at) - timedelta(minutes=1)).timestamp()
            thread = row.payload.get("thread_ts")
            if thread:
                answer = self.client.conversations_replies(
                    channel=channel, ts=thread, oldest=f"{oldest:.6f}", include_all_metadata=True
                )
            else:
                answer = self.client.conversations_history(
                    channel=channel, oldest=f"{oldest:.6f}", include_all_metadata=True, limit=200
                )
        except SlackApiError as exc:
            if exc.response.status_code == 429 or exc.response.status_code >= 500:
                raise
            # No history scope or no access: cannot know; sending again beats losing it.
            log.warning("cannot read %s to find %s: %s", channel, row.key, exc)
            return None
        for message in answer.get("messages") or []:
            metadata = message.get("metadata") or {}
            if (
                metadata.get("event_type") == METADATA_TYPE
                and (metadata.get("event_payload") or {}).get("key") == row.key
            ):
                return channel, message["ts"]
        return None

    def _refresh_gauge(self) -> None:
        with self.db.session() as session:
            pending = session.exec(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == PENDING)
            ).one()
        metrics.outbox_pending.set(pending)

    # -- background thread ------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def start(self, interval: float = 1.0) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(interval,), name="opsbot-outbox", daemon=True
        )
        self._thread.start()

    def _run(self, interval: float) -> None:
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="opsbot-send")
        in_flight = [0]
        lock = threading.Lock()

        def submit(job: _Job) -> None:
            with lock:
                in_flight[0] += 1

            def run() -> None:
                try:
                    self._send(job)
                except Exception:  # the row stays "sending"; recover() picks it up
                    log.exception("sending outbox message %s failed", job.key)
                finally:
                    with lock:
                        in_flight[0] -= 1
                    self._wake.set()

            pool.submit(run)

        errors = 0
        next_recover = 0.0
        try:
            while not self._stop.is_set():
                try:
                    if time.monotonic() >= next_recover:
                        self.recover()
                        next_recover = time.monotonic() + min(30.0, interval * 10)
                    with lock:
                        slots = self.workers - in_flight[0]
                    handed, wait = self._round(submit, slots) if slots > 0 else (0, None)
                    if handed == 0 and slots > 0:
                        self._refresh_gauge()
                    errors = 0
                    pause = interval if wait is None else min(wait, interval)
                    if handed:
                        pause = min(pause, 0.05)  # more may be due behind them
                except Exception:  # keep the worker alive: a database blip must not stop it
                    errors += 1
                    pause = self.jitter(min(self.loop_backoff * 2.0 ** (errors - 1), 60.0))
                    log.exception(
                        "outbox round failed (%s in a row); again in %.1fs", errors, pause
                    )
                self._wake.wait(max(pause, 0.001))
                self._wake.clear()
        finally:
            pool.shutdown(wait=True)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


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
