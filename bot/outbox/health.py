"""Slack outages: noticed by the senders, remembered in the database, announced once when over.

Every sender (replica or worker) records its transient failures (5xx, network errors) in one
shared row. The first successful call after a failure clears the row with a compare-and-set,
so exactly one sender wins; if the failures spanned at least `announce_after`, that sender
queues one announcement to the platform team (idempotency key per outage).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from bot.clock import Clock, as_utc, local_text
from bot.db import Database
from bot.mrkdwn import escape
from bot.outbox.queue import NORMAL, SlackHealth, post

log = logging.getLogger(__name__)

# Who hears about an outage (channel or user ids) and in which zone they read times.
Audience = Callable[[Session], tuple[list[str], ZoneInfo]]


class SlackHealthTracker:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        audience: Audience | None = None,
        announce_after: timedelta = timedelta(minutes=1),
    ) -> None:
        self.db = db
        self.clock = clock
        self.audience = audience
        self.announce_after = announce_after
        # This process saw a failure and no success since: send one probe at a time.
        self.failing = False
        # An outage may be open in the database (another process's, or ours before a restart).
        self._maybe_open = True

    def failed(self, error: str) -> None:
        now = self.clock.now()
        self.failing = True
        self._maybe_open = True
        for _ in range(2):  # two senders may insert the row at once; the loser updates it
            try:
                with self.db.session() as session:
                    row = session.get(SlackHealth, "slack")
                    if row is None:
                        row = SlackHealth(id="slack")
                        session.add(row)
                    if row.failing_since is None:
                        row.failing_since = now
                        row.failures = 0
                        log.warning("Slack is failing: %s", error)
                    row.failures += 1
                    row.last_failure_at = now
                    row.last_error = error[:500]
                return
            except IntegrityError:
                continue

    def succeeded(self) -> None:
        self.failing = False
        if not self._maybe_open:
            return
        self._maybe_open = False
        with self.db.session() as session:
            row = session.get(SlackHealth, "slack")
            if row is None or row.failing_since is None:
                return
            since = as_utc(row.failing_since)
            cleared = session.exec(  # type: ignore[call-overload]
                update(SlackHealth)
                .where(col(SlackHealth.id) == "slack")
                .where(col(SlackHealth.failing_since) == row.failing_since)
                .values(failing_since=None)
            )
            if cleared.rowcount != 1:
                return  # another sender cleared it and announces it
            now = self.clock.now()
            log.warning("Slack answers again after failing since %s", since.isoformat())
            if now - since >= self.announce_after:
                self._announce(session, since, now, row.failures, row.last_error or "")

    def _announce(
        self, session: Session, since: datetime, until: datetime, failures: int, error: str
    ) -> None:
        if self.audience is None:
            return
        recipients, zone = self.audience(session)
        if not recipients:
            log.warning("Slack outage over; nobody to tell (no platform team channel, no admins)")
            return
        minutes = max(1, round((until - since).total_seconds() / 60))
        text = (
            f":white_check_mark: *Slack is reachable again.* opsbot could not deliver to Slack "
            f"from {local_text(since, zone)} to {local_text(until, zone)} "
            f"(about {minutes} min, {failures} failed calls; last error: `{escape(error)}`).\n"
            "Everything queued meanwhile is being delivered now, pages first; notices whose "
            "moment passed during the outage (a reminder for a past time, the DMs of a page "
            "already resolved) were dropped instead of sent late."
        )
        for recipient in recipients:
            post(
                session,
                f"slack-outage:{since.isoformat()}:{recipient}",
                recipient,
                text,
                until,
                priority=NORMAL,
            )
