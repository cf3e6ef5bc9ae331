"""Requests whose answer is a bare 200, stored and answered by the HTTP layer without Bolt.

A button such as a page's Acknowledge is handled by an `after_ack` listener (handlers/acks.py):
its ack function answers 200 with nothing in it, and the work is done later from the stored
request. Bolt's dispatch on the ack path (its context, its middleware, the listeners asked in
turn, the ack function) only arrives at that empty 200. The body says which listener takes the
request, so the HTTP layer asks the listeners itself, stores the row and answers. The row, its
work and what Slack is told are the same as through Bolt; less stands between Slack and its
answer.

On PostgreSQL the row is stored from the event loop with psycopg's asyncio pool (`AsyncInbox`):
the answer does not wait for a thread either, and a slow database holds only the answers that
wait for it, not the loop. On SQLite (no asyncio driver) the insert runs in a thread.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.listener_matcher.builtins import BuiltinListenerMatcher
from slack_bolt.listener_matcher.listener_matcher import ListenerMatcher
from slack_bolt.middleware import CustomMiddleware
from sqlalchemy.engine import make_url

from bot import inbox
from bot.db import Database
from bot.intake import InboxWorker

log = logging.getLogger(__name__)
T = TypeVar("T")

APPLICATION_NAME = "opsbot-ack"
AT_ONCE = "opsbot_at_once"  # an after_ack ack function's mark: which bodies it answers whole
ACK_PATH = "opsbot_ack_path"  # the inbox middleware's mark
FROM_MEMORY = "opsbot_from_memory"  # an ack function's answer made on the event loop

# Reads one statement (SQL for psycopg, no parameters) on the ack path's pool.
Rows = Callable[[str], Awaitable[list[tuple[Any, ...]]]]
# The ack's keyword arguments (`ack(**answer)`) for a request answered in the ack, made from
# what the process holds in memory plus at most a few reads through `Rows`; None when the
# answer needs more (a query per item, a call to Slack, CPU-heavy work): Bolt then dispatches
# the request in a thread as usual. It must give the answer the listener itself would.
FromMemory = Callable[[dict[str, Any], Rows], Awaitable[dict[str, Any] | None]]


class BodyMatcher(ListenerMatcher):
    """One of Bolt's built-in matchers (`app.action("id")`, `app.command("/x")`, ...) asked with
    the body alone, which is all it reads. Bolt asks each with every injectable argument built
    first (some thirty, the payload read eight ways), for each listener in turn until one
    matches: with opsbot's sixty listeners that was most of the CPU an ack costs."""

    def __init__(self, func: Any) -> None:
        self.func = func

    def matches(self, req: BoltRequest, resp: BoltResponse) -> bool:
        return self.func(body=req.body)


def match_on_body(app: App) -> None:
    """Swap the app's built-in matchers that read only the body for `BodyMatcher`s. Bolt keeps
    its listeners in `_listeners` (it has no public accessor); tests/test_app_matching.py fails
    if that changes."""
    for listener in app._listeners:
        listener.matchers = [
            BodyMatcher(matcher.func)
            if type(matcher) is BuiltinListenerMatcher and matcher.arg_names == ["body"]
            else matcher
            for matcher in listener.matchers
        ]


def mark_ack_path(middleware: Callable[..., Any]) -> None:
    """Mark the app's own ack-path middleware (the inbox's): plain acks do its work themselves."""
    setattr(middleware, ACK_PATH, True)


def mark_after_ack(
    ack_function: Callable[..., Any],
    at_once: Callable[[dict[str, Any]], bool],
    from_memory: FromMemory | None = None,
) -> None:
    """Mark an after_ack listener's ack function: it answers a bare 200 unless `at_once(body)`,
    and `from_memory` may make its answer on the event loop (see `FromMemory`)."""
    setattr(ack_function, AT_ONCE, at_once)
    if from_memory is not None:
        setattr(ack_function, FROM_MEMORY, from_memory)


class PlainAcks:
    """Which requests Bolt would answer with a bare 200 from an after_ack listener."""

    def __init__(self, app: App, worker: InboxWorker) -> None:
        # The app's own lists (see match_on_body): what is registered later is seen too.
        self.listeners = app._listeners
        self.middleware = app._middleware_list
        self.worker = worker

    def _only_known_middleware(self) -> bool:
        """Bolt's built-in middleware (nothing of theirs turns an interaction away here: the
        signature is checked before, and opsbot's authorize answers for every request) and the
        inbox's. A middleware of anyone else's may refuse a request: Bolt must run it."""
        return all(
            not isinstance(m, CustomMiddleware) or getattr(m.func, ACK_PATH, False)
            for m in self.middleware
        )

    def _ack_function(self, body: dict[str, Any]) -> Callable[..., Any] | None:
        """The ack function of the first listener that takes `body`, as Bolt asks them in
        order. None as soon as a listener ahead of it could only be asked through Bolt (a
        matcher that reads more than the body, a middleware), or when the app has a global
        middleware other than Bolt's and the inbox's."""
        if not self._only_known_middleware():
            return None
        for listener in self.listeners:
            matchers = listener.matchers
            if listener.middleware or any(type(m) is not BodyMatcher for m in matchers):
                return None
            if all(m.func(body=body) for m in matchers):
                return listener.ack_function
        return None

    def answers(self, body: dict[str, Any]) -> bool:
        """True when the listener that takes `body` is an after_ack one that answers it with
        a bare 200 (and the request is one that is stored)."""
        if self.worker.unstored(body):
            return False  # answered in full in the ack (`/oncall now`)
        at_once = getattr(self._ack_function(body), AT_ONCE, None)
        return at_once is not None and not at_once(body)

    def from_memory(self, body: dict[str, Any]) -> FromMemory | None:
        """The answer the listener that takes `body` can make on the event loop, if any."""
        return getattr(self._ack_function(body), FROM_MEMORY, None)


class AsyncInbox:
    """The inbox's one insert (inbox.accept), on PostgreSQL, from the event loop."""

    INSERT = (
        "INSERT INTO inbox_events"
        " (key, kind, received_at, retry_num, body, headers, status, attempts, lease_until)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, 0, %s) ON CONFLICT (key) DO NOTHING"
    )
    STATUS = "SELECT status FROM inbox_events WHERE key = %s"

    def __init__(self, url: str, worker: InboxWorker, size: int = 4, timeout: float = 2.0) -> None:
        from psycopg_pool import AsyncConnectionPool

        # `timeout`: waiting longer for a connection would outlast Slack's 3 s; a 500 sooner
        # makes Slack retry.
        conninfo = make_url(url).set(drivername="postgresql").render_as_string(False)
        self.pool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=size,
            timeout=timeout,
            open=False,
            # Named, so an operator tells the ack path's connections apart in pg_stat_activity.
            kwargs={"autocommit": True, "application_name": APPLICATION_NAME},
            name=APPLICATION_NAME,
        )
        self.worker = worker

    @staticmethod
    def usable(db: Database) -> bool:
        return db.engine.dialect.name == "postgresql"

    async def open(self) -> None:
        await self.pool.open()

    async def close(self) -> None:
        await self.pool.close()

    async def accept(
        self, kind: str, key: str, raw: str, headers: dict[str, str], retry_num: int
    ) -> inbox.Accepted:
        """`InboxWorker.accept`, awaited: the same row, lease and counters. A connection the
        database dropped (a restart) is found on use: the pool's idle connections are checked
        and the insert is tried once more. No connection free within `timeout` raises."""
        return await self._once_more_if_dropped(
            lambda: self._accept(kind, key, raw, headers, retry_num)
        )

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Every row `sql` returns: a read in one round trip on the pool, tried once more as
        `accept` is."""
        return await self._once_more_if_dropped(lambda: self._rows(sql))

    async def _once_more_if_dropped(self, attempt: Callable[[], Awaitable[T]]) -> T:
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            return await attempt()
        except PoolTimeout:
            raise  # every connection busy for `timeout`: a second wait would outlast Slack's
        except psycopg.OperationalError:
            await self.pool.check()
            return await attempt()

    async def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        async with self.pool.connection() as connection:
            cursor = await connection.execute(sql)
            return await cursor.fetchall()

    async def _accept(
        self, kind: str, key: str, raw: str, headers: dict[str, str], retry_num: int
    ) -> inbox.Accepted:
        from psycopg.types.json import Json

        now = self.worker.clock.now()
        lease_until = now + self.worker.head_start
        values = (key, kind, now, retry_num, raw, Json(headers), inbox.PENDING, lease_until)
        async with self.pool.connection() as connection:
            cursor = await connection.execute(self.INSERT, values)
            if cursor.rowcount == 1:
                return inbox.stored_now(kind)
            cursor = await connection.execute(self.STATUS, (key,))
            found = await cursor.fetchone()
            return inbox.seen_before(kind, found[0] if found else None)
