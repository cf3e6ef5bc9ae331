"""Alerts into pages: a webhook's alerts open, repeat on or resolve pages, in order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmodel import Session

from bot.paging import telemetry
from bot.paging.alerts import FIRING, Alert, route
from bot.paging.lifecycle import resolve_by_key
from bot.paging.service import trigger_page

if TYPE_CHECKING:
    from bot.runtime import Runtime


@dataclass(frozen=True)
class AlertOutcome:
    fingerprint: str
    action: str  # opened, repeated, resolved, no_open_page
    page_id: int | None


def receive_alerts(runtime: Runtime, session: Session, alerts: list[Alert]) -> list[AlertOutcome]:
    """Apply a webhook's alerts in order. Every alert is routed before anything is stored, so a
    body with an unroutable alert changes nothing (NoRoute)."""
    policies = [route(runtime.org, alert) if alert.status == FIRING else None for alert in alerts]
    outcomes = []
    for alert, policy_id in zip(alerts, policies, strict=True):
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
        outcomes.append(AlertOutcome(alert.fingerprint, action, page.id if page else None))
    telemetry.alerts_received(
        session, [(a.source, o.action) for a, o in zip(alerts, outcomes, strict=True)]
    )
    return outcomes
