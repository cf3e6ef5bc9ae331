"""On-call workflows: what the bot tells whom (through the outbox) when rotations change hands.

Each function runs inside the caller's unit of work, so a notice exists exactly when the change
that caused it was committed. Outbox keys describe the event, so nothing is said twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from bot import logs, outbox
from bot.clock import as_utc
from bot.config import OrgConfig
from bot.db import after_commit
from bot.mrkdwn import escape, user
from bot.oncall import messages, service
from bot.oncall.models import Override, SwapRequest
from bot.oncall.schedule import Cadence
from bot.outbox import OutboxMessage
from bot.scheduler import Timer, cancel_timers, set_timer

log = logging.getLogger(__name__)

Resolve = Callable[[str], str]  # config reference (Slack id or e-mail) -> Slack id

EDGE_TIMER = "oncall.override_edge"
OVERRIDE_REMINDER_TIMER = "oncall.override_reminder"
SWAP_EXPIRY_TIMER = "oncall.swap_expiry"


@dataclass(frozen=True)
class ShiftFigures:
    """What paging reports about a shift; zeros until a paging capability provides them."""

    pages: int = 0
    business_impacting: int = 0
    false_alarms: int = 0
    off_hours: int = 0


def _iso(instant: datetime) -> str:
    return as_utc(instant).strftime("%Y-%m-%dT%H:%MZ")


def _mention(resolve: Resolve) -> Callable[[str], str]:
    return lambda ref: user(resolve(ref))


def _dm(
    session: Session,
    key: str,
    person: str,
    text: str,
    now: datetime,
    resolve: Resolve,
    blocks: list[dict[str, Any]] | None = None,
) -> None:
    outbox.post(session, key, resolve(person), text, now, blocks=blocks)


# ---- providers from other capabilities ------------------------------------------------------


def _provided(extras: Mapping[str, Any], name: str, fallback: Any, *args: Any) -> Any:
    """Ask a provider another capability registered; a missing or failing one gives `fallback`,
    so a handoff report is never lost to a bug elsewhere."""
    provider = extras.get(name)
    if provider is None:
        return fallback
    try:
        return provider(*args)
    except Exception:
        log.exception("provider %s failed; the handoff report shows the fallback", name)
        return fallback


def shift_figures(
    extras: Mapping[str, Any], session: Session, rotation_id: str, start: datetime, end: datetime
) -> Any:
    return _provided(
        extras, "oncall.shift_figures", ShiftFigures(), session, rotation_id, start, end
    )


# ---- presence: the user group and the channel topic -----------------------------------------


def sync_presence(
    session: Session, org: OrgConfig, rotation_id: str, at: datetime, resolve: Resolve
) -> None:
    """Make the rotation's user group and its team channel's topic name who is on call at `at`."""
    rotation = org.rotation(rotation_id)
    current = service.who_is_on_call(session, org, rotation_id, at)
    if rotation.usergroup and current.primary is not None:
        person = resolve(current.primary)
        _set_once(
            session,
            f"oncall:usergroup:{rotation.usergroup}:{_iso(at)}:{person}",
            "usergroups.users.update",
            {"usergroup": rotation.usergroup, "users": person},
            at,
            coalesce=f"oncall:usergroup:{rotation.usergroup}",
        )
    channel = org.team(rotation.team).channel
    if channel is None:
        return
    parts = []
    team_ids = [r.id for r in org.rotations_of_team(rotation.team)]
    for holder in service.who_is_on_call_each(session, org, team_ids, at):
        if holder.primary is not None:
            parts.append(f"{holder.rotation_id}: {user(resolve(holder.primary))}")
    if not parts:
        return
    topic = ("On call: " + " · ".join(parts))[:250]
    digest = hashlib.sha1(topic.encode()).hexdigest()[:10]
    _set_once(
        session,
        f"oncall:topic:{channel}:{_iso(at)}:{digest}",
        "conversations.setTopic",
        {"channel": channel, "topic": topic},
        at,
        coalesce=f"oncall:topic:{channel}",
    )


def _set_once(
    session: Session,
    key: str,
    method: str,
    payload: dict[str, Any],
    at: datetime,
    *,
    coalesce: str,
) -> None:
    """Enqueue a state-setting call unless the last one we made set exactly this."""
    last = session.exec(
        select(OutboxMessage)
        .where(OutboxMessage.coalesce_key == coalesce)
        .order_by(col(OutboxMessage.id).desc())
    ).first()
    if last is not None and last.payload == payload and last.status != outbox.FAILED:
        return
    outbox.enqueue(session, key, method, payload, at, coalesce=coalesce)


# ---- overrides ------------------------------------------------------------------------------


def schedule_override(session: Session, org: OrgConfig, override: Override, now: datetime) -> None:
    """Timers at the override's edges (user group, topic) and for reminders before it starts."""
    ref = f"override:{override.id}"
    start, end = as_utc(override.start), as_utc(override.end)
    for edge in (start, end):
        if edge > now:
            set_timer(session, EDGE_TIMER, ref, edge, now, {"rotation": override.rotation_id})
    # Whoever starts at either edge (the cover, then the person it hands back to) is reminded.
    for lead in org.rotation(override.rotation_id).reminders:
        for name, edge in (("start", start), ("end", end)):
            if edge - lead > now:
                set_timer(
                    session,
                    OVERRIDE_REMINDER_TIMER,
                    f"{ref}:{name}",
                    edge - lead,
                    now,
                    {"at": edge.isoformat(), "lead": int(lead.total_seconds())},
                )


def unschedule_override(session: Session, override: Override) -> None:
    ref = f"override:{override.id}"
    cancel_timers(session, EDGE_TIMER, ref)
    for name in ("start", "end"):
        cancel_timers(session, OVERRIDE_REMINDER_TIMER, f"{ref}:{name}")


def _override_span(org: OrgConfig, override: Override) -> str:
    """'*rotation* from <start> to <end>', as both override notices say it."""
    zone = org.rotation_zone(override.rotation_id)
    return (
        f"*{escape(override.rotation_id)}* from {messages.when(as_utc(override.start), zone)} "
        f"to {messages.when(as_utc(override.end), zone)}"
    )


def announce_override(
    session: Session,
    org: OrgConfig,
    result: service.OverrideResult,
    actor: str,
    now: datetime,
    resolve: Resolve,
) -> None:
    override = result.override
    mention = _mention(resolve)
    span = _override_span(org, override)
    why = f"\nReason: {escape(override.reason)}" if override.reason else ""
    if result.outsider:
        team = org.rotation(override.rotation_id).team
        why += (
            f"\n:warning: {mention(override.person)} is not in *{escape(override.rotation_id)}* "
            f"or team *{escape(team)}*; {mention(actor)} confirmed the cover anyway."
        )
    replaced = ", ".join(mention(p) for p in result.replaced)

    def by(person: str) -> str:
        return "" if resolve(actor) == resolve(person) else f" ({mention(actor)} set it up)"

    told = {resolve(override.person)}
    _dm(
        session,
        f"oncall:override:{override.id}:dm:{resolve(override.person)}",
        override.person,
        f":raising_hand: You cover {span} for {replaced}{by(override.person)}.{why}",
        now,
        resolve,
    )
    for person in result.replaced:
        if resolve(person) in told:
            continue
        told.add(resolve(person))
        _dm(
            session,
            f"oncall:override:{override.id}:dm:{resolve(person)}",
            person,
            f":relieved: {mention(override.person)} covers your {span}{by(person)}.{why}",
            now,
            resolve,
        )
    schedule_override(session, org, override, now)
    after_change(session, org, override.rotation_id, result.before, now, resolve, told)


def announce_cancelled_override(
    session: Session,
    org: OrgConfig,
    result: service.OverrideResult,
    actor: str,
    now: datetime,
    resolve: Resolve,
) -> None:
    override = result.override
    mention = _mention(resolve)
    halves = [o for o in (override, result.other_half) if o is not None]
    if result.other_half is not None:
        what = f"swap #{override.swap_id} (both halves: " + "; ".join(
            f"{mention(o.person)} covering {_override_span(org, o)}" for o in halves
        )
        what += "). Both of you keep your own shifts as scheduled"
    else:
        what = (
            f"override #{override.id} "
            f"({mention(override.person)} covering {_override_span(org, override)})"
        )
    told = set()
    people = [p for o in halves for p in (o.person, o.replaces) if p]
    # dict.fromkeys: each person once, in a stable order (a set's order varies per run).
    for person in dict.fromkeys(people):
        told.add(resolve(person))
        _dm(
            session,
            f"oncall:override:{override.id}:cancelled:dm:{resolve(person)}",
            person,
            f":x: {mention(actor)} cancelled {what}.",
            now,
            resolve,
        )
    for half in halves:
        unschedule_override(session, half)
    after_change(session, org, override.rotation_id, result.before, now, resolve, told)


def after_change(
    session: Session,
    org: OrgConfig,
    rotation_id: str,
    before: dict[str, tuple[datetime, datetime] | None],
    now: datetime,
    resolve: Resolve,
    already_told: set[str] | None = None,
    reason: str = "the rotation changed",
) -> None:
    """Tell everyone whose next shift moved, and bring the user group and topic up to date."""
    notify_moved(
        session,
        org,
        service.moved_shifts(session, org, rotation_id, before, now),
        now,
        resolve,
        already_told or set(),
        reason,
    )
    sync_presence(session, org, rotation_id, now, resolve)


def notify_moved(
    session: Session,
    org: OrgConfig,
    moved: Sequence[service.MovedShift],
    now: datetime,
    resolve: Resolve,
    skip: set[str],
    reason: str,
) -> None:
    for change in moved:
        if resolve(change.person) in skip:
            continue
        zone = org.rotation_zone(change.rotation_id)
        was, now_text = (_span(window, zone) for window in (change.before, change.after))
        after = _iso(change.after[0]) if change.after else "none"
        _dm(
            session,
            f"oncall:moved:{change.rotation_id}:{resolve(change.person)}:{_iso(now)}:{after}",
            change.person,
            f":calendar: Your next *{escape(change.rotation_id)}* shift moved "
            f"({escape(reason)}).\nWas: {was}\nNow: {now_text}",
            now,
            resolve,
        )


def _span(window: tuple[datetime, datetime] | None, zone: Any) -> str:
    if window is None:
        return "none in the next 26 weeks"
    return f"{messages.when(window[0], zone)} → {messages.when(window[1], zone)}"


def announce_roster_change(
    session: Session, org: OrgConfig, change: service.RosterChange, now: datetime, resolve: Resolve
) -> None:
    moved = service.moved_shifts(session, org, change.rotation_id, change.before, now)
    notify_moved(session, org, moved, now, resolve, set(), "its members changed in the config")


# ---- swaps ----------------------------------------------------------------------------------


def _swap_key(swap: SwapRequest) -> str:
    return f"oncall:swap:{swap.id}:ask"


def ask_for_swap(
    session: Session, org: OrgConfig, swap: SwapRequest, now: datetime, resolve: Resolve
) -> None:
    zone = org.rotation_zone(swap.rotation_id)
    text, blocks = messages.swap_request_blocks(
        swap.id or 0,
        swap.rotation_id,
        swap.requester,
        (as_utc(swap.requester_start), as_utc(swap.requester_end)),
        (as_utc(swap.requestee_start), as_utc(swap.requestee_end)),
        as_utc(swap.expires_at),
        zone,
        _mention(resolve),
    )
    _dm(session, _swap_key(swap), swap.requestee, text, now, resolve, blocks)
    set_timer(
        session,
        SWAP_EXPIRY_TIMER,
        f"swap:{swap.id}",
        as_utc(swap.expires_at),
        now,
        {"swap": swap.id},
    )


def _close_request(session: Session, swap: SwapRequest, text: str, now: datetime) -> None:
    outbox.update_message(
        session,
        f"{_swap_key(swap)}:{swap.status}",
        _swap_key(swap),
        text,
        now,
        blocks=messages.swap_answered_blocks(text),
    )
    cancel_timers(session, SWAP_EXPIRY_TIMER, f"swap:{swap.id}")


def announce_swap_accepted(
    session: Session, org: OrgConfig, result: service.SwapResult, now: datetime, resolve: Resolve
) -> None:
    swap = result.swap
    zone = org.rotation_zone(swap.rotation_id)
    mention = _mention(resolve)
    rotation = escape(swap.rotation_id)
    takes_theirs = (
        f"{messages.when(as_utc(swap.requester_start), zone)} → "
        f"{messages.when(as_utc(swap.requester_end), zone)}"
    )
    takes_yours = (
        f"{messages.when(as_utc(swap.requestee_start), zone)} → "
        f"{messages.when(as_utc(swap.requestee_end), zone)}"
    )
    _close_request(
        session,
        swap,
        f":white_check_mark: You accepted the *{rotation}* swap with {mention(swap.requester)}: "
        f"you now take {takes_theirs}; they take {takes_yours}.",
        now,
    )
    _dm(
        session,
        f"oncall:swap:{swap.id}:accepted:dm:{resolve(swap.requester)}",
        swap.requester,
        f":white_check_mark: {mention(swap.requestee)} accepted your *{rotation}* swap: "
        f"you now take {takes_yours}; they take {takes_theirs}.",
        now,
        resolve,
    )
    for override in result.overrides:
        schedule_override(session, org, override, now)
    after_change(
        session,
        org,
        swap.rotation_id,
        result.before,
        now,
        resolve,
        {resolve(swap.requester), resolve(swap.requestee)},
    )


def announce_swap_declined(
    session: Session, org: OrgConfig, swap: SwapRequest, now: datetime, resolve: Resolve
) -> None:
    mention = _mention(resolve)
    _close_request(
        session,
        swap,
        f"You declined the *{escape(swap.rotation_id)}* swap with {mention(swap.requester)}.",
        now,
    )
    _dm(
        session,
        f"oncall:swap:{swap.id}:declined:dm:{resolve(swap.requester)}",
        swap.requester,
        f":no_entry_sign: {mention(swap.requestee)} declined your *{escape(swap.rotation_id)}* "
        "swap request. Your shifts stay as they were.",
        now,
        resolve,
    )


def announce_swap_expired(
    session: Session, org: OrgConfig, swap: SwapRequest, now: datetime, resolve: Resolve
) -> None:
    mention = _mention(resolve)
    _close_request(
        session,
        swap,
        f":hourglass: This *{escape(swap.rotation_id)}* swap request from "
        f"{mention(swap.requester)} expired without an answer.",
        now,
    )
    _dm(
        session,
        f"oncall:swap:{swap.id}:expired:dm:{resolve(swap.requester)}",
        swap.requester,
        f":hourglass: Your *{escape(swap.rotation_id)}* swap request to "
        f"{mention(swap.requestee)} expired without an answer. Your shifts stay as they were.",
        now,
        resolve,
    )


# ---- handoff, prompts, reminders ------------------------------------------------------------


def handoff(
    session: Session,
    org: OrgConfig,
    rotation_id: str,
    at: datetime,
    now: datetime,
    resolve: Resolve,
    extras: Mapping[str, Any],
) -> None:
    """The handoff report in the team channel and to both people, then the review agenda.

    Runs at every scheduled handoff and at every override's edges, and reports only when the
    rotation really changes hands at `at`: a cover for the incoming person that starts early
    makes the handoff happen at the cover's start (the person who really handed over gets the
    report and the agenda), and a one-person rotation never hands over to itself.
    """
    rotation = org.rotation(rotation_id)
    zone = org.rotation_zone(rotation_id)
    cadence = Cadence.of(rotation, zone)
    outgoing = service.who_is_on_call(session, org, rotation_id, at - timedelta(microseconds=1))
    incoming = service.who_is_on_call(session, org, rotation_id, at)
    sync_presence(session, org, rotation_id, at, resolve)
    if incoming.primary is None or (
        outgoing.primary is not None and resolve(outgoing.primary) == resolve(incoming.primary)
    ):
        return  # nobody changes hands at this instant
    index = cadence.index_at(at)
    if index is not None and cadence.handoff(index) == at:
        # A scheduled handoff reviews the whole shift, covers inside it included.
        shift_start = cadence.handoff(index - 1) if index else at
    else:
        shift_start = outgoing.shift_start or at
    figures = shift_figures(extras, session, rotation_id, shift_start, at)
    open_pages = _provided(extras, "oncall.open_pages", [], session, rotation_id)
    open_tickets = _provided(extras, "oncall.open_tickets", [], session, rotation.team)
    note = service.notes_for(session, rotation_id, at)
    text, blocks = messages.handoff_blocks(
        rotation_id=rotation_id,
        at=at,
        zone=zone,
        outgoing=outgoing,
        incoming=incoming,
        figures=figures,
        open_pages=open_pages,
        open_tickets=open_tickets,
        notes=note.text if note else None,
        notes_author=note.author if note else None,
        loads=service.load(session, org, rotation_id, at),
        mention=_mention(resolve),
        now=now,
    )
    key = f"oncall:handoff:{rotation_id}:{_iso(at)}"
    channel = org.team(rotation.team).channel
    if channel is not None:
        outbox.post(session, f"{key}:channel", channel, text, now, blocks=blocks)
    for person in dict.fromkeys(p for p in (outgoing.primary, incoming.primary) if p):
        _dm(session, f"{key}:dm:{resolve(person)}", person, text, now, resolve, blocks)
    facts = {
        "rotation": rotation_id,
        "at": _iso(at),
        "outgoing": outgoing.primary,
        "incoming": incoming.primary,
        "secondary": incoming.secondary,
    }
    after_commit(session, lambda: logs.event(log, "handoff", **facts))
    if rotation.kind == "oncall" and outgoing.primary is not None:
        agenda_text, agenda = messages.agenda_blocks(
            rotation_id=rotation_id,
            start=shift_start,
            end=at,
            zone=zone,
            figures=figures,
            open_pages=open_pages,
            open_tickets=open_tickets,
            now=now,
        )
        _dm(
            session,
            f"oncall:agenda:{rotation_id}:{_iso(at)}",
            outgoing.primary,
            agenda_text,
            now,
            resolve,
            agenda,
        )


def prompt_for_notes(
    session: Session,
    org: OrgConfig,
    rotation_id: str,
    handoff_at: datetime,
    now: datetime,
    resolve: Resolve,
) -> None:
    """An hour before a handoff, ask the person handing over for notes."""
    outgoing = service.who_is_on_call(
        session, org, rotation_id, handoff_at - timedelta(microseconds=1)
    )
    incoming = service.who_is_on_call(session, org, rotation_id, handoff_at)
    if outgoing.primary is None or outgoing.primary == incoming.primary:
        return  # nobody hands over
    text, blocks = messages.notes_prompt_blocks(
        rotation_id, handoff_at, org.rotation_zone(rotation_id), incoming.primary, _mention(resolve)
    )
    _dm(
        session,
        f"oncall:notes_prompt:{rotation_id}:{_iso(handoff_at)}",
        outgoing.primary,
        text,
        now,
        resolve,
        blocks,
    )


def remind(
    session: Session,
    org: OrgConfig,
    rotation_id: str,
    shift_start: datetime,
    lead: timedelta,
    now: datetime,
    resolve: Resolve,
) -> None:
    """Remind whoever starts a stretch on call at `shift_start` (overrides honoured)."""
    starting = service.who_is_on_call(session, org, rotation_id, shift_start)
    if starting.primary is None or starting.shift_start != shift_start:
        return  # nobody starts then (the same person simply carries on)
    zone = org.rotation_zone(rotation_id)
    end = messages.when(starting.shift_end, zone) if starting.shift_end else "further notice"
    _dm(
        session,
        f"oncall:reminder:{rotation_id}:{_iso(shift_start)}:{int(lead.total_seconds())}:"
        f"{resolve(starting.primary)}",
        starting.primary,
        f":alarm_clock: Reminder: you are on call for *{escape(rotation_id)}* from "
        f"{messages.when(shift_start, zone)} to {end} (in {messages.age(now, shift_start)}).",
        now,
        resolve,
    )


def on_override_reminder(
    session: Session, org: OrgConfig, timer: Timer, now: datetime, resolve: Resolve
) -> None:
    override = session.get(Override, int(timer.ref.split(":")[1]))
    if override is None or override.cancelled_at is not None:
        return
    remind(
        session,
        org,
        override.rotation_id,
        as_utc(datetime.fromisoformat(timer.payload["at"])),
        timedelta(seconds=timer.payload.get("lead", 0)),
        now,
        resolve,
    )
