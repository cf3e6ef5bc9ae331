"""Support tickets: the shared core (queues and people, reading tickets, history, the SLA clock,
the ticket's thread and card).

Functions take the runtime (org, clock, directory) and a session explicitly; notifications go
through the outbox in the same unit of work. Nothing here knows Slack payload shapes; the
messages themselves are built in `bot.support.blocks`. The workflows live beside it:
`intake` (new requests, office hours, the critical gate), `lifecycle` (what happens to a ticket,
SLA timers) and `reporting` (reports).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from bot import outbox
from bot.business_hours import BusinessCalendar
from bot.config import OrgConfig, Queue
from bot.errors import Conflict, InvalidInput, NotAllowed, NotFound
from bot.mrkdwn import to_plain
from bot.oncall.service import who_is_on_call
from bot.outbox import OutboxMessage
from bot.runbooks import RunbookMatch, runbook_index
from bot.runbooks.bm25 import BM25, tokenize
from bot.scheduler import cancel_timers, set_timers
from bot.support import blocks, sla
from bot.support.models import (
    OPEN_STATES,
    RESOLVED,
    WAITING,
    Ticket,
    TicketEvent,
)

if TYPE_CHECKING:
    from bot.runtime import Runtime


REOPEN_WINDOW = timedelta(days=7)
SIMILAR_WINDOW = timedelta(days=14)
SIMILAR_MINIMUM_SCORE = 1.0
SLA_TIMER = "support.sla"
TARGETS = ("first_response", "resolution")
STAGES = ("warn", "breach")


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
    text = to_plain(text)
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


def rotation_person(
    runtime: Runtime, session: Session, rotation_id: str | None, besides: str | None = None
) -> str | None:
    """The Slack id of whoever holds a rotation now (the on-call capability's one answer).

    `besides` is the requester: someone on the rotation who asks for help is not given their own
    request; the rotation's next shift (they know the work), else its secondary, takes it."""
    if not rotation_id:
        return None
    now = runtime.clock.now()
    on_call = who_is_on_call(session, runtime.org, rotation_id, now)
    person = _person(runtime, session, on_call.primary)
    if besides is None or person != besides:
        return person
    candidates = [on_call.secondary]
    if on_call.shift_end is not None:
        upcoming = who_is_on_call(session, runtime.org, rotation_id, on_call.shift_end)
        candidates.insert(0, upcoming.primary)
    for ref in candidates:
        other = _person(runtime, session, ref)
        if other and other != besides:
            return other
    return None


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
    # Only the text is read for every candidate (whole rows of hundreds of open tickets cost
    # more than the ranking); the few that match are loaded after.
    candidates = session.exec(
        select(Ticket.id, Ticket.summary, Ticket.details)
        .where(
            Ticket.queue_id == ticket.queue_id,
            Ticket.id != ticket.id,
            col(Ticket.state).in_(OPEN_STATES),
            Ticket.opened_at >= now - SIMILAR_WINDOW,
        )
        # Tied scores go to the newest ticket first, the same on every backend and every run.
        .order_by(col(Ticket.opened_at).desc(), col(Ticket.id).desc())
    ).all()
    if not candidates:
        return []
    terms = [_similarity_terms(summary, details) for _, summary, details in candidates]
    index = BM25.of_counts([counts for counts, _ in terms], [length for _, length in terms])
    hits = index.rank(
        tokenize(to_plain(f"{ticket.summary} {ticket.details}")),
        limit,
        minimum=SIMILAR_MINIMUM_SCORE,
    )
    ids = [candidates[h.index][0] for h in hits]
    if not ids:
        return []
    found = {t.id: t for t in session.exec(select(Ticket).where(col(Ticket.id).in_(ids))).all()}
    return [found[i] for i in ids if i in found]


@lru_cache(maxsize=16384)
def _similarity_terms(summary: str, details: str) -> tuple[Counter[str], int]:
    """A ticket's terms for `similar_open_tickets` (the summary counts twice), and how many.
    Every new ticket is compared with every open one, so each text is tokenised once, not once
    per newer ticket; the key is the text itself, so an edited ticket is counted afresh."""
    words = tokenize(to_plain(f"{summary} {summary} {details}"))
    return Counter(words), len(words)


# ---- history and the SLA clock --------------------------------------------------------------


def record(
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
    # A critical request the gate did not page is the business-hours rotation's: only business
    # hours count, as its requester is told. Around the clock it would escalate to on-call at
    # the close of business and remind people through the evening.
    business_hours = target.business_hours or (
        ticket.severity == "critical" and ticket.page_id is None
    )
    measure = BusinessCalendar.for_team(org, ticket.team_id) if business_hours else sla.WallClock()
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
        business_hours=business_hours,
        first_response=first,
        resolution=resolution,
        paused=ticket.state == WAITING,
    )


def _timer_ref(ticket: Ticket, target: str, stage: str) -> str:
    return f"ticket:{ticket.id}:{target}:{stage}"


def disarm(session: Session, ticket: Ticket) -> None:
    refs = [_timer_ref(ticket, target, stage) for target in TARGETS for stage in STAGES]
    cancel_timers(session, SLA_TIMER, refs)


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
    wanted = []
    for target in TARGETS:
        clock = state.clock(target)
        if clock is None or clock.due_at is None or getattr(ticket, f"{target}_breached"):
            continue
        if clock.warn_at is not None and clock.warn_at > now:
            wanted.append((_timer_ref(ticket, target, "warn"), clock.warn_at))
        wanted.append((_timer_ref(ticket, target, "breach"), max(clock.due_at, now)))
    set_timers(session, SLA_TIMER, wanted, now)
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
            matches = runbook_index(runtime).about(to_plain(f"{ticket.summary}\n{ticket.details}"))
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


# ---- guards ---------------------------------------------------------------------------------


def require_open(ticket: Ticket) -> None:
    if not ticket.is_open:
        raise Conflict(f"Ticket #{ticket.id} is already resolved.")


def require_responder(
    runtime: Runtime, session: Session, ticket: Ticket, user: str, what: str
) -> Queue:
    queue = runtime.org.queue(ticket.queue_id)
    # Whoever has the ticket may work it, e.g. the secondary who acknowledged its page.
    if user != ticket.assignee and not is_responder(runtime, session, queue, user):
        raise NotAllowed(
            f"Only the {queue.team} team, its support rotations and the experts can {what}."
        )
    return queue
