"""What paging tells operators: one log line and the metrics for each change in a page's life.

Called from the page timeline (`service.record_event`) and run only once the change is committed, so a
rolled-back press or a lost race is neither logged nor counted.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot import metrics
from bot.db import after_commit
from bot.logs import event

log = logging.getLogger("bot.paging")

# Timeline entries that are detail, not a change of state: logged at DEBUG.
_DETAIL = {"notified", "skipped"}


def page_changed(
    session: Session, page: Any, kind: str, now: datetime, actor: str | None, detail: str
) -> None:
    facts: dict[str, Any] = {
        "page_id": page.id,
        "policy": page.policy_id,
        "team": page.team_id,
        "by": actor,
    }
    opened_at = page.opened_at
    source = page.source
    if kind == "opened":
        facts |= {"source": source, "summary": page.summary}
    elif detail:
        facts["detail"] = detail

    def tell() -> None:
        if kind == "opened":
            metrics.pages_opened.labels(source).inc()
        elif kind == "acknowledged":
            metrics.pages_acknowledged.inc()
            if opened_at is not None:
                metrics.time_to_acknowledge.observe(max(0.0, (now - opened_at).total_seconds()))
        elif kind == "escalated":
            metrics.escalations.labels("manual" if actor else "timeout").inc()
        elif kind == "escalation_exhausted":
            metrics.escalations.labels("exhausted").inc()
        elif kind == "resolved":
            metrics.pages_resolved.inc()
        level = logging.DEBUG if kind in _DETAIL else logging.INFO
        if kind == "escalation_exhausted":
            level = logging.WARNING
        event(log, f"page {kind.replace('_', ' ')}", level=level, **facts)

    after_commit(session, tell)


def alerts_received(session: Session, outcomes: list[tuple[str, str]]) -> None:
    """Count a webhook's alerts by source and what became of them (opened, repeated, resolved)."""

    def count() -> None:
        for source, action in outcomes:
            metrics.alerts_received.labels(source, action).inc()

    after_commit(session, count)
