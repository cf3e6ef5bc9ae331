"""Random support tickets with their resolve/reopen history, bulk-inserted with SQL (no ORM loop):
for comparing the report's database path with its reference, and for the report benchmark."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert

from bot.db import Database
from bot.support.models import CATEGORIES, OPEN_STATES, REOPENED, RESOLVED, Ticket, TicketEvent

CATEGORY_CHOICES = [*CATEGORIES, None, ""]
SEVERITY_CHOICES = ["critical", "high", "normal", "normal", "low"]
CHUNK = 5000


def insert_tickets(
    db: Database,
    count: int,
    start: datetime,
    end: datetime,
    *,
    queue_id: str = "infra-help",
    seed: int = 7,
    first_id: int = 1,
) -> None:
    """`count` tickets opened between a week before `start` and a day after `end`, some resolved
    (in or after the window), some reopened, some rated; their history as events."""
    rng = random.Random(seed)
    span = (end - start) + timedelta(days=8)
    tickets: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for number in range(first_id, first_id + count):
        opened = start - timedelta(days=7) + span * rng.random()
        # Microseconds matter: the medians must agree to the microsecond.
        opened = opened.replace(microsecond=rng.randrange(1_000_000))
        responded = (
            opened + timedelta(microseconds=rng.randrange(1, 86_400_000_000))
            if rng.random() < 0.8
            else None
        )
        changes: list[tuple[datetime, str]] = []
        at = opened
        for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):
            # A resolve and a reopen at the same instant happen: the later event decides.
            at += timedelta(microseconds=rng.choice([0, rng.randrange(1, 3 * 86_400_000_000)]))
            changes.append(
                (at, RESOLVED if not changes or changes[-1][1] == REOPENED else REOPENED)
            )
        state = changes[-1][1] if changes else rng.choice(OPEN_STATES)
        if rng.random() < 0.05:  # stored state and history disagree: the history decides
            state = rng.choice([RESOLVED, *OPEN_STATES])
        resolved = max((a for a, s in changes if s == RESOLVED), default=None)
        category = rng.choice(CATEGORY_CHOICES)
        tickets.append(
            {
                "id": number,
                "queue_id": queue_id if rng.random() < 0.95 else "other-queue",
                "team_id": "infra",
                "requester": f"U0REQ{number % 97:05d}",
                "summary": f"Request {number}",
                "details": "",
                "category": category,
                "severity": rng.choice(SEVERITY_CHOICES),
                "state": state,
                "tier": 1,
                "intake": "message",
                "opened_at": opened,
                "first_response_at": responded,
                "resolved_at": resolved,
                "first_response_breached": rng.random() < 0.1,
                "resolution_breached": rng.random() < 0.1,
                "resolution": rng.choice(["fixed", "docs", "duplicate"]) if resolved else None,
                "rating": rng.choice([None, None, 1, 2, 3, 4, 5]),
                "updated_at": at,
            }
        )
        events.append(
            {"ticket_id": number, "at": opened, "kind": "opened", "state": "new", "detail": ""}
        )
        for change_at, change in changes:
            events.append(
                {
                    "ticket_id": number,
                    "at": change_at,
                    "kind": change,
                    "state": change,
                    "detail": "",
                }
            )
            if rng.random() < 0.2:  # a comment at the same instant changes nothing
                events.append(
                    {
                        "ticket_id": number,
                        "at": change_at,
                        "kind": "note",
                        "state": None,
                        "detail": "",
                    }
                )
    with db.engine.begin() as connection:
        for table, rows in ((Ticket.__table__, tickets), (TicketEvent.__table__, events)):
            for offset in range(0, len(rows), CHUNK):
                connection.execute(insert(table), rows[offset : offset + CHUNK])  # executemany
