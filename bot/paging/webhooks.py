"""Outbound webhooks as escalation targets (`notify: "webhook:<id>"`): PagerDuty Events API v2
and a generic JSON body, so a service that can ring a phone is reached where Slack's Do Not
Disturb would silence a DM.

Deliveries are rows written in the page's own unit of work and sent afterwards by a sender loop
(within a second, wherever the scheduler and outbox run, and after every scheduler tick), so no
Slack request ever waits on a webhook and a restart loses none. Once a page has reached a
webhook, the webhook follows the page: acknowledge and resolve are sent too, under one dedup key
per page. Delivery is at least once (a row a crash left mid-send is sent again); both formats
carry the dedup key that makes a repeat harmless.

Like the outbox, a delivery is retried for as long as it is useful, not a fixed number of times:
a trigger while its page is still unacknowledged, an acknowledgement while the page stays
acknowledged, a resolve for a day (so the phone service's incident gets closed).
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from bot.config import Webhook
from bot.paging.escalation import ACKNOWLEDGED, RESOLVED, TRIGGERED
from bot.paging.models import PENDING, Page, WebhookDelivery

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

SENDING, SENT, FAILED = "sending", "sent", "failed"
SUPERSEDED = "superseded"  # no longer worth sending: the page moved on
TRIGGER, ACKNOWLEDGE, RESOLVE = "trigger", "acknowledge", "resolve"
_ACTION_FOR = {TRIGGERED: TRIGGER, ACKNOWLEDGED: ACKNOWLEDGE, RESOLVED: RESOLVE}
_JSON_EVENT = {
    TRIGGER: "page.triggered",
    ACKNOWLEDGE: "page.acknowledged",
    RESOLVE: "page.resolved",
}
FORMAT_LABEL = {"pagerduty": "PagerDuty Events API v2", "json": "JSON"}

MAX_BACKOFF_SECONDS = 300.0
# After this many failed tries the page says the hook is not taking it (once); tries go on.
WARN_AFTER_ATTEMPTS = 4
# How long a resolve keeps being retried: the page is closed, but the phone service's incident
# should be too.
RESOLVE_USEFUL_FOR = timedelta(hours=24)
TIMEOUT_SECONDS = 5.0
# One drain never holds the scheduler longer than this; what is left goes on the next tick.
DRAIN_BUDGET_SECONDS = 10.0
STUCK_AFTER = timedelta(minutes=2)


def dedup_key(page: Page) -> str:
    return f"opsbot-page-{page.id}"


# ---- from the page's unit of work ----------------------------------------------------------


def notify(
    runtime: Runtime, session: Session, page: Page, webhook_id: str, where: str, now: datetime
) -> tuple[str | None, str]:
    """A step names a webhook: queue its trigger. (whom it reached or None, the timeline line)."""
    hook = runtime.org.webhook(webhook_id)
    if hook is None:
        return None, f"{where}: webhook {webhook_id} is no longer in the config"
    _enqueue(runtime, session, page, hook, TRIGGER, f"{page.position}", now)
    return f"webhook:{hook.id}", f"{where} ({FORMAT_LABEL[hook.format]})"


def follow(runtime: Runtime, session: Session, page: Page, now: datetime) -> None:
    """Send each webhook this page reached the page's new state (acknowledged, resolved, or
    triggered again by an escalation), once per change."""
    rows = session.exec(
        select(WebhookDelivery.webhook_id, WebhookDelivery.action)
        .where(WebhookDelivery.page_id == page.id)
        .order_by(col(WebhookDelivery.id))
    ).all()
    last: dict[str, str] = {}
    for webhook_id, action in rows:
        last[webhook_id] = action
    wanted = _ACTION_FOR.get(page.status)
    for webhook_id, action in last.items():
        hook = runtime.org.webhook(webhook_id)
        if hook is None or wanted is None or action in (wanted, RESOLVE):
            continue
        _enqueue(runtime, session, page, hook, wanted, f"v{page.version}", now)


def _enqueue(
    runtime: Runtime,
    session: Session,
    page: Page,
    hook: Webhook,
    action: str,
    occasion: str,
    now: datetime,
) -> None:
    key = f"page:{page.id}:webhook:{hook.id}:{occasion}:{action}"
    if session.exec(select(WebhookDelivery.id).where(WebhookDelivery.key == key)).first():
        return
    body = (
        pagerduty_body(runtime, page, hook, action, now)
        if hook.format == "pagerduty"
        else json_body(runtime, page, action, now)
    )
    session.add(
        WebhookDelivery(
            key=key,
            page_id=page.id or 0,
            webhook_id=hook.id,
            action=action,
            payload=body,
            not_before=now,
            created_at=now,
        )
    )
    session.flush()


def pagerduty_body(
    runtime: Runtime, page: Page, hook: Webhook, action: str, now: datetime
) -> dict[str, Any]:
    """An Events API v2 event; `routing_key` is added at send time from the environment."""
    body: dict[str, Any] = {"event_action": action, "dedup_key": dedup_key(page)}
    if action == TRIGGER:
        body["payload"] = {
            "summary": f"Page #{page.id}: {page.summary}"[:1024],
            "source": page.labels.get("instance") or page.source,
            "severity": hook.severity,
            "timestamp": page.opened_at.isoformat(),
            "component": page.labels.get("service") or page.alert_name,
            "group": page.team_id,
            "class": page.alert_name,
            "custom_details": {
                "page": page.id,
                "policy": page.policy_id,
                "rotation": page.rotation_id,
                "details": page.details[:2000] or None,
                "business_impact": page.business_impact,
                "labels": page.labels or None,
            },
        }
        body["payload"] = {k: v for k, v in body["payload"].items() if v is not None}
        body["client"] = "opsbot"
        links = [
            {"href": url, "text": text}
            for url, text in ((page.runbook_url, "Runbook"), (page.link_url, "Alert source"))
            if url
        ]
        if links:
            body["links"] = links
    return body


def json_body(runtime: Runtime, page: Page, action: str, now: datetime) -> dict[str, Any]:
    return {
        "event": _JSON_EVENT[action],
        "dedup_key": dedup_key(page),
        "sent_at": now.isoformat(),
        "page": {
            "id": page.id,
            "summary": page.summary,
            "status": page.status,
            "source": page.source,
            "team": page.team_id,
            "rotation": page.rotation_id,
            "policy": page.policy_id,
            "opened_at": page.opened_at.isoformat(),
            "acknowledged_by": page.acknowledged_by,
            "resolved_by": page.resolved_by,
            "requested_by": page.requested_by,
            "labels": page.labels,
            "runbook_url": page.runbook_url,
            "link_url": page.link_url,
        },
    }


# ---- the sender ----------------------------------------------------------------------------


class WebhookSender:
    """Delivers due webhook rows: 2xx is done; 429, 5xx and network errors are retried with
    capped, jittered backoff (about 2 s, 4 s … 5 min) while the delivery is still useful, and the
    page says so once when a hook keeps failing; any other answer, or a missing secret, fails
    the delivery at once and says so on the page."""

    name = "webhook sender"

    def __init__(self, runtime: Runtime, interval: float = 1.0) -> None:
        self.runtime = runtime
        self.interval = interval
        # Full delay down to half of it: replicas retrying one hook spread out, and a retry is
        # never later than the nominal backoff.
        self.jitter: Callable[[float], float] = lambda delay: delay * random.uniform(0.5, 1.0)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- background loop (started with the scheduler and the outbox) ---------------------------

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="opsbot-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        errors = 0
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.drain()
                errors = 0
                pause = self.interval
            except Exception:  # a database blip must not stop deliveries for good
                errors += 1
                pause = min(self.interval * 2.0**errors, 15.0)
                log.exception("webhook drain failed (%s in a row); again in %.0fs", errors, pause)
                self._stop.wait(pause)  # wake-ups must not turn the backoff into a busy loop
                continue
            self._wake.wait(pause)

    def drain(self, limit: int = 50) -> int:
        started = time.monotonic()
        self._recover()
        delivered = 0
        for delivery_id in self._due(limit):
            if self._deliver(delivery_id):
                delivered += 1
            if time.monotonic() - started > DRAIN_BUDGET_SECONDS:
                break
        return delivered

    def _due(self, limit: int) -> list[int]:
        now = self.runtime.clock.now()
        with self.runtime.db.session() as session:
            return list(
                session.exec(
                    select(WebhookDelivery.id)
                    .where(WebhookDelivery.status == PENDING)
                    .where(WebhookDelivery.not_before <= now)
                    .order_by(col(WebhookDelivery.id))
                    .limit(limit)
                ).all()
            )

    def _recover(self) -> None:
        """A row left mid-send by a crash is sent again: both formats dedupe on the page's key."""
        cutoff = self.runtime.clock.now() - STUCK_AFTER
        with self.runtime.db.session() as session:
            session.exec(
                update(WebhookDelivery)
                .where(col(WebhookDelivery.status) == SENDING)
                .where(col(WebhookDelivery.claimed_at) <= cutoff)
                .values(status=PENDING)
            )

    def _deliver(self, delivery_id: int) -> bool:
        now = self.runtime.clock.now()
        with self.runtime.db.session() as session:
            claimed = session.exec(
                update(WebhookDelivery)
                .where(col(WebhookDelivery.id) == delivery_id)
                .where(col(WebhookDelivery.status) == PENDING)
                .values(status=SENDING, attempts=WebhookDelivery.attempts + 1, claimed_at=now)
            )
            if claimed.rowcount != 1:
                return False
            row = session.get(WebhookDelivery, delivery_id)
            assert row is not None
            webhook_id, body, attempts = row.webhook_id, dict(row.payload), row.attempts
        hook = self.runtime.org.webhook(webhook_id)
        if hook is None:
            return self._finish(delivery_id, FAILED, None, "the webhook is no longer in the config")
        request, problem = _request(hook, body)
        if request is None:
            return self._finish(delivery_id, FAILED, None, problem)
        status, answer = _post(hook.endpoint or "", request)
        if status is None:
            return self._retry_or_fail(delivery_id, attempts, None, f"connection: {answer}")
        if 200 <= status < 300:
            return self._finish(delivery_id, SENT, status, None)
        error = f"{status} {answer[:200]}".strip()
        if status == 429 or status >= 500:
            return self._retry_or_fail(delivery_id, attempts, status, error)
        return self._finish(delivery_id, FAILED, status, error)

    def _retry_or_fail(
        self, delivery_id: int, attempts: int, status: int | None, error: str
    ) -> bool:
        now = self.runtime.clock.now()
        with self.runtime.db.session() as session:
            row = session.get(WebhookDelivery, delivery_id)
            assert row is not None
            page = session.get(Page, row.page_id)
            action, useful = row.action, _still_useful(row, page, now)
            if useful and page is not None and attempts == WARN_AFTER_ATTEMPTS:
                from bot.paging import service  # the page says so: nobody trusts a silent hook

                service.note(
                    self.runtime,
                    session,
                    page,
                    "webhook_failing",
                    f"{row.webhook_id}: not taken after {attempts} tries ({error}); still trying",
                )
        if not useful:
            if action == RESOLVE:
                return self._finish(
                    delivery_id, FAILED, status, f"{error} (gave up after {attempts} tries)"
                )
            return self._finish(delivery_id, SUPERSEDED, status, f"{error}; the page moved on")
        with self.runtime.db.session() as session:
            row = session.get(WebhookDelivery, delivery_id)
            assert row is not None
            row.status = PENDING
            row.response_status = status
            row.last_error = error[:500]
            delay = self.jitter(min(2.0**attempts, MAX_BACKOFF_SECONDS))
            row.not_before = now + timedelta(seconds=delay)
        log.info("webhook delivery %s will be retried: %s", delivery_id, error)
        return False

    def _finish(self, delivery_id: int, status: str, code: int | None, error: str | None) -> bool:
        now = self.runtime.clock.now()
        with self.runtime.db.session() as session:
            row = session.get(WebhookDelivery, delivery_id)
            assert row is not None
            row.status = status
            row.response_status = code
            row.last_error = error[:500] if error else None
            if status == SENT:
                row.sent_at = now
                return True
            if status == SUPERSEDED:
                log.info("webhook delivery %s dropped: %s", row.key, error)
                return False
            log.warning("webhook delivery %s failed: %s", row.key, error)
            from bot.paging import service  # the page says so: nobody should trust a silent hook

            page = service.get_page(session, row.page_id)
            service.note(
                self.runtime, session, page, "webhook_failed", f"{row.webhook_id}: {error}"
            )
        return False


def _still_useful(row: WebhookDelivery, page: Page | None, now: datetime) -> bool:
    """Whether a delivery that failed is worth trying again (see the module's note)."""
    if page is None:
        return False
    if row.action == TRIGGER:
        return page.status == TRIGGERED
    if row.action == ACKNOWLEDGE:
        return page.status == ACKNOWLEDGED
    return now - row.created_at < RESOLVE_USEFUL_FOR


def _request(hook: Webhook, body: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The JSON body and headers of a delivery, with its secret from the environment."""
    headers = {"Content-Type": "application/json", "User-Agent": "opsbot"}
    if hook.format == "pagerduty":
        key = os.environ.get(hook.routing_key_env or "")
        if not key:
            return None, f"the environment variable {hook.routing_key_env} is not set"
        return {"json": {"routing_key": key, **body}, "headers": headers}, ""
    if hook.token_env:
        token = os.environ.get(hook.token_env)
        if not token:
            return None, f"the environment variable {hook.token_env} is not set"
        headers["Authorization"] = f"Bearer {token}"
    return {"json": body, "headers": headers}, ""


def _post(url: str, request: dict[str, Any]) -> tuple[int | None, str]:
    """(HTTP status, body text), or (None, why) when no answer came (refused, timed out)."""
    data = json.dumps(request["json"]).encode()
    http = urllib.request.Request(url, data=data, headers=request["headers"], method="POST")
    try:
        with urllib.request.urlopen(http, timeout=TIMEOUT_SECONDS) as response:
            return response.status, response.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(2000).decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return None, str(getattr(exc, "reason", exc))


def install(runtime: Runtime) -> WebhookSender:
    """Deliver from a loop of its own (a page's webhook goes out within a second of the button
    or `/page` that queued it, whichever process took the request) and after every scheduler
    tick (an escalation step's webhook goes out in the tick that fired it)."""
    sender = WebhookSender(runtime)
    runtime.extras["paging.webhooks"] = sender
    runtime.loops.append(sender)

    def drain() -> None:
        try:
            sender.drain()
        except Exception:  # a broken hook never stops the scheduler; rows stay pending
            log.exception("webhook drain failed")

    runtime.scheduler.after_tick.append(drain)
    return sender
