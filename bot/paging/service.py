"""Paging: open pages (by hand, from alerts, for critical support requests), escalate them along
their policy, and acknowledge, resolve and classify them.

Every change to a page is a compare-and-set UPDATE on its status (or position) issued before the
page is read, so concurrent presses and replicas serialise on the row and end in one defined
state: an acknowledgement racing a resolve ends resolved, with the loser told why. Escalation
steps are database timers, so a restart never loses one.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot import outbox
from bot.business_hours import is_business_hours
from bot.config import OrgConfig
from bot.durations import format_duration
from bot.errors import InvalidInput, NotFound
from bot.paging import telemetry, webhooks
from bot.paging.blocks import page_blocks, page_text
from bot.paging.escalation import (
    OPEN_STATUSES,
    TRIGGERED,
    PolicySnapshot,
    resolve_policy,
)
from bot.paging.models import Page, PageEvent
from bot.paging.targets import step_target, who_is_on_call
from bot.runbooks import runbook_index
from bot.scheduler import Timer, cancel_timers, set_timer

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

ESCALATION_TIMER = "page.escalate"
# A repeat of an open page's alert shows up on its messages within this long (one edit per
# message per window, however many alerts arrive); state changes are shown at once.
REPEAT_EDIT_DELAY = timedelta(seconds=30)
SUMMARY_LIMIT = 300


# ---- reading -------------------------------------------------------------------------------


# Built once (its cache key too): every press and every edit of a page reads it by id.
_PAGE_BY_ID = (
    select(Page).where(Page.id == bindparam("page_id")).execution_options(populate_existing=True)
)


def get_page(session: Session, page_id: int) -> Page:
    page = session.exec(_PAGE_BY_ID, params={"page_id": page_id}).first()
    if page is None:
        raise NotFound(f"There is no page #{page_id}.")
    return page


def page_events(session: Session, page_id: int) -> list[PageEvent]:
    return list(
        session.exec(
            select(PageEvent)
            .where(PageEvent.page_id == page_id)
            .order_by(col(PageEvent.at), col(PageEvent.id))
        ).all()
    )


def open_pages_for(session: Session, user_id: str) -> list[Page]:
    """Open pages that notified this person or that they acknowledged (App Home)."""
    pages = session.exec(
        select(Page).where(col(Page.status).in_(OPEN_STATUSES)).order_by(col(Page.opened_at))
    ).all()
    return [p for p in pages if user_id in p.notified or p.acknowledged_by == user_id]


# ---- opening -------------------------------------------------------------------------------


def trigger_page(
    runtime: Runtime,
    session: Session,
    *,
    policy_id: str,
    summary: str,
    details: str = "",
    source: str = "manual",
    dedup_key: str | None = None,
    team_id: str | None = None,
    requested_by: str | None = None,
    business_impact: str | None = None,
    why_page: str | None = None,
    labels: dict | None = None,
    alert_name: str | None = None,
    runbook_url: str | None = None,
    link_url: str | None = None,
) -> Page:
    """Open a page and fire its policy's first step; with a `dedup_key` that already has an open
    page, count a repeat on that page instead (one page per fingerprint while open)."""
    org = runtime.org
    now = runtime.clock.now()
    summary = " ".join((summary or "").split())
    if not summary:
        raise InvalidInput("A page needs a summary: what is wrong?")
    if len(summary) > SUMMARY_LIMIT:
        summary = summary[: SUMMARY_LIMIT - 1] + "…"
    policy = resolve_policy(org, policy_id)
    if team_id is not None:
        org.team(team_id)
    if dedup_key:
        # A write first: on SQLite it takes the write lock, so concurrent alerts queue here.
        repeated = _count_repeat(runtime, session, dedup_key, now)
        if repeated is not None:
            return repeated
    labels = {str(k): str(v) for k, v in (labels or {}).items()}
    team_id = team_id or _team_for(org, policy, labels)
    rotation_id = policy.first_rotation
    # Kept as the config names the person, so the load report can match on-call's accounting.
    primary = who_is_on_call(session, org, rotation_id, now).primary if rotation_id else None
    runbook = runbook_index(runtime).find(alert_name, summary)
    page = Page(
        summary=summary,
        details=details or "",
        source=source,
        dedup_key=dedup_key,
        open_key=dedup_key,
        status=TRIGGERED,
        policy_id=policy.id,
        policy=policy.to_json(),
        steps_total=len(policy.steps) * (policy.repeat + 1),
        team_id=team_id,
        rotation_id=rotation_id,
        primary_user=primary,
        labels=labels,
        alert_name=alert_name,
        runbook=runbook.slug if runbook else None,
        runbook_url=runbook_url,
        link_url=link_url,
        requested_by=requested_by,
        business_impact=(business_impact or "").strip() or None,
        why_page=(why_page or "").strip() or None,
        opened_at=now,
        last_alert_at=now,
        off_hours=not is_business_hours(org, now, team_id),
    )
    try:
        with session.begin_nested():
            session.add(page)
            session.flush()
    except IntegrityError:
        # Another replica opened this fingerprint's page a moment ago: count this alert there.
        repeated = _count_repeat(runtime, session, dedup_key, now) if dedup_key else None
        if repeated is None:
            raise
        return repeated
    assert page.id is not None
    record_event(session, page, "opened", now, actor=requested_by, detail=f"via {source}")
    channel = org.team(team_id).channel if team_id else None
    if channel:
        page.messages = [*page.messages, {"key": f"page:{page.id}:channel", "to": channel}]
    _start_chain(runtime, session, page, policy, now)
    publish(runtime, session, page, now)
    return page


def _count_repeat(runtime: Runtime, session: Session, key: str, now: datetime) -> Page | None:
    page_id = session.exec(
        update(Page)
        .where(col(Page.open_key) == key)
        .values(repeat_count=Page.repeat_count + 1, last_alert_at=now, version=Page.version + 1)
        .returning(Page.id)
    ).first()
    if page_id is None:
        return None
    page = get_page(session, page_id[0])
    publish(runtime, session, page, now, edit_delay=REPEAT_EDIT_DELAY)
    return page


def _team_for(org: OrgConfig, policy: PolicySnapshot, labels: dict[str, str]) -> str | None:
    if policy.first_rotation is not None:
        return org.rotation(policy.first_rotation).team
    team = labels.get("team")
    return team if team and any(t.id == team for t in org.teams) else None


# ---- the escalation chain ------------------------------------------------------------------


def _timer_ref(page: Page) -> str:
    return f"page:{page.id}"


def cancel_escalation(session: Session, page_id: int) -> None:
    """Cancel the page's pending steps. Called before the page's own UPDATE: the scheduler locks
    a timer and then its page, so taking them in the other order could deadlock (PostgreSQL).
    If the move is then refused, the unit of work rolls back and the timers stand."""
    cancel_timers(session, ESCALATION_TIMER, f"page:{page_id}")


def _start_chain(
    runtime: Runtime, session: Session, page: Page, policy: PolicySnapshot, now: datetime
) -> None:
    delay = policy.delay_before(0, 0)
    if delay.total_seconds() > 0:
        _arm(session, page, now + delay, now, 0)
    else:
        run_chain(runtime, session, page, 0, now)


def _arm(session: Session, page: Page, due: datetime, now: datetime, position: int) -> None:
    """Set the timer for the step at `position`. A timer cancelled at the same instant (a manual
    escalation re-arming the chain) is reused, so its payload is set afresh."""
    timer = set_timer(session, ESCALATION_TIMER, _timer_ref(page), due, now, {"position": position})
    if timer.payload != {"position": position}:
        timer.payload = {"position": position}
    timer.status = "pending"


def run_chain(
    runtime: Runtime, session: Session, page: Page, position: int, now: datetime
) -> list[str]:
    """Fire the step at `position`, and at once the ones after it that are skipped (nobody on
    call, nobody reachable, only people already notified) or have no delay; then set the timer
    for the next one. Returns whom it reached: Slack ids and `webhook:<id>`s."""
    policy = PolicySnapshot.from_json(page.policy)
    steps = len(policy.steps)
    reached: list[str] = []
    while position < page.steps_total:
        page.position = position
        notified = _notify_step(runtime, session, page, policy, position, now)
        if notified:
            reached.append(notified)
        following = position + 1
        if following >= page.steps_total:
            if notified:
                # The last step gets its window too; then the page says nobody acknowledged.
                _arm(session, page, now + policy.last_step_window(), now, following)
            else:
                record_event(
                    session, page, "escalation_exhausted", now, detail="no step left to notify"
                )
            return reached
        delay = policy.delay_before(*divmod(following, steps))
        if notified and delay.total_seconds() > 0:
            _arm(session, page, now + delay, now, following)
            return reached
        position = following
    return reached


def _notify_step(
    runtime: Runtime,
    session: Session,
    page: Page,
    policy: PolicySnapshot,
    position: int,
    now: datetime,
) -> str | None:
    """Notify the step's target; whom it reached, or None (and a timeline line saying why) when
    the step reaches nobody new: nobody on call, an address no Slack user has, or a person this
    pass of the chain already notified (one person on a rotation and on its secondary)."""
    cycle, index = divmod(position, len(policy.steps))
    step = policy.steps[index]
    where = f"step {index + 1}, {step.notify}"
    target = step_target(runtime, session, step, now)
    if target.webhook is not None:
        reached, detail = webhooks.notify(runtime, session, page, target.webhook, where, now)
        record_event(session, page, "notified" if reached else "unreachable", now, detail=detail)
        if reached and index > 0:
            page.fell_through = True
        return reached
    if target.user is None:
        kind = "unreachable" if target.unreachable else "skipped"
        record_event(session, page, kind, now, detail=f"{where}: {target.problem}")
        return None
    user = target.user
    if user in _notified_in_pass(page, cycle * len(policy.steps), position):
        record_event(session, page, "skipped", now, actor=user, detail=f"{where}: already notified")
        return None
    key = f"page:{page.id}:dm:{position}:{user}"
    page.messages = [*page.messages, {"key": key, "to": user}]
    if user not in page.notified:
        page.notified = [*page.notified, user]
    if index > 0:
        page.fell_through = True
    record_event(session, page, "notified", now, actor=user, detail=where)
    return user


def _notified_in_pass(page: Page, first: int, position: int) -> set[str]:
    """People DMed by the steps of this pass before `position` (a repeat pass pages them again)."""
    people = set()
    for message in page.messages:
        parts = message["key"].split(":")
        if len(parts) == 5 and parts[2] == "dm" and first <= int(parts[3]) < position:
            people.add(parts[4])
    return people


def on_escalation_timer(runtime: Runtime, session: Session, timer: Timer, now: datetime) -> None:
    """A step is due: fire it unless the page was acknowledged, resolved or moved on meanwhile."""
    page_id = int(timer.ref.split(":", 1)[1])
    position = int(timer.payload["position"])
    claimed = session.exec(
        update(Page)
        .where(col(Page.id) == page_id)
        .where(col(Page.status) == TRIGGERED)
        .where(col(Page.position) == position - 1)
        .values(version=Page.version + 1)
    )
    if claimed.rowcount != 1:
        return
    page = get_page(session, page_id)
    policy = PolicySnapshot.from_json(page.policy)
    waited = policy.last_step_window() if position >= page.steps_total else None
    if position >= page.steps_total:
        record_event(
            session,
            page,
            "escalation_exhausted",
            now,
            detail=f"every step notified; nobody acknowledged ({_minutes(waited)} after the last)",
        )
    else:
        delay = policy.delay_before(*divmod(position, len(policy.steps)))
        if position > 0:
            record_event(
                session, page, "escalated", now, detail=f"no acknowledgement in {_minutes(delay)}"
            )
        run_chain(runtime, session, page, position, now)
    publish(runtime, session, page, now)


def _minutes(delta: Any) -> str:
    return format_duration(delta)


def page_zone(runtime: Runtime, page: Page) -> ZoneInfo:
    """The page's team's zone; the org's when the team has left the config since."""
    try:
        return runtime.org.zone(page.team_id)
    except NotFound:
        return runtime.org.zone()


# ---- timeline and messages -----------------------------------------------------------------


def record_event(
    session: Session,
    page: Page,
    kind: str,
    now: datetime,
    actor: str | None = None,
    detail: str = "",
) -> None:
    assert page.id is not None
    session.add(PageEvent(page_id=page.id, at=now, kind=kind, actor=actor, detail=detail[:500]))
    telemetry.page_changed(session, page, kind, now, actor, detail)


def note(runtime: Runtime, session: Session, page: Page, kind: str, detail: str) -> None:
    """A line on the page's timeline from outside the chain (e.g. a webhook that failed)."""
    now = runtime.clock.now()
    record_event(session, page, kind, now, detail=detail)
    page.version += 1
    publish(runtime, session, page, now)


def publish(
    runtime: Runtime,
    session: Session,
    page: Page,
    now: datetime,
    edit_delay: timedelta | None = None,
) -> None:
    """Post the page's new messages and edit the existing ones in place. The outbox sends only
    the newest pending edit of a message; `edit_delay` holds an edit back (never later than an
    edit already waiting) so a storm of repeats becomes a few edits, not one per alert."""
    session.flush()
    webhooks.follow(runtime, session, page, now)
    if not page.messages:
        return
    keys = [m["key"] for m in page.messages]
    existing = set(
        session.exec(
            select(outbox.OutboxMessage.key).where(col(outbox.OutboxMessage.key).in_(keys))
        )
    )
    zone = page_zone(runtime, page)
    runbook = runbook_index(runtime).get(page.runbook)
    blocks = page_blocks(page, page_events(session, page.id or 0), zone, runbook)
    text = page_text(page)
    for message in page.messages:
        if message["key"] in existing and edit_delay is None:
            outbox.update_message(
                session, f"{message['key']}:v{page.version}", message["key"], text, now, blocks
            )
        elif message["key"] in existing:
            _delayed_edit(session, message["key"], page.version, text, blocks, now, edit_delay)
        else:
            outbox.post(session, message["key"], message["to"], text, now, blocks=blocks)


def _delayed_edit(
    session: Session,
    of: str,
    version: int,
    text: str,
    blocks: list[dict[str, Any]],
    now: datetime,
    delay: timedelta,
) -> None:
    # The same coalesce key as outbox.update_message, so any newer edit (an acknowledgement,
    # sent at once) replaces this one and a stale repeat count never overwrites it.
    coalesce = f"update:{of}"
    waiting = session.exec(
        select(outbox.OutboxMessage.not_before)
        .where(outbox.OutboxMessage.coalesce_key == coalesce)
        .where(outbox.OutboxMessage.status == outbox.PENDING)
    ).first()
    due = min(waiting, now + delay) if waiting is not None else now + delay
    outbox.enqueue(
        session,
        f"{of}:v{version}",
        "chat.update",
        {"text": text, "blocks": blocks},
        now,
        ref=of,
        coalesce=coalesce,
        not_before=due,
    )


# ---- wiring --------------------------------------------------------------------------------


def install(runtime: Runtime) -> None:
    from bot.paging import load
    from bot.paging.delivery import unneeded_page_dms

    outbox.register_usefulness("page", unneeded_page_dms)

    webhooks.install(runtime)
    runtime.scheduler.on_timer(
        ESCALATION_TIMER,
        lambda session, timer, now: on_escalation_timer(runtime, session, timer, now),
    )
    runtime.extras["oncall.shift_figures"] = load.shift_figures
    runtime.extras["oncall.open_pages"] = load.open_pages
