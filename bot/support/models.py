"""Support tables: tickets and the history of everything that happened to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.db import UTCDateTime

NEW, IN_PROGRESS, WAITING, RESOLVED, REOPENED = (
    "new",
    "in_progress",
    "waiting",
    "resolved",
    "reopened",
)
OPEN_STATES = (NEW, IN_PROGRESS, WAITING, REOPENED)
STATE_LABELS = {
    NEW: "New",
    IN_PROGRESS: "In progress",
    WAITING: "Waiting on requester",
    RESOLVED: "Resolved",
    REOPENED: "Reopened",
}

# The book's six categories of support request (Platform Engineering, ch. 6, "Support Practices").
CATEGORIES = {
    "troubleshooting": "Production troubleshooting",
    "bug": "Platform bug",
    "how_to": "How-to / usage",
    "feature_request": "Feature request",
    "review": "Review request (pull request)",
    "office_hours": "Design question (office hours)",
}
SEVERITIES = ("critical", "high", "normal", "low")

# The first of the seeds' two critical conditions: a named type of business impact.
BUSINESS_IMPACTS = {
    "revenue": "Revenue or customer transactions are failing",
    "customer_outage": "A customer-facing product is down or unusable",
    "data_loss": "Data loss, corruption or a security exposure",
    "deadline": "A legal, regulatory or contractual deadline is at risk today",
}


class Ticket(SQLModel, table=True):
    __tablename__ = "support_tickets"
    __table_args__ = (
        # One ticket per Slack message, however often Slack (or a person) submits it.
        UniqueConstraint("source_channel", "source_ts", name="uq_support_tickets_source"),
        Index("ix_support_tickets_thread", "thread_channel", "thread_ts"),
    )

    id: int | None = Field(default=None, primary_key=True)
    queue_id: str = Field(max_length=64, index=True)
    team_id: str = Field(max_length=64)
    requester: str = Field(max_length=32, index=True)
    summary: str = Field(max_length=300)
    details: str = Field(default="", sa_column=Column(Text, nullable=False))
    category: str | None = Field(default=None, max_length=32)
    severity: str = Field(default="normal", max_length=16)
    application_id: str | None = Field(default=None, max_length=64)
    business_impact: str | None = Field(default=None, max_length=32)
    why_now: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    state: str = Field(default=NEW, max_length=16, index=True)
    tier: int = 1
    assignee: str | None = Field(default=None, max_length=32, index=True)
    intake: str = Field(max_length=16)  # message, command, shortcut, experts
    # The message the request came from (None for the /support form).
    source_channel: str | None = Field(default=None, max_length=32)
    source_ts: str | None = Field(default=None, max_length=32)
    # Where the conversation happens: the source message's thread, or the bot's post in the queue.
    thread_channel: str | None = Field(default=None, max_length=32)
    thread_ts: str | None = Field(default=None, max_length=32)
    opened_at: datetime = Field(sa_type=UTCDateTime, index=True)
    first_response_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_response_due: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolution_due: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_response_breached: bool = False
    resolution_breached: bool = False
    resolution: str | None = Field(default=None, max_length=16)  # fixed, docs, duplicate
    duplicate_of: int | None = None
    runbook: str | None = Field(default=None, max_length=200)
    page_id: int | None = None  # the page a critical request raised (paging's table)
    office_hours_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    rating: int | None = None
    rating_comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    updated_at: datetime = Field(sa_type=UTCDateTime)

    @property
    def title(self) -> str:
        return f"#{self.id} {self.summary}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


class TicketEvent(SQLModel, table=True):
    """One line of a ticket's history; `state` is the state after it when it changed one."""

    __tablename__ = "support_ticket_events"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="support_tickets.id", index=True)
    at: datetime = Field(sa_type=UTCDateTime)
    kind: str = Field(max_length=32)
    actor: str | None = Field(default=None, max_length=32)
    state: str | None = Field(default=None, max_length=16)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
