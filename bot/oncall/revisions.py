"""Revision tokens: how every process knows whether its cached rotation timelines are current.

A rotation's timeline is computed from the config and from two tables, its overrides and its
roster records. Any flush that adds, changes or deletes a row of either gives the rotation a new
random token in `oncall_revisions`, in the same transaction: a rollback takes the token back
with the change, a commit publishes both at once, and a replica reading the token (one small
query per transaction, for every rotation at once) sees that its cache is stale. The token is
random rather than a counter so that an entry cached inside a transaction that then rolled back
can never be mistaken for a later, different change.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session as OrmSession

from bot.oncall.models import Override, RosterRecord, RotationRevision

_INFO_KEY = "opsbot.oncall.revisions"
_TRACKED = (Override, RosterRecord)
_TOKENS = select(RotationRevision.__table__.c.rotation_id, RotationRevision.__table__.c.revision)
# The same read as SQL for psycopg alone (the ack path's asyncio pool; no parameters).
TOKENS_SQL = str(_TOKENS.compile(dialect=postgresql.dialect()))


def revisions(session: OrmSession) -> dict[str, str]:
    """Every rotation's current token (a rotation without one has never had a row), read once
    per transaction and reread after this session's own changes. Changes not yet flushed are
    flushed first, as a query through the ORM would: the timelines then see them."""
    if session.autoflush and _unflushed(session) and _changed_rotations(session):
        session.flush()  # bumps their tokens and forgets the ones read (`_bump_revisions`)
    known = session.info.get(_INFO_KEY)
    if known is None:
        # The bare statement on the session's connection, in its transaction: read through
        # the ORM, this small read (on every answer to `/oncall now`) took a fifth more CPU.
        rows = session.connection().execute(_TOKENS)
        known = session.info[_INFO_KEY] = {rotation_id: token for rotation_id, token in rows}
    return known


def _unflushed(session: OrmSession) -> bool:
    # The cheapest look (about a microsecond) on the path of every on-call question, which
    # mostly comes from a session with nothing to flush.
    return bool(session.new or session.deleted or session.identity_map.check_modified())


def _changed_rotations(session: OrmSession) -> set[str]:
    changed = set()
    for instance in (*session.new, *session.deleted):
        if isinstance(instance, _TRACKED):
            changed.add(instance.rotation_id)
    for instance in session.dirty:
        if isinstance(instance, _TRACKED) and session.is_modified(instance):
            changed.add(instance.rotation_id)
    return changed


@event.listens_for(OrmSession, "after_flush")
def _bump_revisions(session: OrmSession, _context: Any) -> None:
    changed = _changed_rotations(session)
    if not changed:
        return
    session.info.pop(_INFO_KEY, None)
    connection = session.connection()
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    # Sorted, so two transactions bumping the same rotations lock their rows in one order.
    for rotation_id in sorted(changed):
        token = uuid.uuid4().hex
        statement = insert(RotationRevision).values(rotation_id=rotation_id, revision=token)
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=["rotation_id"], set_={"revision": token}
            )
        )


@event.listens_for(OrmSession, "after_transaction_end")
def _forget_revisions(session: OrmSession, _transaction: Any) -> None:
    # The next transaction reads the tokens again: other replicas may have changed them.
    session.info.pop(_INFO_KEY, None)
