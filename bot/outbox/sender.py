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
import queue
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
from sqlalchemy import or_, update
from sqlmodel import col, select

from bot import logs, metrics
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
    committed,
    useless,
)

log = logging.getLogger(__name__)

# The longest pause of the sender's loop after its own failures (the database away): short, so
# delivery resumes within moments of the database coming back.
LOOP_BACKOFF_CAP = 15.0

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
LOOKS_PER_ROUND = 4  # pages of due rows a parallel round reads at most


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


@dataclass
class _Outcome:
    job: _Job
    data: dict[str, Any] | None = None  # Slack's answer, when the call worked
    status: int | None = None  # HTTP status of a failed call; None: no answer at all
    error: str | None = None
    headers: Any = None
    tried: bool = True  # False: claimed, then held back (Slack began failing meanwhile)

    @property
    def described(self) -> str:
        return f"{self.status or ''} {self.error or ''}".strip()[:500]

    @property
    def rate_limited(self) -> bool:
        return self.status == 429 or self.error in RATE_LIMITED

    @property
    def transient(self) -> bool:
        if self.data is not None or not self.tried or self.rate_limited:
            return False
        return self.status is None or self.status >= 500 or self.error in TRANSIENT


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
        # Methods Slack fails on (5xx, network): when to probe each again, failures in a row.
        self._probing: dict[str, datetime] = {}
        self._failures_in_row: dict[str, int] = {}
        self._lane_methods: dict[str, str] = {}  # lane in flight -> its method
        self._lanes: set[str] = set()  # lanes with a call in flight in this process
        self._lanes_lock = threading.Lock()
        self._wake = threading.Event()
        self._queued_seen = -1  # `committed()` when last woken
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one round: what may go now ---------------------------------------------------------

    def drain(self, limit: int = 5000) -> int:
        """Send every due message now, most urgent first; returns how many were delivered."""
        delivered = 0
        handed = 0
        while handed < limit:
            jobs, _ = self._round(limit - handed)
            if not jobs:
                break
            handed += len(jobs)
            outcomes: list[_Outcome] = []
            held: set[str] = set()  # after a failure: nothing more (or no more of the method)
            for job in jobs:
                if job.method in held:
                    outcomes.append(_Outcome(job, tried=False))
                    continue
                outcome = self._call(job)
                outcomes.append(outcome)
                if outcome.rate_limited or outcome.transient:
                    held.add(job.method)  # its pause or probe backoff decides when to ask again
            delivered += self._record(outcomes)
        return delivered

    def _round(self, slots: int, one_per_lane: bool = False) -> tuple[list[_Job], float | None]:
        """Claim the due rows that may go now, in order; (their jobs, seconds to wait after).

        Sent in parallel (`one_per_lane`), a lane gives one row a round, so its rows keep their
        order; sent one after another, in order, it may give several.
        """
        now = self.clock.now()
        tick = self.limiter.monotonic() if self.limiter is not None else 0.0
        # Lanes and methods that cannot send now are left out of the query, so a busy channel
        # (a thousand posts queued for it) never hides the rows behind it from this round.
        self._lane_ready = {k: t for k, t in self._lane_ready.items() if t > tick}
        self._method_ready = {k: t for k, t in self._method_ready.items() if t > tick}
        with self._lanes_lock:
            busy_lanes = set(self._lanes) | set(self._lane_ready)
        paused_until = {m: t for m, t in self._paused.copy().items() if t > now}
        # A method Slack fails on is probed by one call at a time, when its backoff says.
        probing = dict(self._probing)
        with self._lanes_lock:
            in_flight_methods = set(self._lane_methods.values())
        held = {m for m, t in probing.items() if t > now or m in in_flight_methods}
        busy_methods = set(self._method_ready) | set(paused_until) | held
        # The busy lanes are already left out, so a few rows per free slot are enough to fill
        # the slots; loading hundreds a round would cost more than the calls themselves.
        limit = min(self.batch, max(4 * slots, 16)) if one_per_lane else self.batch
        chosen: list[OutboxMessage] = []
        wait: float | None = None
        blocked: set[str] = set()
        probed: set[str] = set()
        # A few busy lanes can fill a whole page of due rows (a storm's thousand DMs to one
        # person); the next page leaves out every lane already looked at, so the rows queued
        # behind them (another team's page) are found in the same round.
        for _ in range(LOOKS_PER_ROUND if one_per_lane else 1):
            rows = self._due(now, busy_lanes, busy_methods, limit)
            lanes_held = False  # rows skipped because their lane must wait: look further
            for row in rows:
                if len(chosen) >= slots:
                    break
                if row.method in probing:
                    if row.method in probed or row.method in held:
                        continue
                    probed.add(row.method)
                # Edits of one message, and posts to one channel, go one at a time and in order:
                # once a lane must wait, its later rows wait this round too.
                lane = row.lane or row.key
                if row.method in blocked:
                    continue
                if lane in blocked:
                    lanes_held = True
                    continue
                paused = self._paused.get(row.method)  # a 429 earlier in this round
                if paused is not None and paused > now:
                    continue
                with self._lanes_lock:
                    busy = lane in self._lanes
                if busy:
                    blocked.add(lane)
                    lanes_held = True
                    continue
                if self.limiter is not None:
                    delay, bucket = self.limiter.take_or_wait(
                        row.method, row.payload.get("channel")
                    )
                    if delay > 0:
                        if bucket == row.method:  # the whole method must wait
                            blocked.add(row.method)
                            self._method_ready[row.method] = tick + delay
                        else:
                            blocked.add(lane)
                            lanes_held = True
                            self._lane_ready[lane] = tick + delay
                        wait = delay if wait is None else min(wait, delay)
                        continue
                if one_per_lane:
                    blocked.add(lane)
                chosen.append(row)
            if len(chosen) >= slots or len(rows) < limit or not lanes_held:
                break
            busy_lanes |= {row.lane or row.key for row in rows}
            busy_methods |= {row.method for row in rows if row.method in blocked}
        jobs = self._claim(chosen, now)
        # Wake for the first lane, method or pause that frees up, not a whole idle interval later.
        soon = [t - tick for t in (*self._lane_ready.values(), *self._method_ready.values())]
        soon += [(t - now).total_seconds() for t in paused_until.values()]
        soon += [(t - now).total_seconds() for t in probing.values() if t > now]
        if wait is not None:
            soon.append(wait)
        return jobs, (min(soon) if soon else None)

    def _due(
        self,
        now: datetime,
        busy_lanes: set[str] | None = None,
        busy_methods: set[str] | None = None,
        limit: int | None = None,
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
                        limit or self.batch
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
        due = (col(OutboxMessage.status) == PENDING, col(OutboxMessage.expires_at) <= now)
        # Look first: an UPDATE takes SQLite's write lock even when it changes nothing, and
        # intake (a storm's webhooks) needs that lock far more than an empty sweep does.
        if session.exec(select(OutboxMessage.id).where(*due).limit(1)).first() is None:
            return
        expired = session.exec(
            update(OutboxMessage)
            .where(*due)
            .values(status=EXPIRED, last_error="no longer useful; not sent")
        )
        if expired.rowcount:
            metrics.outbox_expired.inc(expired.rowcount)
            log.info("%s outbox messages expired unsent", expired.rowcount)

    def _claim(self, rows: list[OutboxMessage], now: datetime) -> list[_Job]:
        """Move the rows from pending to sending in one transaction; another sender (thread or
        replica) that claimed one first keeps it."""
        if not rows:
            return []
        jobs: list[_Job] = []
        gave_up: list[tuple[str, str, str, int]] = []
        with self.db.session() as session:
            refs = {r.ref_key for r in rows if r.ref_key}
            targets = (
                {
                    t.key: t
                    for t in session.exec(
                        select(OutboxMessage).where(col(OutboxMessage.key).in_(refs))
                    ).all()
                }
                if refs
                else {}
            )
            ready: dict[int, _Job] = {}
            for row in rows:
                payload = dict(row.payload)
                if row.ref_key:
                    target = targets.get(row.ref_key)
                    if target is None or target.status in (FAILED, SUPERSEDED, EXPIRED):
                        session.exec(  # type: ignore[call-overload]
                            update(OutboxMessage)
                            .where(col(OutboxMessage.id) == row.id)
                            .where(col(OutboxMessage.status) == PENDING)
                            .values(
                                status=FAILED,
                                last_error=f"the message it refers to ({row.ref_key}) "
                                "was never posted",
                            )
                        )
                        metrics.outbox_failed.labels(row.method).inc()
                        gave_up.append((row.key, row.method, f"{row.ref_key} was never posted", 0))
                        continue
                    if target.status != SENT:
                        continue  # its post is still on the way; a later round sends it
                    payload.setdefault("channel", target.result_channel)
                    payload.setdefault("ts", target.result_ts)
                if row.method == "chat.postMessage":
                    # Carried in the message, so a post a crash interrupted can be found again.
                    payload.setdefault(
                        "metadata",
                        {"event_type": METADATA_TYPE, "event_payload": {"key": row.key}},
                    )
                lane = row.lane or row.key
                ready[row.id] = _Job(row.id, row.key, row.method, payload, row.priority, lane)  # type: ignore[index,arg-type]
            if ready:
                # One statement for the round: the rows still pending are this sender's now.
                claimed = session.exec(  # type: ignore[call-overload]
                    update(OutboxMessage)
                    .where(col(OutboxMessage.id).in_(ready))
                    .where(col(OutboxMessage.status) == PENDING)
                    .values(status=SENDING, attempts=OutboxMessage.attempts + 1, claimed_at=now)
                    .returning(col(OutboxMessage.id))
                )
                ours = set(claimed.scalars().all())
                jobs = [job for job_id, job in ready.items() if job_id in ours]
        with self._lanes_lock:
            self._lanes.update(job.lane for job in jobs)
            self._lane_methods.update((job.lane, job.method) for job in jobs)
        _log_gave_up(gave_up)
        return jobs

    # -- one call ---------------------------------------------------------------------------

    def _call(self, job: _Job) -> _Outcome:
        """Make the Slack call; what it means for the row is `_record`'s job."""
        try:
            started = time.perf_counter()
            response = self.client.api_call(job.method, json=job.payload)
            metrics.send_latency.labels(job.method).observe(time.perf_counter() - started)
        except SlackApiError as exc:
            response = exc.response
            return _Outcome(
                job, None, response.status_code, response.get("error"), response.headers
            )
        except (SlackClientError, OSError) as exc:
            return _Outcome(job, None, None, f"connection: {exc}")
        except Exception as exc:  # a bug, not Slack: counts towards max_attempts
            log.exception("calling %s for %s failed", job.method, job.key)
            return _Outcome(job, None, 0, f"unexpected: {exc}")
        data = response.data if isinstance(response.data, dict) else {}
        return _Outcome(job, data)

    def _record(self, outcomes: list[_Outcome]) -> int:
        """Write what the calls did, in one transaction; returns how many were delivered."""
        now = self.clock.now()
        delivered = 0
        transient: str | None = None
        failing: set[str] = set()
        working: set[str] = set()
        gave_up: list[tuple[str, str, str, int]] = []
        try:
            with self.db.session() as session:
                ids = [o.job.id for o in outcomes]
                rows = {  # one query for the round, not one per row
                    row.id: row
                    for row in session.exec(
                        select(OutboxMessage).where(col(OutboxMessage.id).in_(ids))
                    ).all()
                }
                for outcome in outcomes:
                    row = rows.get(outcome.job.id)
                    if row is None or row.status != SENDING:
                        continue
                    if outcome.data is not None:
                        self._mark_sent(row, outcome)
                        delivered += 1
                        working.add(row.method)
                    elif not outcome.tried:
                        row.status = PENDING  # never reached Slack: the claim is undone
                        row.attempts = max(0, row.attempts - 1)
                    else:
                        self._mark_failed(row, outcome, now)
                        if outcome.transient:
                            transient = row.last_error
                            failing.add(row.method)
                        if row.status == FAILED:
                            gave_up.append(
                                (row.key, row.method, row.last_error or "", row.attempts)
                            )
        finally:
            with self._lanes_lock:
                self._lanes.difference_update(o.job.lane for o in outcomes)
                for o in outcomes:
                    self._lane_methods.pop(o.job.lane, None)
            self._wake.set()
        _log_gave_up(gave_up)  # after the commit: the log says what is stored
        for method in failing - working:
            count = self._failures_in_row.get(method, 0) + 1
            self._failures_in_row[method] = count
            probe = self.jitter(min(2.0 ** (count - 1), PROBE_CAP))
            self._probing[method] = now + timedelta(seconds=probe)
        if transient is not None:
            self.health.failed(transient)
        recovered = [m for m in working if self._probing.pop(m, None) is not None]
        for method in working:
            self._failures_in_row.pop(method, None)
        if recovered:
            self._release_held_back()
        if working and not self._probing:
            self.health.succeeded()
        return delivered

    def _mark_sent(self, row: OutboxMessage, outcome: _Outcome) -> None:
        data = outcome.data or {}
        row.status = SENT
        row.sent_at = self.clock.now()
        row.last_error = None
        row.result_channel = data.get("channel") or outcome.job.payload.get("channel")
        row.result_ts = data.get("ts") or data.get("message_ts")
        if isinstance(data.get("channel"), dict):
            row.result_channel = data["channel"].get("id")
        metrics.outbox_sent.labels(row.method).inc()

    def _mark_failed(self, row: OutboxMessage, outcome: _Outcome, now: datetime) -> None:
        row.last_error = outcome.described
        if outcome.rate_limited:
            # Not a failure: the whole method waits, and the attempt is given back.
            until = now + timedelta(seconds=_retry_after(outcome.headers))
            self._paused[row.method] = max(until, self._paused.get(row.method, until))
            row.status = PENDING
            row.attempts = max(0, row.attempts - 1)
            row.not_before = until
            metrics.outbox_retries.labels("rate_limited").inc()
            log.info("rate limited on %s until %s", row.method, until.isoformat())
        elif outcome.error in PERMANENT or (
            not outcome.transient and row.attempts >= self.max_attempts
        ):
            row.status = FAILED
            metrics.outbox_failed.labels(row.method).inc()
        else:
            cap = BACKOFF_CAP.get(row.priority, DEFAULT_BACKOFF_CAP)
            delay = self.jitter(min(2.0 ** max(row.attempts, 1), cap))
            row.status = PENDING
            row.not_before = now + timedelta(seconds=delay)
            metrics.outbox_retries.labels("error").inc()

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

    # -- background thread ------------------------------------------------------------------

    def wake(self) -> None:
        """Look at the outbox now if a unit of work of this process queued a message since the
        last look. The work of many requests queues nothing (a second press of Acknowledge), and
        what other processes queue, the loop's interval finds."""
        queued = committed()
        if queued != self._queued_seen:
            self._queued_seen = queued
            self._wake.set()

    def start(self, interval: float = 1.0) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(interval,), name="opsbot-outbox", daemon=True
        )
        self._thread.start()

    def _run(self, interval: float) -> None:
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="opsbot-send")
        done: queue.SimpleQueue[_Outcome] = queue.SimpleQueue()
        in_flight = 0

        def call(job: _Job) -> None:
            done.put(self._call(job))
            self._wake.set()

        errors = 0
        next_recover = 0.0
        try:
            while not self._stop.is_set():
                self._wake.clear()  # before looking: a wake-up from here on is not lost
                try:
                    outcomes = []
                    while not done.empty():
                        outcomes.append(done.get())
                    if outcomes:
                        in_flight -= len(outcomes)
                        self._record(outcomes)
                    if time.monotonic() >= next_recover:
                        self.recover()
                        next_recover = time.monotonic() + min(30.0, interval * 10)
                    slots = self.workers - in_flight
                    jobs, wait = self._round(slots, one_per_lane=True) if slots > 0 else ([], None)
                    for job in jobs:
                        in_flight += 1
                        pool.submit(call, job)
                    errors = 0
                    pause = interval if wait is None else min(wait, interval)
                except Exception:  # keep the worker alive: a database blip must not stop it
                    errors += 1
                    pause = self.jitter(
                        min(self.loop_backoff * 2.0 ** (errors - 1), LOOP_BACKOFF_CAP)
                    )
                    log.exception(
                        "outbox round failed (%s in a row); again in %.1fs", errors, pause
                    )
                    # Wake-ups (every request sends one) must not cut the backoff short: during
                    # an outage they would turn it into a busy loop that also reaches the cap in
                    # seconds, and the sender would then sit idle long after the database is back.
                    self._stop.wait(pause)
                    continue
                self._wake.wait(max(pause, 0.001))
        finally:
            pool.shutdown(wait=True)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def _log_gave_up(rows: list[tuple[str, str, str, int]]) -> None:
    for key, method, error, attempts in rows:
        logs.event(
            log,
            "outbox gave up",
            level=logging.WARNING,
            key=key,
            method=method,
            error=error,
            attempts=attempts or None,
        )


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
