"""App Home for migrations: the migrations a person's services are in, and what is released now."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel import Session

from bot.platform_migrations import flows
from bot.platform_migrations.blocks import WorkItem
from bot.platform_migrations.models import Migration
from bot.platform_migrations.steps import in_pilot_scope
from bot.platform_migrations.targets import targets

if TYPE_CHECKING:
    from bot.runtime import Runtime


def for_person(
    runtime: Runtime, session: Session, user_id: str
) -> tuple[list[WorkItem], list[tuple[Migration, list[str]]]]:
    """(released work of this person's services, [(migration, their services) with none])."""
    items: list[WorkItem] = []
    others: list[tuple[Migration, list[str]]] = []
    for migration in flows.live_migrations(session):
        services = [
            t.service
            for t in targets(session, migration.id)
            if in_pilot_scope(session, runtime.org, migration, t.service)
        ]
        mine = flows.owners_by_person(runtime, session, migration, services).get(user_id, [])
        if not mine:
            continue
        found = [i for s in mine for i in flows.work_items(session, migration, s)]
        if found:
            items += found
        else:
            others.append((migration, mine))
    return items, others
