"""Support tickets: intake, routing to tiers, the life of a ticket, SLA timers, reports.

Functions take the runtime (org, clock, directory) and a session explicitly; notifications go
through the outbox in the same unit of work. Nothing here knows Slack payload shapes; the
messages themselves are built in `bot.support.blocks`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from bot import outbox
from bot.business_hours import BusinessCalendar
from bot.clock import wall_time_to_utc
from bot.config import WEEKDAYS, OrgConfig, Queue
from bot.errors import Conflict, InvalidInput, NotAllowed, NotFound
from bot.oncall.service import timeline, who_is_on_call
from bot.outbox import OutboxMessage
from bot.paging.service import trigger_page
from bot.runbooks import RunbookMatch, runbook_index
from bot.runbooks.bm25 import BM25, tokenize
from bot.scheduler import cancel_timers, set_timer
from bot.support import blocks, sla
from bot.support.models import (
    BUSINESS_IMPACTS,
    CATEGORIES,
    IN_PROGRESS,
    NEW,
    OPEN_STATES,
    REOPENED,
    RESOLVED,
    SEVERITIES,
    WAITING,
    Ticket,
    TicketEvent,
)
from bot.support.report import OperationalLoad, SupportReport, TicketFacts, build_report

if TYPE_CHECKING:
    from bot.runtime import Runtime

REOPEN_WINDOW = timedelta(days=7)
SIMILAR_WINDOW = timedelta(days=14)
SIMILAR_MINIMUM_SCORE = 1.0
SLA_TIMER = "support.sla"
TARGETS = ("first_response", "resolution")
STAGES = ("warn", "breach")


class CriticalGateNotMet(InvalidInput):
    """A request asked to be critical without the two conditions the book asks for."""


# ---- queues and people ----------------------------------------------------------------------


def queue_for_channel(org: OrgConfig, channel: str | None) -> Queue | None:
    return next((q for q in org.support.queues if channel in q.channels), None)


def is_experts_channel(org: OrgConfig, channel: str | None) -> bool:
    return bool(channel) and channel == org.support.experts_channel


def default_queue(org: OrgConfig) -> Queue:
    if not org.support.queues:
        raise NotFound("No support queue is configured (support.queues in the org config).")
    return org.support.queues[0]


def queue_for_text(org: OrgConfig, text: str) -> Queue:
    """The queue of the team owning an application the text names, else the first queue."""
    words = set(tokenize(text))
    lowered = text.lower()
    for app in org.applications:
        if app.id.lower() in words or app.name.lower() in lowered:
            for queue in org.support.queues:
                if queue.team == app.owner_team:
                    return queue
    return default_queue(org)


def _person(runtime: Runtime, session: Session, ref: str | None) -> str | None:
    return runtime.directory.user_id(ref, session) if ref else None


def _same(runtime: Runtime, session: Session, ref: str, user: str) -> bool:
    return ref == user or runtime.directory.user_id(ref, session) == user


def rotation_person(runtime: Runtime, session: Session, rotation_id: str | None) -> str | None:
    """The Slack id of whoever holds a rotation now (the on-call capability's one answer)."""
    if not rotation_id:
        return None
    on_call = who_is_on_call(session, runtime.org, rotation_id, runtime.clock.now())
    return _person(runtime, session, on_call.primary)


def is_responder(runtime: Runtime, session: Session, queue: Queue, user: str) -> bool:
    """Who counts as answering a request: the queue's team, its rotations, the experts."""
    org = runtime.org
    refs: list[str] = []
    team = org.team(queue.team)
    refs += team.members + team.managers
    for rotation_id in (queue.t1, queue.t2):
        if rotation_id:
            refs += org.rotation(rotation_id).members
    refs += org.support.experts
    return any(_same(runtime, session, ref, user) for ref in refs)


def may_post_in_experts(runtime: Runtime, session: Session, user: str) -> bool:
    """The experts channel rule: only experts and whoever is on call right now may post."""
    org = runtime.org
    if any(_same(runtime, session, ref, user) for ref in org.support.experts):
        return True
    now = runtime.clock.now()
    for rotation in org.rotations:
        if rotation.kind != "oncall":
            continue
        on_call = who_is_on_call(session, org, rotation.id, now)
        for ref in (on_call.primary, on_call.secondary):
            if ref and _same(runtime, session, ref, user):
                return True
    return False


# ---- reading tickets ------------------------------------------------------------------------


def get_ticket(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"There is no support ticket #{ticket_id}.")
    return ticket


def parse_ticket_id(text: str) -> int:
    try:
        return int(str(text).lstrip("#").split(":")[0])
    except ValueError:
        raise InvalidInput(f"'{text}' is not a ticket number.") from None


def card_key(ticket: Ticket) -> str:
    return f"support:ticket:{ticket.id}:card"


def ticket_for_message(session: Session, channel: str, ts: str) -> Ticket | None:
    """The ticket whose conversation a message starts: its source, or the bot's ticket card."""
    found = session.exec(
        select(Ticket).where(Ticket.thread_channel == channel, Ticket.thread_ts == ts)
    ).first()
    if found is not None:
        return found
    posted = session.exec(
        select(OutboxMessage).where(
            OutboxMessage.result_channel == channel,
            OutboxMessage.result_ts == ts,
            col(OutboxMessage.key).like("support:ticket:%:card"),
        )
    ).first()
    if posted is None:
        return None
    ticket = session.get(Ticket, int(posted.key.split(":")[2]))
    if ticket is not None and ticket.thread_ts is None:
        ticket.thread_channel, ticket.thread_ts = channel, ts  # the card heads the thread
    return ticket


def events_of(session: Session, ticket: Ticket) -> list[TicketEvent]:
    return list(
        session.exec(
            select(TicketEvent)
            .where(TicketEvent.ticket_id == ticket.id)
            .order_by(col(TicketEvent.at), col(TicketEvent.id))
        ).all()
    )


def tickets_assigned_to(session: Session, user: str) -> list[Ticket]:
    return list(
        session.exec(
            select(Ticket)
            .where(Ticket.assignee == user, col(Ticket.state).in_(OPEN_STATES))
            .order_by(col(Ticket.opened_at))
        ).all()
    )


def tickets_asked_by(session: Session, user: str, now: datetime) -> list[Ticket]:
    """Open requests, and those resolved in the last week (they may still be reopened)."""
    rows = session.exec(
        select(Ticket).where(Ticket.requester == user).order_by(col(Ticket.opened_at).desc())
    ).all()
    return [
        t
        for t in rows
        if t.is_open or (t.resolved_at is not None and now - t.resolved_at <= REOPEN_WINDOW)
    ]


def open_tickets_for_team(session: Session, team_id: str) -> list[Ticket]:
    """For the on-call handoff report: what the incoming person inherits."""
    return list(
        session.exec(
            select(Ticket)
            .where(Ticket.team_id == team_id, col(Ticket.state).in_(OPEN_STATES))
            .order_by(col(Ticket.opened_at))
        ).all()
    )


def similar_open_tickets(
    session: Session, ticket: Ticket, now: datetime, limit: int = 3
) -> list[Ticket]:
    """Open tickets in the same queue from the last 14 days that read like this one (BM25)."""
    candidates = list(
        session.exec(
            select(Ticket).where(
                Ticket.queue_id == ticket.queue_id,
                Ticket.id != ticket.id,
                col(Ticket.state).in_(OPEN_STATES),
                Ticket.opened_at >= now - SIMILAR_WINDOW,
            )
        ).all()
    )
    if not candidates:
        return []
    index = BM25([tokenize(f"{c.summary} {c.summary} {c.details}") for c in candidates])
    hits = index.rank(
        tokenize(f"{ticket.summary} {ticket.details}"), limit, minimum=SIMILAR_MINIMUM_SCORE
    )
    return [candidates[h.index] for h in hits]


# ---- history and the SLA clock --------------------------------------------------------------


def _record(
    session: Session,
    ticket: Ticket,
    kind: str,
    now: datetime,
    actor: str | None = None,
    detail: str = "",
    state: str | None = None,
) -> TicketEvent:
    if state is not None:
        ticket.state = state
    ticket.updated_at = now
    event = TicketEvent(
        ticket_id=ticket.id, at=now, kind=kind, actor=actor, state=state, detail=detail
    )
    session.add(ticket)
    session.add(event)
    session.flush()
    return event


def pauses(session: Session, ticket: Ticket) -> list[sla.Pause]:
    return sla.pauses_from((e.at, e.state) for e in events_of(session, ticket) if e.state)


@dataclass(frozen=True)
class SlaState:
    severity: str
    business_hours: bool
    first_response: sla.Clock | None  # None once answered (or for office hours)
    resolution: sla.Clock | None  # None once resolved (or for office hours)
    paused: bool

    def clock(self, target: str) -> sla.Clock | None:
        return self.first_response if target == "first_response" else self.resolution


def sla_state(org: OrgConfig, session: Session, ticket: Ticket) -> SlaState | None:
    """The ticket's SLA deadlines now; None for office-hours questions, which have a slot instead."""
    if ticket.category == "office_hours":
        return None
    target = org.support.sla[ticket.severity]  # type: ignore[index]
    measure = sla.measure_for(org, target, ticket.team_id)
    found = pauses(session, ticket)
    opened = ticket.opened_at
    first = None
    if ticket.first_response_at is None and ticket.state != RESOLVED:
        first = sla.clock(measure, opened, sla.counted(measure, target.first_response), found)
    resolution = None
    if ticket.state != RESOLVED:
        resolution = sla.clock(measure, opened, sla.counted(measure, target.resolution), found)
    return SlaState(
        severity=ticket.severity,
        business_hours=target.business_hours,
        first_response=first,
        resolution=resolution,
        paused=ticket.state == WAITING,
    )


def _timer_ref(ticket: Ticket, target: str, stage: str) -> str:
    return f"ticket:{ticket.id}:{target}:{stage}"


def disarm(session: Session, ticket: Ticket) -> None:
    for target in TARGETS:
        for stage in STAGES:
            cancel_timers(session, SLA_TIMER, _timer_ref(ticket, target, stage))


def arm(org: OrgConfig, session: Session, ticket: Ticket, now: datetime) -> SlaState | None:
    """(Re)compute the deadlines and set the reminder and breach timers that are still ahead."""
    disarm(session, ticket)
    state = sla_state(org, session, ticket)
    ticket.first_response_due = (
        state.first_response.due_at if state and state.first_response else None
    )
    ticket.resolution_due = state.resolution.due_at if state and state.resolution else None
    if state is None or not ticket.is_open:
        return state
    for target in TARGETS:
        clock = state.clock(target)
        if clock is None or clock.due_at is None or getattr(ticket, f"{target}_breached"):
            continue
        if clock.warn_at is not None and clock.warn_at > now:
            set_timer(session, SLA_TIMER, _timer_ref(ticket, target, "warn"), clock.warn_at, now)
        set_timer(
            session, SLA_TIMER, _timer_ref(ticket, target, "breach"), max(clock.due_at, now), now
        )
    return state


# ---- posting into the ticket's thread -------------------------------------------------------


def thread_of(session: Session, ticket: Ticket) -> tuple[str, str | None]:
    """(channel, thread ts) of the conversation; the ts is None until the bot's card is posted."""
    if ticket.thread_ts is None:
        posted = outbox.message_ref(session, card_key(ticket))
        if posted is not None:
            ticket.thread_channel, ticket.thread_ts = posted
            session.add(ticket)
    return ticket.thread_channel or "", ticket.thread_ts


def say_in_thread(
    session: Session, ticket: Ticket, key: str, text: str, now: datetime, **kwargs: object
) -> None:
    channel, ts = thread_of(session, ticket)
    outbox.post(session, key, channel, text, now, thread_ts=ts, **kwargs)  # type: ignore[arg-type]


def refresh_card(runtime: Runtime, session: Session, ticket: Ticket, event: TicketEvent) -> None:
    view = card(runtime, session, ticket)
    outbox.update_message(
        session,
        f"{card_key(ticket)}:ev{event.id}",
        card_key(ticket),
        blocks.card_text(view),
        event.at,
        blocks=blocks.ticket_card(view),
    )


@dataclass(frozen=True)
class TicketView:
    """Everything the ticket card shows."""

    ticket: Ticket
    queue: Queue
    sla: SlaState | None
    zone_name: str
    runbooks: list[RunbookMatch] = field(default_factory=list)
    similar: list[Ticket] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    now: datetime | None = None


def card(
    runtime: Runtime, session: Session, ticket: Ticket, notices: Iterable[str] = ()
) -> TicketView:
    org = runtime.org
    now = runtime.clock.now()
    queue = org.queue(ticket.queue_id)
    matches: list[RunbookMatch] = []
    similar: list[Ticket] = []
    if ticket.is_open:
        if ticket.category != "office_hours":
            matches = runbook_index(runtime).search(f"{ticket.summary}\n{ticket.details}")
        similar = similar_open_tickets(session, ticket, now)
    return TicketView(
        ticket=ticket,
        queue=queue,
        sla=sla_state(org, session, ticket),
        zone_name=org.zone(ticket.team_id).key,
        runbooks=matches,
        similar=similar,
        notices=list(notices),
        now=now,
    )


# ---- intake ---------------------------------------------------------------------------------


@dataclass
class Request:
    """What someone asked for, from any door: a channel message, /support, a shortcut."""

    queue_id: str
    requester: str
    summary: str
    intake: str
    details: str = ""
    category: str | None = None
    severity: str = "normal"
    application_id: str | None = None
    business_impact: str | None = None
    why_now: str | None = None
    source_channel: str | None = None
    source_ts: str | None = None


@dataclass
class Opened:
    ticket: Ticket
    created: bool
    notices: list[str] = field(default_factory=list)


def summary_of(text: str) -> str:
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first if len(first) <= 150 else first[:147].rstrip() + "..."


def critical_problems(business_impact: str | None, why_now: str | None) -> dict[str, str]:
    """The seeds' two conditions for a critical request; field -> what is missing."""
    problems = {}
    if business_impact not in BUSINESS_IMPACTS:
        problems["impact"] = "Critical needs the type of business impact."
    if not (why_now or "").strip():
        problems["why_now"] = "Critical needs why engaging an engineer now would help."
    return problems


def validate(org: OrgConfig, request: Request) -> None:
    if not request.summary.strip():
        raise InvalidInput("A support request needs a summary.")
    if request.category is not None and request.category not in CATEGORIES:
        raise InvalidInput(
            f"'{request.category}' is not a category (one of: {', '.join(CATEGORIES)})."
        )
    if request.severity not in SEVERITIES:
        raise InvalidInput(
            f"'{request.severity}' is not a severity (one of: {', '.join(SEVERITIES)})."
        )
    if request.application_id and org.application(request.application_id) is None:
        raise InvalidInput(f"There is no application '{request.application_id}' in the org config.")
    if request.severity == "critical":
        problems = critical_problems(request.business_impact, request.why_now)
        if problems:
            raise CriticalGateNotMet(" ".join(problems.values()))


def existing_ticket(session: Session, channel: str | None, ts: str | None) -> Ticket | None:
    if not channel or not ts:
        return None
    return session.exec(
        select(Ticket).where(Ticket.source_channel == channel, Ticket.source_ts == ts)
    ).first()


def open_ticket(runtime: Runtime, session: Session, request: Request) -> Opened:
    """Create the ticket, assign T1, route it (SLA, office hours, critical page), post its card."""
    org = runtime.org
    now = runtime.clock.now()
    validate(org, request)
    queue = org.queue(request.queue_id)
    found = existing_ticket(session, request.source_channel, request.source_ts)
    if found is not None:
        return Opened(found, created=False)
    in_queue_channel = request.source_channel in queue.channels and request.source_ts
    ticket = Ticket(
        queue_id=queue.id,
        team_id=queue.team,
        requester=request.requester,
        summary=summary_of(request.summary),
        details=request.details.strip(),
        category=request.category,
        severity=request.severity,
        application_id=request.application_id or None,
        business_impact=request.business_impact if request.severity == "critical" else None,
        why_now=(request.why_now or "").strip() or None,
        intake=request.intake,
        source_channel=request.source_channel,
        source_ts=request.source_ts,
        thread_channel=request.source_channel if in_queue_channel else queue.channels[0],
        thread_ts=request.source_ts if in_queue_channel else None,
        assignee=rotation_person(runtime, session, queue.t1),
        opened_at=now,
        updated_at=now,
    )
    # The unique (source_channel, source_ts) makes a concurrent second delivery of the same
    # message fail here and roll back whole, so the first one owns the ticket.
    session.add(ticket)
    session.flush()
    _record(session, ticket, "opened", now, request.requester, request.intake, state=NEW)
    notices = route(runtime, session, ticket, now)
    view = card(runtime, session, ticket, notices)
    outbox.post(
        session,
        card_key(ticket),
        ticket.thread_channel or queue.channels[0],
        blocks.card_text(view),
        now,
        blocks=blocks.ticket_card(view),
        thread_ts=ticket.thread_ts,
        unfurl_links=False,
    )
    if ticket.assignee and ticket.assignee != ticket.requester:
        outbox.post(
            session,
            f"support:ticket:{ticket.id}:assigned:{ticket.assignee}",
            ticket.assignee,
            blocks.assigned_text(ticket, queue),
            now,
        )
    return Opened(ticket, created=True, notices=notices)


def route(runtime: Runtime, session: Session, ticket: Ticket, now: datetime) -> list[str]:
    """Office hours, the critical gate's page, or the SLA clock; returns notices for the card."""
    org = runtime.org
    queue = org.queue(ticket.queue_id)
    if ticket.category == "office_hours":
        return [schedule_office_hours(runtime, session, ticket, now)]
    notices = []
    if ticket.severity == "critical":
        notices.append(route_critical(runtime, session, ticket, queue, now))
    arm(org, session, ticket, now)
    return notices


# ---- office hours ---------------------------------------------------------------------------


def next_office_hours(org: OrgConfig, queue: Queue, after: datetime) -> tuple[datetime, datetime]:
    """The queue's next office-hours slot that starts after `after` (holidays skipped)."""
    hours = queue.office_hours
    if hours is None:
        raise NotFound(f"Queue '{queue.id}' has no office hours configured.")
    zone = org.zone(queue.team)
    day = after.astimezone(zone).date()
    weekday = WEEKDAYS.index(hours.weekday)
    holidays = set(org.holidays)
    for offset in range(7 * 60):
        candidate = day + timedelta(days=offset)
        if candidate.weekday() != weekday or candidate in holidays:
            continue
        start = wall_time_to_utc(datetime.combine(candidate, hours.time), zone)
        if start > after:
            return start, start + hours.length
    raise NotFound(f"No office-hours slot of queue '{queue.id}' in the next year.")


def schedule_office_hours(runtime: Runtime, session: Session, ticket: Ticket, now: datetime) -> str:
    org = runtime.org
    queue = org.queue(ticket.queue_id)
    disarm(session, ticket)
    ticket.first_response_due = ticket.resolution_due = None
    if queue.office_hours is None:
        ticket.office_hours_at = None
        arm(org, session, ticket, now)
        return "This queue has no office hours, so the design question is handled in the queue."
    start, end = next_office_hours(org, queue, now)
    ticket.office_hours_at = start
    _record(session, ticket, "office_hours", now, detail=start.isoformat())
    return blocks.office_hours_notice(start, end, org.zone(queue.team))


# ---- the critical gate ----------------------------------------------------------------------


def should_page(org: OrgConfig, ticket: Ticket, now: datetime) -> tuple[bool, str]:
    """A critical request pages for a Tier 0 or 1 application, or outside business hours."""
    app = org.application(ticket.application_id) if ticket.application_id else None
    if app is not None and app.tier <= 1:
        return True, f"{app.name} is a Tier {app.tier} application"
    if not BusinessCalendar.for_team(org, ticket.team_id).contains(now):
        return True, "it is outside business hours"
    which = f"{app.name} is Tier {app.tier}" if app else "no Tier 0 or 1 application is named"
    return False, f"{which} and it is business hours"


def route_critical(
    runtime: Runtime, session: Session, ticket: Ticket, queue: Queue, now: datetime
) -> str:
    org = runtime.org
    page_now, reason = should_page(org, ticket, now)
    if page_now and queue.critical_policy:
        page = trigger_page(
            runtime,
            session,
            policy_id=queue.critical_policy,
            summary=f"Support #{ticket.id}: {ticket.summary}",
            details=ticket.details,
            source="support",
            dedup_key=f"support:ticket:{ticket.id}",
            team_id=queue.team,
            requested_by=ticket.requester,
            business_impact=BUSINESS_IMPACTS.get(ticket.business_impact or ""),
            why_page=ticket.why_now,
            labels={
                "queue": queue.id,
                "ticket": str(ticket.id),
                "application": ticket.application_id or "",
            },
        )
        ticket.page_id = page.id
        t2 = rotation_person(runtime, session, queue.t2)
        if t2:
            ticket.tier, ticket.assignee = 2, t2
        _record(session, ticket, "paged", now, detail=f"page {page.id} via {queue.critical_policy}")
        return blocks.paged_notice(page.id, queue.critical_policy, reason)
    calendar = BusinessCalendar.for_team(org, ticket.team_id)
    today = now.astimezone(calendar.zone).date()
    window = calendar.window(today)
    closes = window[1] if window else now
    next_day = calendar.next_open(max(closes, now) + timedelta(seconds=1))
    _record(session, ticket, "not_paged", now, detail=reason)
    if page_now:  # outside hours, but the queue has nobody to page
        reason = f"{reason}, but queue {queue.id} has no critical_policy"
    return blocks.next_business_day_notice(reason, closes, next_day, calendar.zone)


# ---- the life of a ticket -------------------------------------------------------------------


def _require_open(ticket: Ticket) -> None:
    if not ticket.is_open:
        raise Conflict(f"Ticket #{ticket.id} is already resolved.")


def _require_responder(
    runtime: Runtime, session: Session, ticket: Ticket, user: str, what: str
) -> Queue:
    queue = runtime.org.queue(ticket.queue_id)
    if not is_responder(runtime, session, queue, user):
        raise NotAllowed(
            f"Only the {queue.team} team, its support rotations and the experts can {what}."
        )
    return queue


def claim(runtime: Runtime, session: Session, ticket: Ticket, user: str) -> TicketEvent:
    now = runtime.clock.now()
    _require_open(ticket)
    _require_responder(runtime, session, ticket, user, "claim a ticket")
    if ticket.state == IN_PROGRESS and ticket.assignee == user:
        raise Conflict(f"You are already working on ticket #{ticket.id}.")
    ticket.assignee = user
    event = _record(session, ticket, "claimed", now, user, state=IN_PROGRESS)
    arm(runtime.org, session, ticket, now)
    refresh_card(runtime, session, ticket, event)
    return event


def wait_on_requester(runtime: Runtime, session: Session, ticket: Ticket, user: str) -> TicketEvent:
    now = runtime.clock.now()
    _require_open(ticket)
    _require_responder(runtime, session, ticket, user, "set a ticket to waiting")
    if ticket.state == WAITING:
        raise Conflict(f"Ticket #{ticket.id} is already waiting on the requester.")
    if ticket.assignee is None:
        ticket.assignee = user
    event = _record(session, ticket, "waiting", now, user, state=WAITING)
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
            event = _record(session, ticket, "requester_replied", now, user, state=IN_PROGRESS)
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
        event = _record(session, ticket, "first_response", now, user)
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
    event = _record(session, ticket, "reopened", now, user, state=REOPENED)
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
    _require_open(ticket)
    if user != ticket.requester:
        _require_responder(runtime, session, ticket, user, "resolve someone else's ticket")
    ticket.resolved_at = now
    ticket.resolution = resolution
    ticket.runbook = runbook
    ticket.duplicate_of = duplicate_of
    detail = {
        "docs": f"answered by runbook {runbook}",
        "duplicate": f"duplicate of #{duplicate_of}",
    }
    event = _record(
        session, ticket, "resolved", now, user, detail.get(resolution, resolution), state=RESOLVED
    )
    disarm(session, ticket)
    ticket.first_response_due = ticket.resolution_due = None
    say_in_thread(
        session,
        ticket,
        f"support:ticket:{ticket.id}:ev{event.id}:resolved",
        blocks.resolved_text(ticket, user),
        now,
    )
    outbox.post(
        session,
        f"support:ticket:{ticket.id}:ev{event.id}:rate",
        ticket.requester,
        blocks.rating_text(ticket),
        now,
        blocks=blocks.rating_prompt(ticket),
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
    _require_responder(runtime, session, ticket, user, "merge tickets")
    event = resolve(runtime, session, ticket, user, resolution="duplicate", duplicate_of=into.id)
    note = _record(session, into, "merged", event.at, user, f"#{ticket.id} merged into this")
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
    _require_open(ticket)
    if user != ticket.requester:
        _require_responder(runtime, session, ticket, user, "change the category")
    now = runtime.clock.now()
    before = ticket.category
    ticket.category = category
    event = _record(session, ticket, "category", now, user, f"{before or '-'} -> {category}")
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
    _require_open(ticket)
    if user != ticket.requester:
        _require_responder(runtime, session, ticket, user, "change the severity")
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
    event = _record(session, ticket, "severity", now, user, f"{before} -> {severity}")
    notices: list[str] = []
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


def escalate(
    runtime: Runtime, session: Session, ticket: Ticket, user: str | None, reason: str
) -> TicketEvent:
    """Move the ticket to T2 with its history; the triage channel hears of it."""
    now = runtime.clock.now()
    _require_open(ticket)
    queue = runtime.org.queue(ticket.queue_id)
    if user is not None:
        _require_responder(runtime, session, ticket, user, "escalate a ticket")
    if not queue.t2:
        raise Conflict(f"Queue {queue.id} has no T2 rotation to escalate to.")
    if ticket.tier >= 2:
        raise Conflict(f"Ticket #{ticket.id} is already with T2.")
    history = events_of(session, ticket)
    ticket.tier = 2
    ticket.assignee = rotation_person(runtime, session, queue.t2)
    event = _record(session, ticket, "escalated", now, user, reason)
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
    return _record(session, ticket, "rated", runtime.clock.now(), user, str(score))


def comment_on_rating(
    runtime: Runtime, session: Session, ticket: Ticket, user: str, comment: str
) -> TicketEvent | None:
    if user != ticket.requester:
        raise NotAllowed(f"Only the person who asked can comment on ticket #{ticket.id}.")
    comment = comment.strip()
    if not comment:
        return None
    ticket.rating_comment = comment[:3000]
    return _record(session, ticket, "rating_comment", runtime.clock.now(), user, comment[:3000])


def resolve_by_reaction(
    runtime: Runtime, session: Session, channel: str, ts: str, user: str
) -> Ticket | None:
    """The requester's :white_check_mark: on the request (or on the card) resolves it."""
    ticket = ticket_for_message(session, channel, ts)
    if ticket is None or user != ticket.requester or not ticket.is_open:
        return None
    resolve(runtime, session, ticket, user, resolution="fixed")
    return ticket


# ---- the experts channel --------------------------------------------------------------------


def experts_post(
    runtime: Runtime, session: Session, channel: str, user: str, text: str, ts: str
) -> Opened | None:
    """Someone who may not post in the experts channel did: their post becomes a ticket."""
    if may_post_in_experts(runtime, session, user):
        return None
    queue = queue_for_text(runtime.org, text)
    opened = open_ticket(
        runtime,
        session,
        Request(
            queue_id=queue.id,
            requester=user,
            summary=text,
            details=text,
            intake="experts",
            source_channel=channel,
            source_ts=ts,
        ),
    )
    if opened.created:
        now = runtime.clock.now()
        outbox.enqueue(
            session,
            f"support:ticket:{opened.ticket.id}:experts-why",
            "chat.postEphemeral",
            {
                "channel": channel,
                "user": user,
                "text": blocks.experts_rule_text(opened.ticket, queue),
            },
            now,
        )
    return opened


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
    if stage == "warn":
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
    reason = f"{blocks.TARGET_LABELS[target]} SLA breached"
    event = _record(session, ticket, "breached", now, detail=reason)
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


# ---- reports --------------------------------------------------------------------------------


def facts_of(session: Session, ticket: Ticket) -> TicketFacts:
    lifecycle = tuple(
        (e.at, e.state) for e in events_of(session, ticket) if e.state in (RESOLVED, REOPENED)
    )
    return TicketFacts(
        number=ticket.id or 0,
        category=ticket.category,
        severity=ticket.severity,
        opened_at=ticket.opened_at,
        first_response_at=ticket.first_response_at,
        resolved_at=ticket.resolved_at,
        first_response_breached=ticket.first_response_breached,
        resolution_breached=ticket.resolution_breached,
        has_sla=ticket.category != "office_hours",
        rating=ticket.rating,
        answered_by_docs=ticket.resolution == "docs",
        lifecycle=lifecycle,  # type: ignore[arg-type]
    )


def operational_load(
    runtime: Runtime, session: Session, team_id: str, start: datetime, end: datetime
) -> OperationalLoad | None:
    """The team's time on on-call and support rotation shifts (the on-call capability's timeline)."""
    org = runtime.org
    team = org.team(team_id)
    if not team.members or end <= start:
        return None
    held = {"oncall": timedelta(0), "support": timedelta(0)}
    for rotation in org.rotations_of_team(team_id):
        for segment in timeline(session, org, rotation.id, start, end):
            held[rotation.kind] += min(segment.end, end) - max(segment.start, start)
    capacity = (end - start) * len(team.members)
    return OperationalLoad(
        team_size=len(team.members),
        oncall=held["oncall"] / capacity,
        support=held["support"] / capacity,
    )


def report(
    runtime: Runtime, session: Session, queue_id: str, start: datetime, end: datetime
) -> SupportReport:
    queue = runtime.org.queue(queue_id)
    rows = session.exec(
        select(Ticket).where(Ticket.queue_id == queue.id, Ticket.opened_at < end)
    ).all()
    relevant = [
        t
        for t in rows
        if t.opened_at >= start
        or t.is_open
        or (t.resolved_at and t.resolved_at >= start)
        or t.state == REOPENED
    ]
    return build_report(
        queue.id,
        [facts_of(session, t) for t in relevant],
        start,
        end,
        threshold=runtime.org.support.investigate_threshold,
        load=operational_load(runtime, session, queue.team, start, end),
    )


def report_window(
    org: OrgConfig, queue: Queue, now: datetime, weeks: int
) -> tuple[datetime, datetime]:
    """The last `weeks` whole weeks, Monday to Monday in the team's zone, ending this Monday."""
    zone = org.zone(queue.team)
    local = now.astimezone(zone).date()
    monday = local - timedelta(days=local.weekday())
    end = wall_time_to_utc(datetime.combine(monday, datetime.min.time()), zone)
    start_day: date = monday - timedelta(weeks=weeks)
    start = wall_time_to_utc(datetime.combine(start_day, datetime.min.time()), zone)
    return start, end


def current_window(now: datetime, weeks: int) -> tuple[datetime, datetime]:
    """The last `weeks` weeks up to and including this instant."""
    return now - timedelta(weeks=weeks), now + timedelta(microseconds=1)


def weekly_report_due(org: OrgConfig, queue: Queue, after: datetime) -> datetime:
    """Mondays at 09:00 in the team's zone, the first strictly after `after`."""
    zone = org.zone(queue.team)
    day = after.astimezone(zone).date()
    day -= timedelta(days=day.weekday())
    while True:
        due = wall_time_to_utc(datetime.combine(day, datetime.min.time().replace(hour=9)), zone)
        if due > after:
            return due
        day += timedelta(weeks=1)


def post_weekly_report(runtime: Runtime, session: Session, queue_id: str, due: datetime) -> None:
    org = runtime.org
    queue = org.queue(queue_id)
    channel = org.team(queue.team).channel
    if not channel:
        return
    start, end = report_window(org, queue, due, 1)
    found = report(runtime, session, queue.id, start, end)
    zone = org.zone(queue.team)
    outbox.post(
        session,
        f"support:report:{queue.id}:{end.isoformat()}",
        channel,
        blocks.report_text(found, zone),
        due,
        blocks=blocks.report_blocks(found, zone),
    )
