"""Imports every table so SQLModel.metadata is complete (Alembic and the schema test use it)."""

from bot.directory import Person
from bot.inbox import InboxEvent
from bot.oncall.models import HandoffNote, Override, RosterRecord, SwapRequest
from bot.outbox import OutboxMessage
from bot.paging.models import Page, PageEvent, WebhookDelivery
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
    "HandoffNote",
    "InboxEvent",
    "JobRun",
    "OutboxMessage",
    "Override",
    "Page",
    "PageEvent",
    "Person",
    "RosterRecord",
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
