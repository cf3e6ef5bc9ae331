"""Imports every table so SQLModel.metadata is complete (Alembic and the schema test use it)."""

from bot.directory import Person, PersonZone
from bot.inbox import InboxEvent
from bot.oncall.models import HandoffNote, Override, RosterRecord, RotationRevision, SwapRequest
from bot.outbox import OutboxMessage, SlackHealth
from bot.paging.models import Page, PageEvent, WebhookDelivery
from bot.platform_migrations.models import (
    CatalogEntity,
    Migration,
    MigrationEvent,
    MigrationTarget,
    OwnerNudge,
    StepState,
)
from bot.scheduler import JobRun, Timer
from bot.support.models import Ticket, TicketEvent
from bot.wins.models import (
    WinsCycle,
    WinsDelegation,
    WinsDigest,
    WinsEntry,
    WinsHighlight,
    WinsSelection,
    WinsSubmission,
)

__all__ = [
    "CatalogEntity",
    "HandoffNote",
    "InboxEvent",
    "JobRun",
    "Migration",
    "MigrationEvent",
    "MigrationTarget",
    "OutboxMessage",
    "Override",
    "OwnerNudge",
    "Page",
    "PageEvent",
    "Person",
    "PersonZone",
    "RosterRecord",
    "RotationRevision",
    "SlackHealth",
    "StepState",
    "SwapRequest",
    "Ticket",
    "TicketEvent",
    "Timer",
    "WebhookDelivery",
    "WinsCycle",
    "WinsDelegation",
    "WinsDigest",
    "WinsEntry",
    "WinsHighlight",
    "WinsSelection",
    "WinsSubmission",
]
