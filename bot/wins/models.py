"""Wins and Challenges tables: cycles, entries, submissions, delegations, selections, digests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.db import UTCDateTime

# Cycle states: entries come in, then each level above picks highlights, then it is published.
COLLECTING, SELECTING, PUBLISHED = "collecting", "selecting", "published"
WIN, CHALLENGE = "win", "challenge"
INTERNAL, SHAREABLE = "internal", "shareable"
# An engineer's entry waits in the team's pool until the line manager takes it in.
PROPOSED, ACCEPTED, DECLINED = "proposed", "accepted", "declined"
# A level's selection: waiting for its manager, chosen, or the window passed without a choice.
PENDING, SELECTED, MISSED = "pending", "selected", "missed"


class WinsCycle(SQLModel, table=True):
    __tablename__ = "wins_cycles"

    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(unique=True)  # 0 is the cycle ending at `first_deadline`
    starts_at: datetime = Field(sa_type=UTCDateTime)
    deadline: datetime = Field(sa_type=UTCDateTime, index=True)
    state: str = Field(default=COLLECTING, max_length=16, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WinsEntry(SQLModel, table=True):
    """One STAR bullet in a team's pool for a cycle."""

    __tablename__ = "wins_entries"

    id: int | None = Field(default=None, primary_key=True)
    cycle_id: int = Field(index=True)
    team_id: str = Field(max_length=100, index=True)
    author: str = Field(max_length=32, index=True)
    kind: str = Field(max_length=16)  # win | challenge
    summary: str = Field(max_length=300)
    situation: str = Field(sa_column=Column(Text, nullable=False))
    action: str = Field(sa_column=Column(Text, nullable=False))
    result: str = Field(sa_column=Column(Text, nullable=False))
    visibility: str = Field(default=SHAREABLE, max_length=16)  # internal | shareable
    names_team: str | None = Field(default=None, max_length=100)
    raised_with_leadership: bool = False
    status: str = Field(default=ACCEPTED, max_length=16, index=True)
    # The gentle checks the writer chose to keep anyway (shown to the levels above).
    kept_warnings: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WinsSubmission(SQLModel, table=True):
    """A line manager's team has reported for the cycle (with entries, or "no update")."""

    __tablename__ = "wins_submissions"
    __table_args__ = (UniqueConstraint("cycle_id", "team_id", name="uq_wins_submissions"),)

    id: int | None = Field(default=None, primary_key=True)
    cycle_id: int = Field(index=True)
    team_id: str = Field(max_length=100)
    submitted_by: str = Field(max_length=32)
    submitted_at: datetime = Field(sa_type=UTCDateTime)
    no_update: bool = False


class WinsDelegation(SQLModel, table=True):
    """A manager away for a cycle hands the team's writing and choosing to someone else."""

    __tablename__ = "wins_delegations"
    __table_args__ = (UniqueConstraint("cycle_id", "team_id", name="uq_wins_delegations"),)

    id: int | None = Field(default=None, primary_key=True)
    cycle_id: int = Field(index=True)
    team_id: str = Field(max_length=100)
    manager: str = Field(max_length=32)
    delegate: str = Field(max_length=32)
    created_at: datetime = Field(sa_type=UTCDateTime)


class WinsSelection(SQLModel, table=True):
    """A parent team's pick of highlights from the level below, for one cycle."""

    __tablename__ = "wins_selections"
    __table_args__ = (UniqueConstraint("cycle_id", "team_id", name="uq_wins_selections"),)

    id: int | None = Field(default=None, primary_key=True)
    cycle_id: int = Field(index=True)
    team_id: str = Field(max_length=100)
    state: str = Field(default=PENDING, max_length=16, index=True)
    opened_at: datetime = Field(sa_type=UTCDateTime)
    due_at: datetime = Field(sa_type=UTCDateTime)
    decided_by: str | None = Field(default=None, max_length=32)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WinsHighlight(SQLModel, table=True):
    """An item of a parent team's digest: an entry from below, possibly rewritten for a wider
    audience. `entry_id` keeps the original, whose visibility rules travel with it."""

    __tablename__ = "wins_highlights"

    id: int | None = Field(default=None, primary_key=True)
    cycle_id: int = Field(index=True)
    team_id: str = Field(max_length=100, index=True)  # the level whose digest this is in
    entry_id: int = Field(index=True)
    from_team: str = Field(max_length=100)  # the team that wrote the entry
    kind: str = Field(max_length=16)
    summary: str = Field(max_length=300)
    situation: str = Field(sa_column=Column(Text, nullable=False))
    action: str = Field(sa_column=Column(Text, nullable=False))
    result: str = Field(sa_column=Column(Text, nullable=False))
    curated: bool = True  # False when the level's selection window passed without a choice
    position: int = 0


class WinsDigest(SQLModel, table=True):
    """A digest as posted: which messages hold it, so later edits update them in place."""

    __tablename__ = "wins_digests"
    __table_args__ = (UniqueConstraint("cycle_id", "team_id", "audience", name="uq_wins_digests"),)

    id: int | None = Field(default=None, primary_key=True)
    cycle_id: int = Field(index=True)
    team_id: str = Field(max_length=100, index=True)
    audience: str = Field(default="org", max_length=16)  # org | stakeholders
    posted_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    # Outbox keys of the posted parts, per channel: {"C0...": ["key1", "key2"]}.
    messages: dict[str, list[str]] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    wins: int = 0
    challenges: int = 0
    curated: bool = True
