"""Which services a migration asks work of: selectors against the catalog, kept in step with it.

Precise targeting is the book's answer to "If you're using Product X version Y or earlier...":
each owner is told exactly which of their services are affected.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlmodel import Session, select

from bot.config import OrgConfig
from bot.platform_migrations import catalog
from bot.platform_migrations.loading import steps_of
from bot.platform_migrations.models import (
    LIVE_STAGES,
    Migration,
    MigrationEvent,
    MigrationTarget,
    StepState,
)


@dataclass
class TargetChange:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def select_services(session: Session, org: OrgConfig, migration: Migration) -> list[str]:
    """The union of the selectors (tags, systems, owner teams, named services) minus exclude."""
    chosen = migration.selectors or {}
    tags = set(chosen.get("tags") or [])
    systems = set(chosen.get("systems") or [])
    owners = set(chosen.get("owners") or [])
    named = set(chosen.get("services") or [])
    exclude = set(chosen.get("exclude") or [])
    picked: list[str] = []
    for service in catalog.services(session):
        if service.name in exclude:
            continue
        hit = (
            service.name in named
            or bool(tags & set(service.tags))
            or (service.system is not None and service.system in systems)
            or (service.owner is not None and service.owner in owners)
            or (bool(owners) and catalog.team_of_service(session, org, service.name) in owners)
        )
        if hit:
            picked.append(service.name)
    return picked


def targets(
    session: Session, migration_id: str, *, active_only: bool = True
) -> list[MigrationTarget]:
    query = select(MigrationTarget).where(MigrationTarget.migration_id == migration_id)
    if active_only:
        query = query.where(MigrationTarget.active == True)  # noqa: E712
    return list(session.exec(query.order_by(MigrationTarget.service)).all())


def sync_targets(
    session: Session, org: OrgConfig, migration: Migration, now: datetime
) -> TargetChange:
    """Bring the stored targets (and their step rows) in line with the catalog as it is now."""
    change = TargetChange()
    wanted = set(select_services(session, org, migration))
    stored = {t.service: t for t in targets(session, migration.id, active_only=False)}
    for service in sorted(wanted):
        target = stored.get(service)
        if target is None:
            session.add(MigrationTarget(migration_id=migration.id, service=service, added_at=now))
            change.added.append(service)
        elif not target.active:
            target.active = True
            change.added.append(service)
    for service, target in stored.items():
        if service not in wanted and target.active:
            target.active = False
            change.removed.append(service)
    for kind, names in (("target_added", change.added), ("target_removed", change.removed)):
        for name in names:
            session.add(MigrationEvent(migration_id=migration.id, service=name, kind=kind, at=now))
    session.flush()
    _ensure_step_rows(session, migration, sorted(wanted), now)
    return change


def _ensure_step_rows(
    session: Session, migration: Migration, services: list[str], now: datetime
) -> None:
    existing = {
        (s.service, s.step)
        for s in session.exec(select(StepState).where(StepState.migration_id == migration.id)).all()
    }
    for service in services:
        for step in steps_of(migration):
            if (service, step.id) not in existing:
                session.add(
                    StepState(
                        migration_id=migration.id, service=service, step=step.id, updated_at=now
                    )
                )
    session.flush()


def quarter(day: date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def overlaps(session: Session, org: OrgConfig, migration: Migration) -> list[str]:
    """Teams that would carry more than `max_concurrent_per_team` live migrations due in the
    same quarter as this one, each with the migrations that overlap (the book: scope, limit and
    prioritise planned changes)."""
    limit = org.platform_migrations.max_concurrent_per_team
    due = quarter(migration.deadline)
    load: dict[str, list[str]] = defaultdict(list)
    others = session.exec(select(Migration).where(Migration.id != migration.id)).all()
    candidates = [m for m in others if m.stage in LIVE_STAGES and quarter(m.deadline) == due]
    for other in [migration, *candidates]:
        services = (
            select_services(session, org, other)
            if other is migration
            else [t.service for t in targets(session, other.id)]
        )
        teams = {catalog.team_of_service(session, org, s) for s in services} - {None}
        for team in teams:
            load[team].append(other.id)  # type: ignore[index]
    warnings = []
    for team, ids in sorted(load.items()):
        if len(ids) > limit:
            warnings.append(
                f"team {team} would carry {len(ids)} migrations due in {due} "
                f"(more than {limit}): {', '.join(ids)}"
            )
    return warnings
