"""`/oncall now` answered on the event loop from what the process holds (the cached timelines,
the people already resolved) after one read of the revision tokens: the same answer Bolt's
listener gives, and Bolt's way whenever anything is missing from memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_bolt import Ack
from sqlalchemy import text

from bot.app import inbox_worker
from bot.demo.story import sample_org_text
from bot.intake import parse_body
from bot.oncall import lookup, service
from bot.plain_acks import AsyncInbox, PlainAcks
from tests.test_plain_acks import dispatched_on_the_ack_path

ALICE, BOB = "U0ENG00001", "U0ENG00002"
WORDS = ["", "now", "who", "NOW data", "now infra-oncall", "now <nope>", "now data-oncall"]


def body_of(response: Any) -> dict[str, Any]:
    """The parsed request a response answered (what Bolt and the answerer both read)."""
    request = response.request
    return parse_body(request.content, request.headers["content-type"])


def rows_of(world):
    """A `Rows` reading through SQLAlchemy: the answerer's own read, on either backend."""

    async def rows(sql: str) -> list[tuple[Any, ...]]:
        with world.db.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]

    return rows


def from_memory(world, body: dict[str, Any]) -> bytes | None:
    """The ack's body the event loop would answer `body` with, or None (left to Bolt)."""
    import asyncio

    answerer = PlainAcks(world.bolt, inbox_worker(world.runtime)).from_memory(body)
    assert answerer is not None, "the /oncall listener offers an answer from memory"
    answer = asyncio.run(answerer(body, rows_of(world)))
    return None if answer is None else Ack()(**answer).body.encode()


def cover(world, start: datetime, hours: int) -> None:
    """Alice covers infra-oncall from `start`, recorded as `/oncall cover` records it."""
    with world.db.session() as session:
        service.create_override(
            session,
            world.org,
            "infra-oncall",
            ALICE,
            start,
            start + timedelta(hours=hours),
            ALICE,
            world.clock.now(),
        )


def test_the_answer_from_memory_is_the_answer_bolt_gives(world):
    """Across a DST change, with an override and secondaries, for every team and none."""
    for at in (
        datetime(2026, 11, 16, 14, 30, tzinfo=UTC),  # the demo's Monday morning
        # Either side of handoffs just after each zone springs forward: infra hands off at
        # 10:00 EDT (14:00 UTC, not 15:00 as in winter), data at 10:00 BST (09:00 UTC).
        datetime(2027, 3, 15, 13, 59, tzinfo=UTC),
        datetime(2027, 3, 15, 14, 1, tzinfo=UTC),
        datetime(2027, 3, 30, 8, 59, tzinfo=UTC),
        datetime(2027, 3, 30, 9, 1, tzinfo=UTC),
    ):
        world.clock.set(at)
        if at == datetime(2027, 3, 15, 14, 1, tzinfo=UTC):
            cover(world, at, hours=5)
        for words in WORDS:
            response = world.slack.command("/oncall", words, user=ALICE)
            assert response.status_code == 200
            # Bolt has answered (and cached every timeline it needed): memory now suffices.
            assert from_memory(world, body_of(response)) == response.content, words


def test_a_timeline_not_cached_or_changed_since_is_left_to_bolt(world):
    response = world.slack.command("/oncall", "now", user=ALICE)
    body = body_of(response)
    assert from_memory(world, body) == response.content
    lookup.STORE.clear()  # a config reload, or a process that never built them
    assert from_memory(world, body) is None
    world.slack.command("/oncall", "now", user=ALICE)
    assert from_memory(world, body) == response.content
    # An override made anywhere changes the rotation's token: its cached timeline is stale.
    cover(world, world.clock.now(), hours=2)
    assert from_memory(world, body) is None
    fresh = world.slack.command("/oncall", "now", user=ALICE)
    assert b"U0ENG00001" in fresh.content and fresh.content != response.content
    assert from_memory(world, body) == fresh.content


def test_an_address_not_yet_resolved_in_this_process_is_left_to_bolt(world_factory):
    world = world_factory(sample_org_text().replace("U0ENG00002", "bob@example.com"))
    world.fake.add_user(BOB, "bob", "bob@example.com")
    answered = world.slack.command("/oncall", "now infra-oncall", user=ALICE)
    assert f"<@{BOB}>".encode() in answered.content
    body = body_of(answered)
    assert from_memory(world, body) == answered.content
    world.runtime.directory._known.clear()  # another process resolved it: in the table only
    assert from_memory(world, body) is None
    assert (
        world.slack.command("/oncall", "now infra-oncall", user=ALICE).content == answered.content
    )
    assert from_memory(world, body) == answered.content


def test_other_oncall_commands_are_not_answered_from_memory(world):
    response = world.slack.command("/oncall", "schedule infra-oncall", user=ALICE)
    assert from_memory(world, body_of(response)) is None


# ---- over HTTP, on PostgreSQL: the event loop answers, Bolt is not asked -----------------------


@pytest.fixture
def pg_world(world):
    if not AsyncInbox.usable(world.db):
        pytest.skip("answers from memory read the tokens on the ack path's asyncio pool")
    return world


def test_on_postgresql_oncall_now_is_answered_without_bolt_once_cached(pg_world, monkeypatch):
    world = pg_world
    reads: list[str] = []
    rows = AsyncInbox.rows

    async def counted(self: AsyncInbox, sql: str) -> list[tuple[Any, ...]]:
        reads.append(" ".join(sql.split()))
        return await rows(self, sql)

    monkeypatch.setattr(AsyncInbox, "rows", counted)
    seen = dispatched_on_the_ack_path(world, monkeypatch)
    lookup.STORE.clear()
    first = world.slack.command("/oncall", "", user=ALICE)
    assert seen == [None]  # nothing cached yet: Bolt's listener answered, and cached them
    second = world.slack.command("/oncall", "", user=ALICE)
    assert seen == [None]  # answered on the event loop
    assert second.status_code == 200 and second.content == first.content
    assert second.headers["content-type"] == first.headers["content-type"]
    tokens = "SELECT oncall_revisions.rotation_id, oncall_revisions.revision FROM oncall_revisions"
    assert reads == [tokens, tokens]
    assert "*infra-oncall*: <@U0ENG00002>" in world.last_ack()["text"] + str(
        world.last_ack()["blocks"]
    )


def test_on_postgresql_a_failed_read_is_answered_through_bolt(pg_world, monkeypatch, caplog):
    world = pg_world
    expected = world.slack.command("/oncall", "", user=ALICE).content

    async def broken(self: AsyncInbox, sql: str) -> list[tuple[Any, ...]]:
        raise OSError("the database went away")

    monkeypatch.setattr(AsyncInbox, "rows", broken)
    seen = dispatched_on_the_ack_path(world, monkeypatch)
    response = world.slack.command("/oncall", "", user=ALICE)
    assert response.status_code == 200 and response.content == expected
    assert seen == [None]
    assert "answering from memory failed" in caplog.text
