"""Imports every table so SQLModel.metadata is complete (Alembic and the schema test use it)."""

from bot.directory import Person
from bot.inbox import InboxEvent
from bot.outbox import OutboxMessage
from bot.scheduler import JobRun, Timer

__all__ = ["InboxEvent", "JobRun", "OutboxMessage", "Person", "Timer"]
