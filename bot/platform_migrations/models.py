"""Tables of platform migrations: the ownership catalog, migrations, their targets and step states."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.db import UTCDateTime

# Stages of a migration, in order.
DRAFT, PILOT, ACTIVE, LONG_TAIL, DONE = "draft", "pilot", "active", "long_tail", "done"
STAGES = (DRAFT, PILOT, ACTIVE, LONG_TAIL, DONE)
LIVE_STAGES = (PILOT, ACTIVE, LONG_TAIL)

# States of one step of one target service.
WAITING, RELEASED, IN_PROGRESS, BLOCKED, STEP_DONE, EXEMPT = (
    "waiting",
    "released",
    "in_progress",
    "blocked",
    "done",
    "exempt",
)
FINISHED = (STEP_DONE, EXEMPT)


class CatalogEntity(SQLModel, table=True):
    """One Backstage entity (Component, System, Group, User) as last imported."""

    __tablename__ = "catalog_entities"
    __table_args__ = (UniqueConstraint("kind", "name", name="uq_catalog_kind_name"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16, index=True)  # component | system | group | user
    name: str = Field(max_length=200, index=True)
    title: str | None = Field(default=None, max_length=300)
    owner: str | None = Field(default=None, max_length=200, index=True)  # a group or user name
    system: str | None = Field(default=None, max_length=200, index=True)
    lifecycle: str | None = Field(default=None, max_length=32)
    parent: str | None = Field(default=None, max_length=200)  # a group's parent group
    email: str | None = Field(default=None, max_length=255)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    annotations: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    member_of: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    source: str = Field(max_length=500)  # file:line it came from
    imported_at: datetime = Field(sa_type=UTCDateTime)


class Migration(SQLModel, table=True):
    __tablename__ = "platform_migrations"

    id: str = Field(primary_key=True, max_length=64)
    title: str = Field(max_length=200)
    why: str = Field(sa_column=Column(Text, nullable=False))
    deadline: date
    deadline_reason: str = Field(sa_column=Column(Text, nullable=False))
    mandated: bool = False
    sponsor: str | None = Field(default=None, max_length=255)
    channel: str | None = Field(default=None, max_length=32)
    on_ramp: str | None = Field(default=None, max_length=500)
    off_ramp: str | None = Field(default=None, max_length=500)
    stage: str = Field(default=DRAFT, max_length=16, index=True)
    pilot_teams: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    selectors: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    steps: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    piloted: bool = False  # it went through a pilot before becoming active
    created_by: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    stage_changed_at: datetime = Field(sa_type=UTCDateTime)
    announced_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class MigrationTarget(SQLModel, table=True):
    """A service the migration asks work of (re-resolved whenever the catalog changes)."""

    __tablename__ = "migration_targets"
    __table_args__ = (UniqueConstraint("migration_id", "service", name="uq_target_service"),)

    id: int | None = Field(default=None, primary_key=True)
    migration_id: str = Field(foreign_key="platform_migrations.id", max_length=64, index=True)
    service: str = Field(max_length=200, index=True)
    active: bool = True  # false once the selectors no longer pick it
    told_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # owner got the notice
    added_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class StepState(SQLModel, table=True):
    """Where one step of one target service stands."""

    __tablename__ = "migration_step_states"
    __table_args__ = (UniqueConstraint("migration_id", "service", "step", name="uq_step_state"),)

    id: int | None = Field(default=None, primary_key=True)
    migration_id: str = Field(foreign_key="platform_migrations.id", max_length=64, index=True)
    service: str = Field(max_length=200, index=True)
    step: str = Field(max_length=64)
    state: str = Field(default=WAITING, max_length=16, index=True)
    source: str | None = Field(default=None, max_length=32)  # owner | ci | catalog | exemption
    by: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    ticket_id: int | None = None
    exempt_until: date | None = None
    released_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class MigrationEvent(SQLModel, table=True):
    """What happened, for the burn-up chart, the daily summary and the audit trail."""

    __tablename__ = "migration_events"

    id: int | None = Field(default=None, primary_key=True)
    migration_id: str = Field(foreign_key="platform_migrations.id", max_length=64, index=True)
    service: str | None = Field(default=None, max_length=200)
    step: str | None = Field(default=None, max_length=64)
    kind: str = Field(max_length=32, index=True)
    actor: str | None = Field(default=None, max_length=64)
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    at: datetime = Field(sa_type=UTCDateTime, index=True)


class OwnerNudge(SQLModel, table=True):
    """When a person was last nudged about a migration, and how many nudges went unanswered."""

    __tablename__ = "migration_nudges"
    __table_args__ = (UniqueConstraint("migration_id", "person", name="uq_nudge_person"),)

    id: int | None = Field(default=None, primary_key=True)
    migration_id: str = Field(foreign_key="platform_migrations.id", max_length=64, index=True)
    person: str = Field(max_length=32, index=True)
    last_nudged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    unanswered: int = 0
    snoozed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_answer_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
