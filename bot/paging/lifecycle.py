"""Paging lifecycle: people answer pages (acknowledge, escalate, resolve, classify), alerts
clear them, and a closed source stands them down.

Every move is a compare-and-set UPDATE on the page's status issued before the page is read, so
concurrent presses and replicas serialise on the row and end in one defined state: an
acknowledgement racing a resolve ends resolved, with the loser told why. Escalation timers are
cancelled before the page's UPDATE (the scheduler's lock order: timer, then page).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import String, cast, literal, update
from sqlmodel import Session, col, select

from bot.errors import Conflict, InvalidInput
from bot.mrkdwn import escape
from bot.paging.access import require_responder
from bot.paging.blocks import local, when
from bot.paging.escalation import (
    ACKNOWLEDGE,
    ACKNOWLEDGED,
    ESCALATE,
    RESOLVE,
    RESOLVED,
    TRIGGERED,
    allowed_from,
    refusal,
)
from bot.paging.models import CLASSIFICATIONS, Page
from bot.paging.service import (
    ESCALATION_TIMER,
    cancel_escalation,
    get_page,
    page_zone,
    publish,
    record_event,
    run_chain,
)
from bot.scheduler import Timer

if TYPE_CHECKING:
    from bot.runtime import Runtime

# Other capabilities hear of a person's answer to a page through these (see `on_response`).
RESPONSE_LISTENERS = "paging.response_listeners"


def check_acknowledge(runtime: Runtime, session: Session, page_id: int, user_id: str) -> Page:
    """What `acknowledge` checks before it writes, from reads alone: the page, or the refusal
    (no such page, a person who may not, a page acknowledged or resolved already). A session
    that only reads can answer a second press with it, without a write transaction."""
    seen = get_page(session, page_id)
    require_responder(runtime, session, seen, user_id, ACKNOWLEDGE)
    if seen.status not in allowed_from(ACKNOWLEDGE):
        # A second press, or one after the resolve: answered from the read (the compare-and-set
        # in `acknowledge` is what decides a race between two first presses).
        raise _why_not(runtime, seen, ACKNOWLEDGE)
    return seen


def acknowledge(runtime: Runtime, session: Session, page_id: int, user_id: str) -> Page:
    now = runtime.clock.now()
    check_acknowledge(runtime, session, page_id, user_id)
    cancel_escalation(session, page_id)  # timers before the page: the scheduler's lock order
    claimed = session.exec(
        update(Page)
        .where(col(Page.id) == page_id)
        .where(col(Page.status).in_(allowed_from(ACKNOWLEDGE)))
        .values(
            status=ACKNOWLEDGED,
            acknowledged_at=now,
            acknowledged_by=user_id,
            version=Page.version + 1,
        )
    )
    page = get_page(session, page_id)
    if claimed.rowcount != 1:
        raise _why_not(runtime, page, ACKNOWLEDGE)
    record_event(session, page, "acknowledged", now, actor=user_id)
    publish(runtime, session, page, now)
    _tell_listeners(runtime, session, page, ACKNOWLEDGED, user_id, now)
    return page


@dataclass(frozen=True)
class Escalation:
    page: Page
    reached: list[str]  # Slack ids and `webhook:<id>`s the escalation notified


def escalate(runtime: Runtime, session: Session, page_id: int, user_id: str) -> Escalation:
    """Notify the next step now (the responder wants help, or cannot take it)."""
    now = runtime.clock.now()
    require_responder(runtime, session, get_page(session, page_id), user_id, ESCALATE)
    cancel_escalation(session, page_id)
    claimed = session.exec(
        update(Page)
        .where(col(Page.id) == page_id)
        .where(col(Page.status).in_(allowed_from(ESCALATE)))
        .where(col(Page.position) + 1 < col(Page.steps_total))
        .values(
            status=TRIGGERED,
            acknowledged_at=None,
            acknowledged_by=None,
            version=Page.version + 1,
        )
    )
    page = get_page(session, page_id)
    if claimed.rowcount != 1:
        if page.is_open:
            raise Conflict(
                f"Every step of policy '{page.policy_id}' has been notified already; "
                "there is nobody further to escalate to."
            )
        raise _why_not(runtime, page, ESCALATE)
    record_event(session, page, "escalated", now, actor=user_id)
    reached = run_chain(runtime, session, page, page.position + 1, now)
    publish(runtime, session, page, now)
    return Escalation(page, reached)


def resolve(
    runtime: Runtime,
    session: Session,
    page_id: int,
    user_id: str | None,
    *,
    classification: str | None = None,
    note: str | None = None,
) -> Page:
    if classification is not None and classification not in CLASSIFICATIONS:
        raise InvalidInput(
            f"'{classification}' is not a classification; use one of: " + ", ".join(CLASSIFICATIONS)
        )
    now = runtime.clock.now()
    if user_id is not None:
        require_responder(runtime, session, get_page(session, page_id), user_id, RESOLVE)
    closed = _close(
        session,
        page_id,
        now,
        user_id,
        classification=classification,
        classified_by=user_id if classification else None,
    )
    page = get_page(session, page_id)
    if not closed:
        raise _why_not(runtime, page, RESOLVE)
    _resolved(runtime, session, page, now, user_id, classification, note)
    if user_id is not None:
        _tell_listeners(runtime, session, page, RESOLVED, user_id, now)
    return page


def stand_down(
    runtime: Runtime, session: Session, page_id: int, user_id: str | None, reason: str
) -> Page | None:
    """The page's source was closed elsewhere (its support request was resolved): stop the
    escalation, close the page and say why on it, so nobody further is woken for it. None when
    the page was already resolved."""
    now = runtime.clock.now()
    if not _close(session, page_id, now, user_id):
        return None
    page = get_page(session, page_id)
    record_event(session, page, "stood_down", now, actor=user_id, detail=reason)
    publish(runtime, session, page, now)
    return page


def _close(
    session: Session, page_id: int, now: datetime, user_id: str | None, **values: str | None
) -> bool:
    """Cancel the page's escalation and mark it resolved, if it may be; whether it was."""
    cancel_escalation(session, page_id)
    claimed = session.exec(
        update(Page)
        .where(col(Page.id) == page_id)
        .where(col(Page.status).in_(allowed_from(RESOLVE)))
        .values(
            status=RESOLVED,
            resolved_at=now,
            resolved_by=user_id,
            open_key=None,
            version=Page.version + 1,
            **values,
        )
    )
    return claimed.rowcount == 1


ResponseListener = Callable[[Session, Page, str, str, datetime], None]


def on_response(runtime: Runtime, listener: ResponseListener) -> None:
    """Call `listener(session, page, status, user_id, now)` whenever a person acknowledges or
    resolves a page, in the same unit of work. Support takes it as its ticket's first response;
    paging itself never imports the capabilities that listen."""
    runtime.extras.setdefault(RESPONSE_LISTENERS, []).append(listener)


def _tell_listeners(
    runtime: Runtime, session: Session, page: Page, status: str, user_id: str, now: datetime
) -> None:
    for listener in runtime.extras.get(RESPONSE_LISTENERS, ()):
        listener(session, page, status, user_id, now)


def resolve_by_key(runtime: Runtime, session: Session, dedup_key: str, via: str) -> Page | None:
    """A `resolved` alert resolves its open page (unclassified: a person classifies it later)."""
    now = runtime.clock.now()
    open_page = select(Page.id).where(col(Page.open_key) == dedup_key).scalar_subquery()
    session.exec(
        update(Timer)
        .where(col(Timer.kind) == ESCALATION_TIMER)
        .where(col(Timer.status) == "pending")
        .where(col(Timer.ref) == literal("page:") + cast(open_page, String))
        .values(status="cancelled")
    )
    row = session.exec(
        update(Page)
        .where(col(Page.open_key) == dedup_key)
        .values(status=RESOLVED, resolved_at=now, open_key=None, version=Page.version + 1)
        .returning(Page.id)
    ).first()
    if row is None:
        return None
    page = get_page(session, row[0])
    _resolved(runtime, session, page, now, None, None, f"the alert cleared in {via}")
    return page


def _resolved(
    runtime: Runtime,
    session: Session,
    page: Page,
    now: datetime,
    user_id: str | None,
    classification: str | None,
    note: str | None,
) -> None:
    detail = CLASSIFICATIONS[classification] if classification else ""
    if note:
        detail = f"{detail}: {note}" if detail else note
    record_event(session, page, "resolved", now, actor=user_id, detail=detail[:500])
    publish(runtime, session, page, now)


def classify(
    runtime: Runtime, session: Session, page_id: int, user_id: str, classification: str
) -> Page:
    """Classify (or reclassify) a resolved page for the load report."""
    if classification not in CLASSIFICATIONS:
        raise InvalidInput(
            f"'{classification}' is not a classification; use one of: " + ", ".join(CLASSIFICATIONS)
        )
    now = runtime.clock.now()
    require_responder(runtime, session, get_page(session, page_id), user_id, "classify")
    claimed = session.exec(
        update(Page)
        .where(col(Page.id) == page_id)
        .where(col(Page.status) == RESOLVED)
        .values(classification=classification, classified_by=user_id, version=Page.version + 1)
    )
    page = get_page(session, page_id)
    if claimed.rowcount != 1:
        raise Conflict("Only a resolved page can be classified; resolve it first.")
    record_event(
        session, page, "classified", now, actor=user_id, detail=CLASSIFICATIONS[classification]
    )
    publish(runtime, session, page, now)
    return page


class PageConflict(Conflict):
    """A move the page's current state refuses; `by` is who got there first (a Slack id).

    The message is plain text (fit for a modal's error); `mrkdwn` says the same for Slack
    messages, with the time as a date token each reader sees in their own zone.
    """

    def __init__(self, message: str, status: str, by: str | None, mrkdwn: str | None = None):
        super().__init__(message)
        self.status = status
        self.by = by
        self.mrkdwn = mrkdwn or escape(message)


def _why_not(runtime: Runtime, page: Page, event: str) -> PageConflict:
    zone = page_zone(runtime, page)
    if page.status == RESOLVED and page.resolved_at is not None:
        what, at = "resolved", page.resolved_at
    elif page.status == ACKNOWLEDGED and event == ACKNOWLEDGE and page.acknowledged_at:
        what, at = "acknowledged", page.acknowledged_at
    else:
        message = refusal(page.status, event)
        return PageConflict(message, page.status, page.acknowledged_by)
    text = f"Page #{page.id} was already {what} at "
    by = page.resolved_by if page.status == RESOLVED else page.acknowledged_by
    return PageConflict(f"{text}{local(at, zone)}.", page.status, by, f"{text}{when(at, zone)}.")
