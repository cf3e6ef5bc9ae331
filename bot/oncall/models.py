"""On-call tables: roster history, overrides, swap requests and handoff notes (all times UTC)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.db import UTCDateTime


class RosterRecord(SQLModel, table=True):
    """The members a rotation had in the config from a given shift on, so that a config change
    reorders only the future: past shifts keep the people they had."""

    __tablename__ = "oncall_rosters"

    id: int | None = Field(default=None, primary_key=True)
    rotation_id: str = Field(max_length=100, index=True)
    from_index: int
    members: list[str] = Field(sa_column=Column(JSON, nullable=False))
    recorded_at: datetime = Field(sa_type=UTCDateTime)


class Override(SQLModel, table=True):
    """Someone else holds the rotation for [start, end): a cover, or one half of a swap."""

    __tablename__ = "oncall_overrides"

    id: int | None = Field(default=None, primary_key=True)
    rotation_id: str = Field(max_length=100, index=True)
    start: datetime = Field(sa_type=UTCDateTime, index=True)
    end: datetime = Field(sa_type=UTCDateTime, index=True)
    person: str = Field(max_length=255)  # who is on call instead
    replaces: str | None = Field(default=None, max_length=255)  # who was scheduled, for notices
    kind: str = Field(default="cover", max_length=16)  # cover | swap
    swap_id: int | None = Field(default=None, index=True)
    reason: str | None = Field(default=None, max_length=500)
    created_by: str = Field(max_length=32)
    created_at: datetime = Field(sa_type=UTCDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancelled_by: str | None = Field(default=None, max_length=32)


class SwapRequest(SQLModel, table=True):
    """A asks B to exchange one of A's shifts for one of B's; B accepts or declines."""

    __tablename__ = "oncall_swap_requests"

    id: int | None = Field(default=None, primary_key=True)
    rotation_id: str = Field(max_length=100, index=True)
    requester: str = Field(max_length=255)
    requestee: str = Field(max_length=255)
    requester_start: datetime = Field(sa_type=UTCDateTime)
    requester_end: datetime = Field(sa_type=UTCDateTime)
    requestee_start: datetime = Field(sa_type=UTCDateTime)
    requestee_end: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default="pending", max_length=16, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class HandoffNote(SQLModel, table=True):
    """What the outgoing person wants the next one to know, for one handoff."""

    __tablename__ = "oncall_handoff_notes"
    __table_args__ = (
        UniqueConstraint("rotation_id", "handoff_at", name="uq_oncall_notes_rotation_handoff"),
    )

    id: int | None = Field(default=None, primary_key=True)
    rotation_id: str = Field(max_length=100)
    handoff_at: datetime = Field(sa_type=UTCDateTime)
    author: str = Field(max_length=32)
    text: str = Field(max_length=3000)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class RotationRevision(SQLModel, table=True):
    """A token that changes with everything a rotation's timeline is computed from (its overrides
    and its roster records), so every process can tell whether its cached timeline is current."""

    __tablename__ = "oncall_revisions"

    rotation_id: str = Field(max_length=100, primary_key=True)
    revision: str = Field(max_length=32)
