"""Migration workflows that tell people things: stage changes, announcements, owner notices,
released steps, help requests, blocks that become support tickets, exemptions.

Everything leaves through the outbox, keyed so a retry never tells anyone twice.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from bot import outbox
from bot.config import OrgConfig
from bot.errors import Conflict, InvalidInput, NotAllowed
from bot.mrkdwn import escape
from bot.platform_migrations import blocks, catalog, steps
from bot.platform_migrations.blocks import WorkItem
from bot.platform_migrations.loading import step_of, steps_of
from bot.platform_migrations.models import (
    ACTIVE,
    BLOCKED,
    DONE,
    DRAFT,
    LIVE_STAGES,
    LONG_TAIL,
    PILOT,
    STAGES,
    Migration,
    OwnerNudge,
    StepState,
)
from bot.platform_migrations.targets import overlaps, sync_targets, targets
from bot.scheduler import Timer, set_timer

if TYPE_CHECKING:
    from bot.runtime import Runtime

SYNC_TIMER = "migration.sync"
DEFAULT_EXEMPTION = timedelta(days=182)


class NeedsConfirmation(Conflict):
    """Activating needs an explicit yes (no pilot first, or teams would carry too much)."""

    def __init__(self, migration: Migration, warnings: list[str]) -> None:
        super().__init__(
            f"Activating '{migration.id}' needs confirmation:\n"
            + "\n".join(f"- {w}" for w in warnings)
        )
        self.migration = migration
        self.warnings = warnings


def horizon_start(org: OrgConfig, migration: Migration) -> date:
    """The day the deadline comes within `info_only_beyond` (12 months by default)."""
    return migration.deadline - org.platform_migrations.info_only_beyond


def info_only(org: OrgConfig, migration: Migration, now: datetime) -> bool:
    return now.date() < horizon_start(org, migration)


def request_sync(session: Session, migration_id: str, now: datetime) -> None:
    """Ask the worker to re-resolve targets, release steps and tell people (it has Slack)."""
    due = now
    # A sync that already ran at this very instant would swallow the request: go a tick earlier.
    while (
        found := session.exec(
            select(Timer).where(
                Timer.kind == SYNC_TIMER, Timer.ref == migration_id, Timer.due_at == due
            )
        ).first()
    ) is not None and found.status != "pending":
        due -= timedelta(microseconds=1)
    set_timer(session, SYNC_TIMER, migration_id, due, now)


def live_migrations(session: Session) -> list[Migration]:
    return [m for m in session.exec(select(Migration)).all() if m.stage in LIVE_STAGES]


def change_stage(
    session: Session,
    org: OrgConfig,
    migration: Migration,
    stage: str,
    now: datetime,
    *,
    confirmed: bool = False,
    by: str | None = None,
) -> list[str]:
    """Move a migration to a stage the platform team chose; returns the warnings it accepted."""
    if stage not in STAGES:
        raise InvalidInput(f"'{stage}' is not a stage (one of: {', '.join(STAGES)}).")
    if stage == migration.stage:
        return []
    if stage == DRAFT and migration.stage != PILOT:
        raise Conflict(f"'{migration.id}' has been announced; it cannot go back to draft.")
    warnings: list[str] = []
    if stage in (ACTIVE, LONG_TAIL) and migration.stage in (DRAFT, PILOT):
        if not migration.piloted and migration.stage != PILOT:
            warnings.append(
                "it has not been piloted: no team has tried the move yet (the book: have "
                "another platform team go first, then early adopters)"
            )
        warnings += overlaps(session, org, migration)
        if warnings and not confirmed:
            raise NeedsConfirmation(migration, warnings)
    if stage == PILOT:
        if not migration.pilot_teams:
            raise InvalidInput(f"'{migration.id}' names no pilot_teams to go first.")
        migration.piloted = True
    migration.stage, migration.stage_changed_at, migration.updated_at = stage, now, now
    steps.record(session, migration.id, "stage", now, actor=by, detail=stage)
    request_sync(session, migration.id, now)
    return warnings


# ---- the sync: targets, catalog facts, releases, notices ------------------------------------


@dataclass
class SyncResult:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    released: list[StepState] = field(default_factory=list)
    announced: bool = False


def sync(runtime: Runtime, session: Session, migration: Migration) -> SyncResult:
    """Bring a migration up to date with the catalog and tell whoever that concerns."""
    org, now = runtime.org, runtime.clock.now()
    result = SyncResult()
    if migration.stage == DONE:
        return result
    change = sync_targets(session, org, migration, now)
    result.added, result.removed = change.added, change.removed
    if migration.stage not in LIVE_STAGES:
        return result
    for progress in steps.apply_catalog_facts(session, org, migration, now):
        result.released += progress.released
        announce_stage_change(runtime, session, migration, progress.stage_change)
    steps.expire_exemptions(session, migration, now.date(), now)
    result.released += steps.release(session, org, migration, now)
    stage_change = steps.advance_stage(session, migration, now)
    announce_stage_change(runtime, session, migration, stage_change)
    if migration.stage in (PILOT, ACTIVE):
        # Keyed per stage and channel in the outbox: announced once per stage, never twice.
        announce(runtime, session, migration)
        result.announced = migration.announced_at is None
        migration.announced_at = migration.announced_at or now
    tell_owners(runtime, session, migration, result.released)
    return result


def _teams(session: Session, org: OrgConfig, services: list[str]) -> dict[str, list[str]]:
    teams: dict[str, list[str]] = defaultdict(list)
    for service in services:
        component = catalog.entity(session, "component", service)
        label = catalog.team_of_service(session, org, service) or (
            component.owner if component and component.owner else "unowned"
        )
        teams[label].append(service)
    return teams


def announce(runtime: Runtime, session: Session, migration: Migration) -> None:
    """The public notice to `announce_channels` and the migration's own channel."""
    org, now = runtime.org, runtime.clock.now()
    services = [
        t.service
        for t in targets(session, migration.id)
        if steps.in_pilot_scope(session, org, migration, t.service)
    ]
    text, body = blocks.announcement(
        migration,
        _teams(session, org, services),
        info_only(org, migration, now),
        horizon_start(org, migration),
    )
    channels = list(org.platform_migrations.announce_channels)
    if migration.channel and migration.channel not in channels:
        channels.append(migration.channel)
    for channel in channels:
        outbox.post(
            session,
            f"migration:{migration.id}:{migration.stage}:announce:{channel}",
            channel,
            text,
            now,
            blocks=body,
            unfurl_links=False,
        )


def work_items(
    session: Session, migration: Migration, service: str, *, blocked: bool = True
) -> list[WorkItem]:
    """Released, unfinished steps of a service; nudges leave out blocked ones (the platform
    team works on those: the owner is not reminded meanwhile)."""
    specs = {s.id: s for s in steps_of(migration)}
    return [
        WorkItem(migration, service, specs[row.step], row.state)
        for row in steps.open_work(session, migration.id, service)
        if row.step in specs and (blocked or row.state != BLOCKED)
    ]


def owners_by_person(
    runtime: Runtime, session: Session, migration: Migration, services: list[str]
) -> dict[str, list[str]]:
    """person -> the services of this migration they own (through `catalog.owner_of`)."""
    found: dict[str, list[str]] = defaultdict(list)
    now = runtime.clock.now()
    for service in services:
        for person in catalog.owner_of(
            session, runtime.org, runtime.directory, service, now
        ).people:
            found[person].append(service)
    return found


def tell_owners(
    runtime: Runtime, session: Session, migration: Migration, released: list[StepState]
) -> None:
    """Owners who have not heard of the migration get the full notice (their services, what is
    released now); owners who have get a short notice for each newly released step."""
    org, now = runtime.org, runtime.clock.now()
    live = [
        t
        for t in targets(session, migration.id)
        if steps.in_pilot_scope(session, org, migration, t.service)
    ]
    untold = [t for t in live if t.told_at is None]
    newly = {t.service for t in untold}
    by_person = owners_by_person(runtime, session, migration, [t.service for t in untold])
    quiet = info_only(org, migration, now)
    for person, services in sorted(by_person.items()):
        items = [i for s in services for i in work_items(session, migration, s)]
        text, body = blocks.owner_notice(
            migration, services, items, quiet, horizon_start(org, migration)
        )
        outbox.post(
            session,
            f"migration:{migration.id}:notice:{person}:{','.join(services)}"[:255],
            person,
            text,
            now,
            blocks=body,
            unfurl_links=False,
        )
        nudge_row(session, migration.id, person).last_nudged_at = now
    for target in untold:
        target.told_at = now
    specs = {s.id: s for s in steps_of(migration)}
    for row in released:
        if row.service in newly:
            continue  # their first notice already lists it
        item = WorkItem(migration, row.service, specs[row.step], row.state)
        text, body = blocks.released_notice(item)
        owners = catalog.owner_of(session, org, runtime.directory, row.service, now).people
        for person in owners:
            outbox.post(
                session,
                f"migration:{migration.id}:released:{row.service}:{row.step}:{person}"[:255],
                person,
                text,
                now,
                blocks=body,
                unfurl_links=False,
            )
    session.flush()


def announce_stage_change(
    runtime: Runtime, session: Session, migration: Migration, stage: str | None
) -> None:
    if stage is None:
        return
    org, now = runtime.org, runtime.clock.now()
    if stage == LONG_TAIL:
        text = (
            f":checkered_flag: *{escape(migration.title)}* is 80 % done: the long tail begins. "
            "The remaining services are often the oldest or most customised; the platform team "
            "will work with each of them directly."
        )
    elif stage == DONE:
        text = (
            f":tada: *{escape(migration.title)}* is complete: every service has moved. "
            "Thank you to every team that did the work."
        )
    else:
        return
    channels = list(org.platform_migrations.announce_channels)
    if migration.channel and migration.channel not in channels:
        channels.append(migration.channel)
    for channel in channels:
        outbox.post(
            session, f"migration:{migration.id}:stage:{stage}:{channel}", channel, text, now
        )


# ---- owners' answers ------------------------------------------------------------------------


def nudge_row(session: Session, migration_id: str, person: str) -> OwnerNudge:
    row = session.exec(
        select(OwnerNudge).where(
            OwnerNudge.migration_id == migration_id, OwnerNudge.person == person
        )
    ).first()
    if row is None:
        row = OwnerNudge(migration_id=migration_id, person=person)
        session.add(row)
        session.flush()
    return row


def answered(session: Session, migration_id: str, person: str, now: datetime) -> None:
    row = nudge_row(session, migration_id, person)
    row.unanswered, row.last_answer_at = 0, now


def require_owner(
    runtime: Runtime, session: Session, migration: Migration, service: str, user: str
) -> None:
    org = runtime.org
    owners = catalog.owner_of(session, org, runtime.directory, service, runtime.clock.now())
    if user in owners.people or is_platform(runtime, session, user):
        return
    raise NotAllowed(
        f"Only the owners of {service} (or the platform team) can report its migration work."
    )


def is_platform(runtime: Runtime, session: Session, user: str) -> bool:
    org = runtime.org
    team_id = org.platform_migrations.platform_team
    people = list(org.admins)
    if team_id:
        team = org.team(team_id)
        people += team.members + team.managers
    return any(runtime.directory.user_id(p, session) == user for p in people)


def owner_reports(
    runtime: Runtime,
    session: Session,
    migration: Migration,
    service: str,
    step: str,
    state: str,
    user: str,
    reason: str | None = None,
) -> steps.Progress:
    """Done / in progress / blocked from an owner's button."""
    require_owner(runtime, session, migration, service, user)
    now = runtime.clock.now()
    progress = steps.report(
        session,
        runtime.org,
        migration,
        service,
        step,
        state,
        now,
        source="owner",
        by=user,
        reason=reason,
    )
    answered(session, migration.id, user, now)
    after_progress(runtime, session, migration, progress)
    return progress


def after_progress(
    runtime: Runtime, session: Session, migration: Migration, progress: steps.Progress
) -> None:
    tell_owners(runtime, session, migration, progress.released)
    announce_stage_change(runtime, session, migration, progress.stage_change)


def ask_for_help(
    runtime: Runtime,
    session: Session,
    migration: Migration,
    service: str,
    step: str,
    user: str,
    question: str | None,
) -> str:
    """Posts to the migration's channel, where owners and the platform team help each other."""
    now = runtime.clock.now()
    spec = step_of(migration, step)
    where = migration.channel or _platform_channel(runtime.org)
    if where is None:
        raise InvalidInput("This migration has no channel to ask in; ask the platform team.")
    text = (
        f":sos: <@{user}> needs help with *{escape(spec.title)}* for *{escape(service)}* "
        f"({escape(migration.title)})."
    )
    if question:
        text += f"\n>{escape(question)}"
    outbox.post(
        session,
        f"migration:{migration.id}:help:{service}:{step}:{user}:{now.isoformat()}",
        where,
        text,
        now,
    )
    steps.record(
        session, migration.id, "help", now, service=service, step=step, actor=user, detail=question
    )
    answered(session, migration.id, user, now)
    return where


def _platform_channel(org: OrgConfig) -> str | None:
    team_id = org.platform_migrations.platform_team
    return org.team(team_id).channel if team_id else None


def block(
    runtime: Runtime,
    session: Session,
    migration: Migration,
    service: str,
    step: str,
    user: str,
    reason: str,
) -> int | None:
    """Blocked: recorded with its reason; a support ticket in the platform queue when support
    is configured (the platform team, not the owner, removes what blocks a migration)."""
    if not reason.strip():
        raise InvalidInput("Say what blocks you, so the platform team can remove it.")
    owner_reports(runtime, session, migration, service, step, "blocked", user, reason)
    row = steps.state_of(session, migration.id, service, step)
    ticket_id = _open_ticket(runtime, session, migration, service, step, user, reason)
    row.ticket_id = ticket_id
    return ticket_id


def _open_ticket(
    runtime: Runtime,
    session: Session,
    migration: Migration,
    service: str,
    step: str,
    user: str,
    reason: str,
) -> int | None:
    org = runtime.org
    if not org.support.queues:
        return None
    from bot.support.intake import Request, open_ticket

    platform = org.platform_migrations.platform_team
    queue = next((q for q in org.support.queues if q.team == platform), org.support.queues[0])
    spec = step_of(migration, step)
    opened = open_ticket(
        runtime,
        session,
        Request(
            queue_id=queue.id,
            requester=user,
            summary=f"Migration {migration.id}: {service} is blocked at '{spec.title}'",
            details=f"{reason}\n\nMigration: {migration.title} (deadline "
            f"{migration.deadline.isoformat()})\nStep instructions: {spec.how or '—'}",
            intake="migration",
        ),
    )
    return opened.ticket.id


def request_exemption(
    runtime: Runtime,
    session: Session,
    migration: Migration,
    service: str,
    step: str,
    user: str,
    reason: str,
    until: date | None,
) -> str:
    """Goes to the sponsor, or the platform team without one; returns who was asked."""
    require_owner(runtime, session, migration, service, user)
    if not reason.strip():
        raise InvalidInput("Say why this service should be exempt.")
    now = runtime.clock.now()
    until = until or (now + DEFAULT_EXEMPTION).date()
    if until <= now.date():
        raise InvalidInput("An exemption must run until a date in the future.")
    spec = step_of(migration, step)
    who = migration.sponsor and runtime.directory.user_id(migration.sponsor, session)
    where = who or _platform_channel(runtime.org)
    if not where:
        raise InvalidInput(
            "Nobody can decide on exemptions: the migration has no sponsor and "
            "platform_migrations.platform_team has no channel."
        )
    text, body = blocks.exemption_request(migration, service, spec, user, reason, until)
    outbox.post(
        session,
        f"migration:{migration.id}:exemption:{service}:{step}:{now.isoformat()}",
        where,
        text,
        now,
        blocks=body,
    )
    steps.record(
        session,
        migration.id,
        "exemption_requested",
        now,
        service=service,
        step=step,
        actor=user,
        detail=reason,
    )
    answered(session, migration.id, user, now)
    return where


def decide_exemption(
    runtime: Runtime,
    session: Session,
    migration: Migration,
    service: str,
    step: str,
    owner: str,
    until: date,
    decider: str,
    approve: bool,
) -> None:
    sponsor = migration.sponsor and runtime.directory.user_id(migration.sponsor, session)
    if decider != sponsor and not is_platform(runtime, session, decider):
        raise NotAllowed("Only the migration's sponsor or the platform team decide exemptions.")
    now = runtime.clock.now()
    spec = step_of(migration, step)
    if approve:
        progress = steps.exempt(
            session, runtime.org, migration, service, step, until, now, decider, None
        )
        after_progress(runtime, session, migration, progress)
        text = (
            f":white_check_mark: <@{decider}> approved your exemption from *{escape(spec.title)}* "
            f"for *{escape(service)}* until {until.isoformat()}. It counts as done until then."
        )
    else:
        steps.record(
            session,
            migration.id,
            "exemption_declined",
            now,
            service=service,
            step=step,
            actor=decider,
        )
        text = (
            f"<@{decider}> declined the exemption from *{escape(spec.title)}* for "
            f"*{escape(service)}*. Ask in <#{migration.channel}> what would make the move "
            "possible."
            if migration.channel
            else f"<@{decider}> declined the exemption from *{escape(spec.title)}* for "
            f"*{escape(service)}*."
        )
    outbox.post(
        session,
        f"migration:{migration.id}:exemption-decided:{service}:{step}:{now.isoformat()}",
        owner,
        text,
        now,
    )


def snooze(runtime: Runtime, session: Session, migration: Migration, user: str) -> datetime:
    now = runtime.clock.now()
    row = nudge_row(session, migration.id, user)
    row.snoozed_until = now + timedelta(weeks=1)
    row.unanswered, row.last_answer_at = 0, now
    steps.record(session, migration.id, "snoozed", now, actor=user)
    return row.snoozed_until
