"""Steps of a migration per target service: release along the dependency tree, and progress.

The book's Linux-upgrade team mapped the tree of dependencies, let the system detect when a
set of prerequisites was complete, and only then released the next step with its own
instructions. Done may come from the owner, from CI, or from a catalog fact the platform sees.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlmodel import Session, select

from bot.config import OrgConfig
from bot.errors import Conflict, InvalidInput, NotFound
from bot.platform_migrations import catalog
from bot.platform_migrations.loading import StepSpec, step_of, steps_of
from bot.platform_migrations.models import (
    ACTIVE,
    BLOCKED,
    DONE,
    EXEMPT,
    FINISHED,
    IN_PROGRESS,
    LIVE_STAGES,
    LONG_TAIL,
    PILOT,
    RELEASED,
    STEP_DONE,
    WAITING,
    Migration,
    MigrationEvent,
    MigrationTarget,
    StepState,
)
from bot.platform_migrations.targets import targets

# The book's long tail: the last 20 % of targets.
LONG_TAIL_SHARE = 0.8
REPORTABLE = {"done": STEP_DONE, "in_progress": IN_PROGRESS, "blocked": BLOCKED}


def states(session: Session, migration_id: str, service: str | None = None) -> list[StepState]:
    query = select(StepState).where(StepState.migration_id == migration_id)
    if service is not None:
        query = query.where(StepState.service == service)
    return list(session.exec(query.order_by(StepState.service, StepState.id)).all())


def state_of(session: Session, migration_id: str, service: str, step: str) -> StepState:
    row = session.exec(
        select(StepState).where(
            StepState.migration_id == migration_id,
            StepState.service == service,
            StepState.step == step,
        )
    ).first()
    if row is None:
        raise NotFound(f"'{service}' has no step '{step}' in migration '{migration_id}'.")
    return row


def record(
    session: Session,
    migration_id: str,
    kind: str,
    now: datetime,
    *,
    service: str | None = None,
    step: str | None = None,
    actor: str | None = None,
    detail: str | None = None,
) -> None:
    session.add(
        MigrationEvent(
            migration_id=migration_id,
            service=service,
            step=step,
            kind=kind,
            actor=actor,
            detail=detail,
            at=now,
        )
    )


def prerequisites(step: StepSpec, service: str) -> list[tuple[str, str]]:
    return [
        (service, ref) if isinstance(ref, str) else (ref.service, ref.step) for ref in step.after
    ]


def waiting_on(session: Session, migration: Migration, row: StepState) -> list[str]:
    """The prerequisites of a step that are not finished yet, as "service/step"."""
    spec = step_of(migration, row.step)
    found = {(s.service, s.step): s.state for s in states(session, migration.id)}
    return [
        f"{svc}/{stp}"
        for svc, stp in prerequisites(spec, row.service)
        if found.get((svc, stp)) not in FINISHED
    ]


def in_pilot_scope(session: Session, org: OrgConfig, migration: Migration, service: str) -> bool:
    if migration.stage != PILOT:
        return migration.stage in LIVE_STAGES
    return catalog.team_of_service(session, org, service) in set(migration.pilot_teams)


def release(
    session: Session, org: OrgConfig, migration: Migration, now: datetime
) -> list[StepState]:
    """Release every waiting step whose prerequisites are finished; repeats until nothing more
    moves, so a chain across services opens in one pass. Returns the newly released steps."""
    if migration.stage not in LIVE_STAGES:
        return []
    specs = {s.id: s for s in steps_of(migration)}
    live = {t.service for t in targets(session, migration.id)}
    scope = {s for s in live if in_pilot_scope(session, org, migration, s)}
    rows = [r for r in states(session, migration.id) if r.service in live]
    by_key = {(r.service, r.step): r for r in rows}
    released: list[StepState] = []
    moved = True
    while moved:
        moved = False
        for row in rows:
            if row.state != WAITING or row.service not in scope or row.step not in specs:
                continue
            needs = prerequisites(specs[row.step], row.service)
            if all(
                (by_key.get(key) is not None and by_key[key].state in FINISHED) for key in needs
            ):
                row.state, row.released_at, row.updated_at = RELEASED, now, now
                record(session, migration.id, "released", now, service=row.service, step=row.step)
                released.append(row)
                moved = True
    session.flush()
    return released


@dataclass
class Progress:
    row: StepState
    previous: str
    released: list[StepState] = field(default_factory=list)
    stage_change: str | None = None


def report(
    session: Session,
    org: OrgConfig,
    migration: Migration,
    service: str,
    step: str,
    state: str,
    now: datetime,
    *,
    source: str,
    by: str | None = None,
    reason: str | None = None,
) -> Progress:
    """A step's new state from an owner (buttons), CI or the catalog; releases what it unblocks."""
    if state not in REPORTABLE:
        raise InvalidInput(f"'{state}' is not a state (one of: {', '.join(REPORTABLE)}).")
    step_of(migration, step)
    target = _target(session, migration.id, service)
    row = state_of(session, migration.id, target.service, step)
    new = REPORTABLE[state]
    previous = row.state
    if row.state == WAITING and source == "owner":
        raise Conflict(
            f"'{step}' is not released for {service} yet: it waits on "
            f"{', '.join(waiting_on(session, migration, row)) or 'the pilot'}."
        )
    if row.state in FINISHED and new != STEP_DONE:
        raise Conflict(f"'{step}' of {service} is already {row.state.replace('_', ' ')}.")
    if row.state == new and new != BLOCKED:
        return Progress(row, previous)
    row.state, row.source, row.by, row.updated_at = new, source, by, now
    if new == BLOCKED:
        row.reason = (reason or "").strip() or None
    record(session, migration.id, new, now, service=service, step=step, actor=by, detail=reason)
    progress = Progress(row, previous)
    if new in FINISHED:
        progress.released = release(session, org, migration, now)
        progress.stage_change = finish_target_and_stage(session, migration, service, now)
    session.flush()
    return progress


def _target(session: Session, migration_id: str, service: str) -> MigrationTarget:
    service = (service or "").strip().lower()
    for target in targets(session, migration_id):
        if target.service == service:
            return target
    raise NotFound(f"'{service}' is not a target of migration '{migration_id}'.")


def exempt(
    session: Session,
    org: OrgConfig,
    migration: Migration,
    service: str,
    step: str,
    until: date,
    now: datetime,
    by: str,
    reason: str | None,
) -> Progress:
    """An approved exemption counts as done until it expires."""
    row = state_of(session, migration.id, service, step)
    previous = row.state
    if row.state == STEP_DONE:
        raise Conflict(f"'{step}' of {service} is already done.")
    row.state, row.source, row.by, row.exempt_until, row.updated_at = (
        EXEMPT,
        "exemption",
        by,
        until,
        now,
    )
    row.reason = reason
    record(
        session,
        migration.id,
        "exempt",
        now,
        service=service,
        step=step,
        actor=by,
        detail=f"until {until.isoformat()}: {reason or ''}",
    )
    progress = Progress(row, previous)
    progress.released = release(session, org, migration, now)
    progress.stage_change = finish_target_and_stage(session, migration, service, now)
    return progress


def expire_exemptions(
    session: Session, migration: Migration, today: date, now: datetime
) -> list[StepState]:
    """Exemptions past their date put the step back in the owner's hands."""
    expired = []
    for row in states(session, migration.id):
        if row.state == EXEMPT and row.exempt_until is not None and row.exempt_until < today:
            row.state, row.source, row.updated_at = RELEASED, None, now
            record(
                session, migration.id, "exemption_expired", now, service=row.service, step=row.step
            )
            target = _target(session, migration.id, row.service)
            target.finished_at = None
            expired.append(row)
    session.flush()
    return expired


def target_status(rows: list[StepState]) -> str:
    """One word for a service: done, exempt, blocked, in_progress or not_started."""
    found = Counter(r.state for r in rows)
    if rows and all(r.state in FINISHED for r in rows):
        return "exempt" if found[EXEMPT] else "done"
    if found[BLOCKED]:
        return "blocked"
    if found[IN_PROGRESS] or found[STEP_DONE] or found[EXEMPT]:
        return "in_progress"
    return "not_started"


def finish_target_and_stage(
    session: Session, migration: Migration, service: str, now: datetime
) -> str | None:
    target = _target(session, migration.id, service)
    rows = states(session, migration.id, service)
    if target.finished_at is None and target_status(rows) in ("done", "exempt"):
        target.finished_at = now
        record(session, migration.id, "target_finished", now, service=service)
    session.flush()
    return advance_stage(session, migration, now)


def advance_stage(session: Session, migration: Migration, now: datetime) -> str | None:
    """Active -> long tail at 80 % of targets finished; long tail (or active) -> done at 100 %."""
    if migration.stage not in (ACTIVE, LONG_TAIL):
        return None
    live = targets(session, migration.id)
    if not live:
        return None
    finished = sum(1 for t in live if t.finished_at is not None)
    new = None
    if finished == len(live):
        new = DONE
    elif migration.stage == ACTIVE and finished / len(live) >= LONG_TAIL_SHARE:
        new = LONG_TAIL
    if new is not None:
        migration.stage, migration.stage_changed_at = new, now
        record(session, migration.id, "stage", now, detail=new)
        session.flush()
    return new


def apply_catalog_facts(
    session: Session, org: OrgConfig, migration: Migration, now: datetime
) -> list[Progress]:
    """Steps whose `done_when` names a tag or annotation the catalog now shows are done."""
    done = []
    specs = {s.id: s for s in steps_of(migration)}
    for row in states(session, migration.id):
        spec = specs.get(row.step)
        if spec is None or spec.done_when is None or row.state in FINISHED:
            continue
        service = catalog.entity(session, "component", row.service)
        if service is None or not _shows(service, spec):
            continue
        try:
            done.append(
                report(
                    session, org, migration, row.service, row.step, "done", now, source="catalog"
                )
            )
        except NotFound:  # no longer a target
            continue
    return done


def _shows(service: catalog.CatalogEntity, spec: StepSpec) -> bool:
    rule = spec.done_when
    assert rule is not None
    if rule.tag and rule.tag.lower() in service.tags:
        return True
    if rule.annotation:
        key, _, value = rule.annotation.partition("=")
        if key in service.annotations and (not value or service.annotations[key] == value):
            return True
    return False


def open_work(session: Session, migration_id: str, service: str) -> list[StepState]:
    """Released and unfinished steps: what an owner can act on now."""
    return [
        r
        for r in states(session, migration_id, service)
        if r.state in (RELEASED, IN_PROGRESS, BLOCKED)
    ]
