"""`/oncall now` costs the same few statements for 10 rotations as for 100: one query per kind,
never one per rotation or per person (driven through the real Bolt app, signed)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import event

from bot.demo.story import fake_users
from bot.oncall import lookup
from tests.bench.scale_org import scale_org_text, scale_users

START = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


@contextmanager
def counting(engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _oncall_now_statements(world_factory, rotations: int) -> tuple[int, int, str]:
    """Statements for `/oncall now` with cold timelines, then warm; and the reply."""
    users = {**fake_users(), **scale_users(rotations)}
    world = world_factory(scale_org_text(rotations, emails=True), START, users=users)
    world.slack.command("/oncall", "now", user="U00000001")  # e-mail addresses resolved once
    lookup.STORE.clear()
    with counting(world.db.engine) as cold:
        world.slack.command("/oncall", "now", user="U00000001")
    with counting(world.db.engine) as warm:
        world.slack.command("/oncall", "now", user="U00000001")
    reply = world.last_ack()  # `/oncall now` is answered in the ack itself
    return len(cold), len(warm), str(reply.get("blocks"))


def test_oncall_now_runs_a_constant_number_of_statements(world_factory):
    cold_10, warm_10, reply_10 = _oncall_now_statements(world_factory, 10)
    cold_100, warm_100, reply_100 = _oncall_now_statements(world_factory, 100)
    # The answers are real: every rotation is listed (up to the 45 lines a message shows) and
    # an e-mail member is shown as the Slack user it resolved to.
    assert "*rot-9*" in reply_10 and "*rot-44*" in reply_100
    assert "<@UMAIL" in reply_100 and "@example.com" not in reply_100
    assert cold_100 == cold_10, (cold_10, cold_100)
    assert warm_100 == warm_10, (warm_10, warm_100)
    assert warm_100 <= cold_100 <= 30
