"""People: config may name a person by Slack id or e-mail; this resolves e-mails to Slack ids once."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlmodel import Field, Session, SQLModel, col, select

from bot.clock import Clock
from bot.db import Database, UTCDateTime

log = logging.getLogger(__name__)


class Person(SQLModel, table=True):
    """The Slack id an e-mail address resolved to, cached so lookups happen once."""

    __tablename__ = "people"

    email: str = Field(primary_key=True, max_length=255)
    user_id: str = Field(max_length=32, index=True)
    resolved_at: datetime = Field(sa_type=UTCDateTime)


class PersonZone(SQLModel, table=True):
    """A person's time zone from their Slack profile (users.info `tz`), refreshed weekly."""

    __tablename__ = "people_zones"

    user_id: str = Field(primary_key=True, max_length=32)
    tz: str | None = Field(default=None, max_length=64)
    fetched_at: datetime = Field(sa_type=UTCDateTime)


# People move; a zone read a week ago is still good enough for "inside working hours".
ZONE_TTL = timedelta(days=7)
# An address Slack has no user for is asked again after this long (someone may join), and one
# that failed for another reason (rate limit, network) after a minute: without it every page,
# `/oncall` and handoff naming that address would spend a users.lookupByEmail call (Tier 3).
NOT_FOUND_TTL = timedelta(hours=1)
FAILED_TTL = timedelta(minutes=1)


class Directory:
    def __init__(self, db: Database, client: WebClient, clock: Clock) -> None:
        self.db = db
        self.client = client
        self.clock = clock
        # In-process memory in front of the `people` table: an e-mail's Slack id does not change,
        # so a request path asks the database once per address per process, not once per use.
        self._known: dict[str, str] = {}
        self._unresolved: dict[str, datetime] = {}  # e-mail -> when to ask Slack again

    def user_id(self, ref: str, session: Session | None = None) -> str:
        """The Slack id for a config reference; an unresolvable e-mail is returned unchanged.

        Pass the caller's `session` when inside a unit of work that already writes: a second
        session would wait on the first's write lock (SQLite) to cache the answer.
        """
        answer = self._from_memory(ref)
        if answer is not None:
            return answer
        email = ref.lower()
        if session is not None:
            return self._resolve(session, email, ref)
        with self.db.session() as own:
            return self._resolve(own, email, ref)

    def user_ids(self, refs: Iterable[str], session: Session) -> dict[str, str]:
        """`user_id` for many references: what this process knows from memory, the other
        e-mail addresses already resolved in one query; only the ones never resolved before
        are looked up in Slack, one by one (and one Slack could not resolve not again before
        its retry time)."""
        found: dict[str, str] = {}
        emails: dict[str, str] = {}
        for ref in refs:
            answer = self._from_memory(ref)
            if answer is not None:
                found[ref] = answer
            else:
                emails[ref] = ref.lower()
        if emails:
            known = {
                person.email: person.user_id
                for person in session.exec(
                    select(Person).where(col(Person.email).in_(sorted(set(emails.values()))))
                )
            }
            self._known.update(known)
            for ref, email in emails.items():
                found[ref] = known.get(email) or self._resolve(session, email, ref)
        return found

    def known_ids(self, refs: Iterable[str]) -> dict[str, str] | None:
        """`user_ids` from this process's memory alone (an answer made on the event loop), or
        None when any reference would need the database or Slack."""
        found = {}
        for ref in refs:
            answer = self._from_memory(ref)
            if answer is None:
                return None
            found[ref] = answer
        return found

    def _from_memory(self, ref: str) -> str | None:
        """`user_id(ref)` when it needs neither the database nor Slack, else None."""
        if "@" not in ref:
            return ref
        email = ref.lower()
        known = self._known.get(email)
        if known is not None:
            return known
        retry_at = self._unresolved.get(email)
        if retry_at is not None and self.clock.now() < retry_at:
            return ref
        return None

    def _resolve(self, session: Session, email: str, ref: str) -> str:
        cached = session.get(Person, email)
        if cached is not None:
            self._known[email] = cached.user_id
            return cached.user_id
        now = self.clock.now()
        try:
            response = self.client.users_lookupByEmail(email=email)
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.warning("cannot resolve %s: %s", email, error)
            self._unresolved[email] = now + (
                NOT_FOUND_TTL if error == "users_not_found" else FAILED_TTL
            )
            return ref
        except OSError as exc:  # no answer at all (network, timeout)
            log.warning("cannot resolve %s: %s", email, exc)
            self._unresolved[email] = now + FAILED_TTL
            return ref
        user_id = response["user"]["id"]
        session.add(Person(email=email, user_id=user_id, resolved_at=now))
        session.flush()
        self._known[email] = user_id
        self._unresolved.pop(email, None)
        return user_id

    def same_person(self, ref: str, user_id: str) -> bool:
        """Whether a config reference (id or e-mail) names this Slack user."""
        return ref == user_id or self.user_id(ref) == user_id

    def zone(self, user_id: str, session: Session | None = None) -> ZoneInfo | None:
        """The person's own zone from their Slack profile, cached; None when Slack has none."""
        if session is not None:
            return self._zone(session, user_id)
        with self.db.session() as own:
            return self._zone(own, user_id)

    def _zone(self, session: Session, user_id: str) -> ZoneInfo | None:
        now = self.clock.now()
        cached = session.get(PersonZone, user_id)
        if cached is None or now - cached.fetched_at > ZONE_TTL:
            try:
                tz = self.client.users_info(user=user_id)["user"].get("tz")
            except SlackApiError as exc:
                log.warning("cannot read the zone of %s: %s", user_id, exc.response.get("error"))
                tz = cached.tz if cached is not None else None
            if cached is None:
                cached = PersonZone(user_id=user_id, tz=tz, fetched_at=now)
                session.add(cached)
            else:
                cached.tz, cached.fetched_at = tz, now
            session.flush()
        if not cached.tz:
            return None
        try:
            return ZoneInfo(cached.tz)
        except (ZoneInfoNotFoundError, ValueError):
            return None
