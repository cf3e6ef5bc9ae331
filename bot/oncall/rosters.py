"""Roster history: a config change to a rotation's members reorders only the shifts after it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from bot.config import OrgConfig
from bot.oncall import schedule
from bot.oncall.lookup import next_shifts_by_person, roster_records
from bot.oncall.models import RosterRecord


@dataclass(frozen=True)
class RosterChange:
    rotation_id: str
    from_index: int
    effective_at: datetime
    before: dict[str, tuple[datetime, datetime] | None]  # each person's next shift before


def sync_rosters(session: Session, org: OrgConfig, now: datetime) -> list[RosterChange]:
    """Record each rotation's config members when they differ from the last record.

    The first record covers every shift. A later change takes effect at the next handoff, so
    the current shift and every past one keep their people. Returns the changes made, with the
    next shifts as they were, so callers can tell whoever's next shift moved.
    """
    changes = []
    recorded = roster_records(session, [r.id for r in org.rotations])  # one query for all
    for rotation in org.rotations:
        records = recorded[rotation.id]
        members = list(rotation.members)
        if records and records[-1].members == members:
            continue
        if not records:
            session.add(
                RosterRecord(
                    rotation_id=rotation.id, from_index=0, members=members, recorded_at=now
                )
            )
            continue
        # The next shifts as recorded so far (the org as it was, before this change).
        as_recorded = rotation.model_copy(update={"members": records[-1].members})
        was = org.model_copy(
            update={"rotations": [as_recorded if r.id == rotation.id else r for r in org.rotations]}
        )
        before = next_shifts_by_person(session, was, rotation.id, now)
        cadence = schedule.Cadence.of(rotation, org.rotation_zone(rotation.id))
        current = cadence.index_at(now)
        from_index = 0 if current is None else current + 1
        # A change made twice before it takes effect replaces the pending one.
        for record in records:
            if record.from_index >= from_index:
                session.delete(record)
        session.add(
            RosterRecord(
                rotation_id=rotation.id, from_index=from_index, members=members, recorded_at=now
            )
        )
        session.flush()
        changes.append(RosterChange(rotation.id, from_index, cadence.handoff(from_index), before))
    session.flush()
    return changes
