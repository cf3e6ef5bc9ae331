"""Pages (one per incident or alert fingerprint while open) and their timelines."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from bot.db import UTCDateTime

# How the responder classified a resolved page; the load report counts each separately.
BUSINESS_IMPACTING, FALSE_ALARM, DEPLOY_NOISE = "business_impacting", "false_alarm", "deploy_noise"
CLASSIFICATIONS = {
    BUSINESS_IMPACTING: "Business-impacting",
    FALSE_ALARM: "False alarm",
    DEPLOY_NOISE: "Noise during our own deploy",
}


class Page(SQLModel, table=True):
    __tablename__ = "pages"

    id: int | None = Field(default=None, primary_key=True)
    summary: str = Field(max_length=300)
    details: str = Field(default="", sa_type=Text)
    source: str = Field(max_length=32)  # manual, alertmanager, grafana, generic, support ...
    dedup_key: str | None = Field(default=None, max_length=255, index=True)
    # The dedup key while the page is open, NULL once resolved: the unique index makes "one open
    # page per fingerprint" hold even when two replicas receive the same alert at once.
    open_key: str | None = Field(default=None, max_length=255, unique=True)
    status: str = Field(default="triggered", max_length=16, index=True)
    version: int = 0  # bumped by every change; names the message edits it causes

    # The escalation policy as it was when the page fired, and how far along it the page is:
    # position = pass * len(steps) + step; -1 before the first step fires.
    policy_id: str = Field(max_length=200)
    policy: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    position: int = -1
    steps_total: int = 1

    team_id: str | None = Field(default=None, max_length=100, index=True)
    rotation_id: str | None = Field(default=None, max_length=100, index=True)
    # Who was on call for `rotation_id` when it opened, as the config names them (id or e-mail).
    primary_user: str | None = Field(default=None, max_length=255)
    labels: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    alert_name: str | None = Field(default=None, max_length=200)
    runbook: str | None = Field(default=None, max_length=200)  # a file in runbooks/
    runbook_url: str | None = Field(default=None, max_length=1000)
    link_url: str | None = Field(default=None, max_length=1000)  # e.g. the alert's generator

    requested_by: str | None = Field(default=None, max_length=64)
    business_impact: str | None = Field(default=None, sa_type=Text)
    why_page: str | None = Field(default=None, sa_type=Text)

    repeat_count: int = 1  # alerts received for this page (1 = just the first)
    opened_at: datetime = Field(sa_type=UTCDateTime, index=True)
    last_alert_at: datetime = Field(sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by: str | None = Field(default=None, max_length=64)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_by: str | None = Field(default=None, max_length=64)
    classification: str | None = Field(default=None, max_length=32)
    classified_by: str | None = Field(default=None, max_length=64)

    off_hours: bool = False
    fell_through: bool = False  # a step after the first notified someone
    notified: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Every Slack message showing this page ({"key": outbox key, "to": channel or user}).
    messages: list[dict[str, str]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )

    @property
    def is_open(self) -> bool:
        return self.status != "resolved"


PENDING = "pending"


class PageEvent(SQLModel, table=True):
    """One line of a page's timeline: what happened, who did it, when."""

    __tablename__ = "page_events"

    id: int | None = Field(default=None, primary_key=True)
    page_id: int = Field(foreign_key="pages.id", index=True)
    at: datetime = Field(sa_type=UTCDateTime)
    kind: str = Field(max_length=32)
    actor: str | None = Field(default=None, max_length=64)
    detail: str = Field(default="", max_length=500)


class WebhookDelivery(SQLModel, table=True):
    """One event for one outbound webhook (bot.paging.webhooks): a page triggered, acknowledged or
    resolved."""

    __tablename__ = "page_webhook_deliveries"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=255, unique=True)
    page_id: int = Field(foreign_key="pages.id", index=True)
    webhook_id: str = Field(max_length=100)
    action: str = Field(max_length=16)
    # The body without secrets; the routing key or token is read from the environment at send.
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(default=PENDING, max_length=16, index=True)
    attempts: int = 0
    not_before: datetime = Field(sa_type=UTCDateTime, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    response_status: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
