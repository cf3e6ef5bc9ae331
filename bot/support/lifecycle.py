"""The life of a support ticket: claim, wait, replies, reopen, resolve, merge, re-categorise,
escalate, ratings, and what the SLA reminder and breach timers do."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from bot import logs, outbox
from bot.db import after_commit
from bot.errors import Conflict, InvalidInput, NotAllowed, NotFound
from bot.paging import lifecycle as paging
from bot.paging.models import Page
from bot.runbooks import runbook_index
from bot.support import blocks, forms
from bot.support.intake import (
    CriticalGateNotMet,
    critical_problems,
    route_critical,
    schedule_office_hours,
)
from bot.support.models import (
    CATEGORIES,
    IN_PROGRESS,
    NEW,
    REOPENED,
    RESOLVED,
    SEVERITIES,
    WAITING,
    Ticket,
    TicketEvent,
)
from bot.support.service import (
    REOPEN_WINDOW,
    arm,
    disarm,
    events_of,
    get_ticket,
    is_responder,
    record,
    refresh_card,
    require_open,
    require_responder,
    rotation_person,
    say_in_thread,
    sla_state,
    ticket_for_message,
)

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger("bot.support")

# ---- the life of a ticket -------------------------------------------------------------------


def claim(runtime: Runtime, session: Session, ticket: Ticket, user: str) -> TicketEvent:
    now = runtime.clock.now()
    require_open(ticket)
    require_responder(runtime, session, ticket, user, "claim a ticket")
    if ticket.state == IN_PROGRESS and ticket.assignee == user:
        raise Conflict(f"You are already working on ticket #{ticket.id}.")
    ticket.assignee = user
    event = record(session, ticket, "claimed", now, user, state=IN_PROGRESS)
    arm(runtime.org, session, ticket, now)
    refresh_card(runtime, session, ticket, event)
    return event


def wait_on_requester(runtime: Runtime, session: Session, ticket: Ticket, user: str) -> TicketEvent:
    now = runtime.clock.now()
    require_open(ticket)
    require_responder(runtime, session, ticket, user, "set a ticket to waiting")
    if ticket.state == WAITING:
        raise Conflict(f"Ticket #{ticket.id} is already waiting on the requester.")
    if ticket.assignee is None:
        ticket.assignee = user
    event = record(session, ticket, "waiting", now, user, state=WAITING)
    _announce(runtime, session, ticket, event, "waiting", blocks.waiting_text(ticket), now)
    return event


def thread_reply(
    runtime: Runtime, session: Session, channel: str, thread_ts: str, user: str
) -> Ticket | None:
    """A person replied in a ticket's thread: first response, requester back, or reopen."""
    ticket = ticket_for_message(session, channel, thread_ts)
    if ticket is None:
        return None
    now = runtime.clock.now()
    queue = runtime.org.queue(ticket.queue_id)
    if user == ticket.requester:
        if ticket.state == WAITING:
            event = record(session, ticket, "requester_replied", now, user, state=IN_PROGRESS)
            arm(runtime.org, session, ticket, now)
            refresh_card(runtime, session, ticket, event)
        elif (
            ticket.state == RESOLVED
            and ticket.resolved_at is not None
            and now - ticket.resolved_at <= REOPEN_WINDOW
        ):
            reopen(runtime, session, ticket, user)
        return ticket
    if (
        ticket.first_response_at is None
        and ticket.is_open
        and is_responder(runtime, session, queue, user)
    ):
        ticket.first_response_at = now
        event = record(session, ticket, "first_response", now, user)
        arm(runtime.org, session, ticket, now)
        refresh_card(runtime, session, ticket, event)
    return ticket


def _announce(
    runtime: Runtime,
    session: Session,
    ticket: Ticket,
    event: TicketEvent,
    name: str,
    text: str,
    now: datetime,
) -> None:
    """After a transition: re-time the SLA timers, say it in the thread, refresh the card."""
    arm(runtime.org, session, ticket, now)
    say_in_thread(session, ticket, f"support:ticket:{ticket.id}:ev{event.id}:{name}", text, now)
    refresh_card(runtime, session, ticket, event)


def reopen(runtime: Runtime, session: Session, ticket: Ticket, user: str) -> TicketEvent:
    now = runtime.clock.now()
    ticket.resolved_at = None
    ticket.resolution = None
    event = record(session, ticket, "reopened", now, user, state=REOPENED)
    _announce(runtime, session, ticket, event, "reopened", blocks.reopened_text(ticket), now)
    return event


def resolve(
    runtime: Runtime,
    session: Session,
    ticket: Ticket,
    user: str,
    *,
    resolution: str = "fixed",
    runbook: str | None = None,
    duplicate_of: int | None = None,
) -> TicketEvent:
    now = runtime.clock.now()
    require_open(ticket)
    if user != ticket.requester:
        require_responder(runtime, session, ticket, user, "resolve someone else's ticket")
    ticket.resolved_at = now
    ticket.resolution = resolution
    ticket.runbook = runbook
    ticket.duplicate_of = duplicate_of
    detail = {
        "docs": f"answered by runbook {runbook}",
        "duplicate": f"duplicate of #{duplicate_of}",
    }
    event = record(
        session, ticket, "resolved", now, user, detail.get(resolution, resolution), state=RESOLVED
    )
    disarm(session, ticket)
    ticket.first_response_due = ticket.resolution_due = None
    stood_down = _stand_down_page(runtime, session, ticket, user, "was resolved")
    say_in_thread(
        session,
        ticket,
        f"support:ticket:{ticket.id}:ev{event.id}:resolved",
        blocks.resolved_text(ticket, user, stood_down),
        now,
    )
    outbox.post(
        session,
        f"support:ticket:{ticket.id}:ev{event.id}:rate",
        ticket.requester,
        forms.rating_text(ticket),
        now,
        blocks=forms.rating_prompt(ticket),
    )
    refresh_card(runtime, session, ticket, event)
    return event


def solved_by_runbook(
    runtime: Runtime, session: Session, ticket: Ticket, user: str, slug: str
) -> TicketEvent:
    if runbook_index(runtime).get(slug) is None:
        raise NotFound(f"There is no runbook '{slug}' any more.")
    return resolve(runtime, session, ticket, user, resolution="docs", runbook=slug)


def merge(
    runtime: Runtime, session: Session, ticket: Ticket, into_id: int, user: str
) -> TicketEvent:
    into = get_ticket(session, into_id)
    if into.id == ticket.id:
        raise InvalidInput("A ticket cannot be merged into itself.")
    require_open(ticket)
    require_responder(runtime, session, ticket, user, "merge tickets")
    if not into.is_open:  # a stale Merge button: the other ticket was resolved since
        raise Conflict(
            f"Ticket #{into.id} is resolved since; #{ticket.id} stays open. Resolve it on its "
            "own, or reopen the other first."
        )
    event = resolve(runtime, session, ticket, user, resolution="duplicate", duplicate_of=into.id)
    note = record(session, into, "merged", event.at, user, f"#{ticket.id} merged into this")
    say_in_thread(
        session,
        into,
        f"support:ticket:{into.id}:ev{note.id}:merged",
        blocks.merged_text(ticket, into),
        event.at,
    )
    return event


def set_category(
    runtime: Runtime, session: Session, ticket: Ticket, category: str, user: str
) -> TicketEvent:
    if category not in CATEGORIES:
        raise InvalidInput(f"'{category}' is not a category.")
    require_open(ticket)
    if user != ticket.requester:
        require_responder(runtime, session, ticket, user, "change the category")
    now = runtime.clock.now()
    before = ticket.category
    ticket.category = category
    event = record(session, ticket, "category", now, user, f"{before or '-'} -> {category}")
    if category == "office_hours" and before != "office_hours":
        notice = schedule_office_hours(runtime, session, ticket, now)
        say_in_thread(session, ticket, f"support:ticket:{ticket.id}:ev{event.id}:oh", notice, now)
    elif before == "office_hours":
        ticket.office_hours_at = None
        arm(runtime.org, session, ticket, now)
    refresh_card(runtime, session, ticket, event)
    return event


def set_severity(
    runtime: Runtime,
    session: Session,
    ticket: Ticket,
    severity: str,
    user: str,
    *,
    business_impact: str | None = None,
    why_now: str | None = None,
) -> tuple[TicketEvent, list[str]]:
    if severity not in SEVERITIES:
        raise InvalidInput(f"'{severity}' is not a severity.")
    require_open(ticket)
    if user != ticket.requester:
        require_responder(runtime, session, ticket, user, "change the severity")
    if severity == ticket.severity:
        raise Conflict(f"Ticket #{ticket.id} is already {severity}.")
    if severity == "critical":
        problems = critical_problems(business_impact, why_now)
        if problems:
            raise CriticalGateNotMet(" ".join(problems.values()))
        ticket.business_impact, ticket.why_now = business_impact, (why_now or "").strip()
    now = runtime.clock.now()
    before = ticket.severity
    ticket.severity = severity
    event = record(session, ticket, "severity", now, user, f"{before} -> {severity}")
    notices: list[str] = []
    if before == "critical" and ticket.page_id is not None:
        stood_down = _stand_down_page(runtime, session, ticket, user, "is no longer critical")
        ticket.page_id = None  # raising it again pages afresh
        if stood_down is not None:
            notices.append(blocks.page_stood_down_notice(stood_down))
    if ticket.category != "office_hours":
        if severity == "critical" and ticket.page_id is None:
            queue = runtime.org.queue(ticket.queue_id)
            notices.append(route_critical(runtime, session, ticket, queue, now))
        arm(runtime.org, session, ticket, now)
    for index, notice in enumerate(notices):
        say_in_thread(
            session, ticket, f"support:ticket:{ticket.id}:ev{event.id}:n{index}", notice, now
        )
    refresh_card(runtime, session, ticket, event)
    return event, notices


def _stand_down_page(
    runtime: Runtime, session: Session, ticket: Ticket, user: str | None, what: str
) -> int | None:
    """The request that paged is closed (or no longer critical): nobody further is woken for it.
    The page's number when it stood down, None when there was no open page."""
    if ticket.page_id is None:
        return None
    page = paging.stand_down(
        runtime, session, ticket.page_id, user, f"support ticket #{ticket.id} {what}"
    )
    return page.id if page is not None else None


def page_answered(
    runtime: Runtime, session: Session, page: Page, user: str, now: datetime
) -> Ticket | None:
    """Someone acknowledged (or resolved) the page of a critical ticket: that is the ticket's
    first response, and the responder has the ticket."""
    ticket = session.exec(select(Ticket).where(Ticket.page_id == page.id)).first()
    if ticket is None or not ticket.is_open or ticket.first_response_at is not None:
        return ticket
    ticket.first_response_at = now
    ticket.assignee = user
    state = IN_PROGRESS if ticket.state in (NEW, REOPENED) else None
    event = record(session, ticket, "first_response", now, user, f"page #{page.id}", state=state)
    _announce(
        runtime, session, ticket, event, "page-ack", blocks.page_answered_text(ticket, page.id), now
    )
    return ticket


def escalate(
    runtime: Runtime, session: Session, ticket: Ticket, user: str | None, reason: str
) -> TicketEvent:
    """Move the ticket to T2 with its history; the triage channel hears of it."""
    now = runtime.clock.now()
    require_open(ticket)
    queue = runtime.org.queue(ticket.queue_id)
    if user is not None:
        require_responder(runtime, session, ticket, user, "escalate a ticket")
    if not queue.t2:
        raise Conflict(f"Queue {queue.id} has no T2 rotation to escalate to.")
    if ticket.tier >= 2:
        raise Conflict(f"Ticket #{ticket.id} is already with T2.")
    history = events_of(session, ticket)
    ticket.tier = 2
    ticket.assignee = rotation_person(runtime, session, queue.t2, besides=ticket.requester)
    event = record(session, ticket, "escalated", now, user, reason)
    zone = runtime.org.zone(ticket.team_id)
    say_in_thread(
        session,
        ticket,
        f"support:ticket:{ticket.id}:ev{event.id}:escalated",
        blocks.escalated_text(ticket, queue, reason, user),
        now,
    )
    if ticket.assignee:
        outbox.post(
            session,
            f"support:ticket:{ticket.id}:ev{event.id}:t2",
            ticket.assignee,
            blocks.history_text(ticket, reason, history, zone),
            now,
            blocks=blocks.history_blocks(ticket, reason, history, zone),
        )
    if queue.triage_channel:
        outbox.post(
            session,
            f"support:ticket:{ticket.id}:ev{event.id}:triage",
            queue.triage_channel,
            blocks.triage_text(ticket, queue, reason),
            now,
            unfurl_links=False,
        )
    refresh_card(runtime, session, ticket, event)
    return event


def rate(runtime: Runtime, session: Session, ticket: Ticket, user: str, score: int) -> TicketEvent:
    if user != ticket.requester:
        raise NotAllowed(f"Only the person who asked can rate ticket #{ticket.id}.")
    if not 1 <= score <= 5:
        raise InvalidInput("A rating is from 1 to 5.")
    ticket.rating = score
    return record(session, ticket, "rated", runtime.clock.now(), user, str(score))


def comment_on_rating(
    runtime: Runtime, session: Session, ticket: Ticket, user: str, comment: str
) -> TicketEvent | None:
    if user != ticket.requester:
        raise NotAllowed(f"Only the person who asked can comment on ticket #{ticket.id}.")
    comment = comment.strip()
    if not comment:
        return None
    ticket.rating_comment = comment[:3000]
    return record(session, ticket, "rating_comment", runtime.clock.now(), user, comment[:3000])


def resolve_by_reaction(
    runtime: Runtime, session: Session, channel: str, ts: str, user: str
) -> Ticket | None:
    """The requester's :white_check_mark: on the request (or on the card) resolves it."""
    ticket = ticket_for_message(session, channel, ts)
    if ticket is None or user != ticket.requester or not ticket.is_open:
        return None
    resolve(runtime, session, ticket, user, resolution="fixed")
    return ticket


# ---- SLA timers -----------------------------------------------------------------------------


def on_sla_timer(
    runtime: Runtime, session: Session, ticket_id: int, target: str, stage: str, due: datetime
) -> None:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or not ticket.is_open or getattr(ticket, f"{target}_breached"):
        return
    state = sla_state(runtime.org, session, ticket)
    clock = state.clock(target) if state else None
    if clock is None:
        return  # answered, paused or moved to office hours since the timer was set
    expected = clock.warn_at if stage == "warn" else clock.due_at
    now = runtime.clock.now()
    if expected is None or expected > now + timedelta(seconds=1):
        return  # the deadline moved; a newer timer stands for it
    queue = runtime.org.queue(ticket.queue_id)
    zone = runtime.org.zone(ticket.team_id)
    facts = {
        "ticket_id": ticket.id,
        "queue": ticket.queue_id,
        "target": target,
        "assignee": ticket.assignee,
        "due": clock.due_at.isoformat() if clock.due_at else None,
    }
    if stage == "warn" and clock.due_at is not None and clock.due_at <= now:
        return  # back after a restart past the deadline: the breach says it, not a reminder
    if stage == "warn":
        after_commit(session, lambda: logs.event(log, "SLA reminder", **facts))
        if ticket.assignee:
            outbox.post(
                session,
                f"support:ticket:{ticket.id}:warn:{target}:{clock.due_at.isoformat() if clock.due_at else ''}",
                ticket.assignee,
                blocks.reminder_text(ticket, target, clock, zone),
                now,
            )
        return
    setattr(ticket, f"{target}_breached", True)
    after_commit(session, lambda: logs.event(log, "SLA breached", level=logging.WARNING, **facts))
    reason = f"{blocks.TARGET_LABELS[target]} SLA breached"
    event = record(session, ticket, "breached", now, detail=reason)
    if ticket.tier < 2 and queue.t2:
        escalate(runtime, session, ticket, None, reason)
        return
    if queue.triage_channel:
        outbox.post(
            session,
            f"support:ticket:{ticket.id}:ev{event.id}:triage",
            queue.triage_channel,
            blocks.triage_text(ticket, queue, reason),
            now,
            unfurl_links=False,
        )
    if ticket.assignee:
        outbox.post(
            session,
            f"support:ticket:{ticket.id}:ev{event.id}:breach-dm",
            ticket.assignee,
            blocks.breach_dm_text(ticket, reason),
            now,
        )
    refresh_card(runtime, session, ticket, event)


def handle_sla_timer(runtime: Runtime, session: Session, ref: str, due: datetime) -> None:
    _, ticket_id, target, stage = ref.split(":")
    on_sla_timer(runtime, session, int(ticket_id), target, stage, due)
