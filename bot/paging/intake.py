"""Alerts into pages: a webhook's alerts open, repeat on or resolve pages, in order."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmodel import Session

from bot.paging import telemetry
from bot.paging.alerts import FIRING, Alert, route
from bot.paging.lifecycle import resolve_by_key
from bot.paging.service import trigger_page

if TYPE_CHECKING:
    from bot.runtime import Runtime

# A long batch is stored in units of work of at most this many alerts, each committed on its
# own: on SQLite one writer holds the whole database, so a 5,000-alert batch in one transaction
# would keep every Slack request waiting until it ended.
ALERTS_PER_COMMIT = 25
# On SQLite a unit of work also ends once it has held the write lock this long (a slow machine
# takes longer per alert), and the next starts after a pause longer than the busy handler's
# longest sleep (100 ms), so writers waiting for the lock (a Slack request's insert) get it.
SQLITE_HOLD_SECONDS = 0.25
SQLITE_TURN_SECONDS = 0.11


@dataclass(frozen=True)
class AlertOutcome:
    fingerprint: str
    action: str  # opened, repeated, resolved, no_open_page
    page_id: int | None


def route_alerts(runtime: Runtime, alerts: list[Alert]) -> list[str | None]:
    """The policy of each firing alert (None for a resolved one). Raises NoRoute for the first
    alert no route takes, before anything is stored."""
    return [route(runtime.org, alert) if alert.status == FIRING else None for alert in alerts]


def receive_alerts(runtime: Runtime, session: Session, alerts: list[Alert]) -> list[AlertOutcome]:
    """Apply a webhook's alerts in order, in one unit of work. Every alert is routed before
    anything is stored, so a body with an unroutable alert changes nothing (NoRoute)."""
    policies = route_alerts(runtime, alerts)
    outcomes = [_apply(runtime, session, a, p) for a, p in zip(alerts, policies, strict=True)]
    telemetry.alerts_received(
        session, [(a.source, o.action) for a, o in zip(alerts, outcomes, strict=True)]
    )
    return outcomes


def receive_alert_batch(
    runtime: Runtime, alerts: list[Alert], per_commit: int = ALERTS_PER_COMMIT
) -> list[AlertOutcome]:
    """Apply a webhook's alerts in order, committing every `per_commit` alerts (on SQLite
    sooner, see SQLITE_HOLD_SECONDS). Every alert is routed first, so an unroutable alert still
    changes nothing. If the batch fails part-way, the alerts already committed stay: the sender
    resends the whole batch, and each alert whose page is open counts as a repeat on it (its
    fingerprint), so nobody is paged twice."""
    policies = route_alerts(runtime, alerts)
    sqlite = runtime.db.engine.dialect.name == "sqlite"
    outcomes: list[AlertOutcome] = []
    while len(outcomes) < len(alerts):
        if outcomes and sqlite:
            time.sleep(SQLITE_TURN_SECONDS)
        started, part = time.monotonic(), len(outcomes)
        with runtime.db.session() as session:
            while len(outcomes) < len(alerts) and len(outcomes) - part < per_commit:
                n = len(outcomes)
                outcomes.append(_apply(runtime, session, alerts[n], policies[n]))
                if sqlite and time.monotonic() - started >= SQLITE_HOLD_SECONDS:
                    break
            stored = zip(alerts[part : len(outcomes)], outcomes[part:], strict=True)
            telemetry.alerts_received(session, [(a.source, o.action) for a, o in stored])
    return outcomes


def _apply(runtime: Runtime, session: Session, alert: Alert, policy_id: str | None) -> AlertOutcome:
    if policy_id is None:
        page = resolve_by_key(runtime, session, alert.dedup_key, via=alert.source)
        action = "resolved" if page is not None else "no_open_page"
    else:
        page = trigger_page(
            runtime,
            session,
            policy_id=policy_id,
            summary=alert.summary,
            details=alert.details,
            source=alert.source,
            dedup_key=alert.dedup_key,
            labels=alert.labels,
            alert_name=alert.name,
            runbook_url=alert.runbook_url,
            link_url=alert.generator_url,
        )
        action = "repeated" if page.repeat_count > 1 else "opened"
    return AlertOutcome(alert.fingerprint, action, page.id if page else None)
