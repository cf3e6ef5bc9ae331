"""Plain acks: a request an after_ack listener answers with a bare 200 (a page button) is stored
and answered by the HTTP layer without Bolt's dispatch, on PostgreSQL from the event loop; the
row, its work and what Slack is told stay what they were through Bolt."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from slack_bolt import App, BoltResponse
from sqlalchemy import text
from sqlmodel import select

from bot.app import inbox_worker
from bot.inbox import DONE, PENDING, InboxEvent
from bot.intake import REPLAY, InboxWorker
from bot.paging.models import Page
from bot.plain_acks import APPLICATION_NAME, AsyncInbox, PlainAcks, match_on_body
from handlers.acks import after_ack
from tests.harness import terminate_connections
from tests.paging_samples import alertmanager_body
from tests.test_intake import HeldExecutor
from tests.test_paging import PRIMARY, send


def opened_page(world) -> tuple[int, Any]:
    (page_id,) = send(world, "alertmanager", alertmanager_body()).json()["page_ids"]
    (message,) = [m for m in world.fake.dms(PRIMARY) if m.text.startswith("Page #")]
    return page_id, message


def dispatched_on_the_ack_path(world, monkeypatch) -> list[str | None]:
    """Bolt's dispatches of requests as they arrive (not of their stored work): the inbox
    middleware, first on that path, starts each by clearing what the thread answers."""
    seen: list[str | None] = []
    worker = inbox_worker(world.runtime)
    answering = worker.answering

    def counted(key: str | None) -> None:
        if key is None:
            seen.append(key)
        answering(key)

    monkeypatch.setattr(worker, "answering", counted)
    return seen


def action_rows(world) -> list[InboxEvent]:
    with world.db.session() as session:
        return list(session.exec(select(InboxEvent).where(InboxEvent.kind == "action")).all())


def test_a_page_button_is_stored_and_answered_without_bolt_and_its_work_is_done(world, monkeypatch):
    page_id, message = opened_page(world)
    held = HeldExecutor()
    inbox_worker(world.runtime).executor = held
    seen = dispatched_on_the_ack_path(world, monkeypatch)
    response = world.slack.press(message, "page.acknowledge", PRIMARY)
    assert response.status_code == 200 and response.content == b""
    assert seen == []  # Bolt has not seen the request: only its stored row exists
    (stored,) = action_rows(world)
    assert stored.status == PENDING and stored.attempts == 0 and stored.retry_num == 0
    assert stored.body == response.request.content.decode()
    assert stored.headers == {"content-type": "application/x-www-form-urlencoded"}
    assert stored.lease_until == world.clock.now() + inbox_worker(world.runtime).lease
    # The work, submitted for right after the answer, runs from the row.
    assert held.run() == [True]
    with world.db.session() as session:
        assert session.get(Page, page_id).acknowledged_by == PRIMARY
    assert [(r.status, r.attempts) for r in action_rows(world)] == [(DONE, 1)]
    # A command answered whole in the ack (a form opened while the trigger is fresh) still
    # goes through Bolt.
    world.slack.command("/oncall", "cover", PRIMARY)
    assert seen == [None]
    assert world.fake.calls_to("views.open")


def test_a_global_middleware_of_the_apps_own_sends_every_request_through_bolt(world):
    page_id, message = opened_page(world)
    asked: list[bool] = []

    def only_admins(req: Any, resp: Any, next: Any) -> Any:
        asked.append(bool(req.context.get(REPLAY)))
        return BoltResponse(status=200, body="Only admins may press this.")

    world.bolt.use(only_admins)
    response = world.slack.press(message, "page.acknowledge", PRIMARY)
    # Bolt ran it on the ack path, and what it answered is what Slack was told.
    assert False in asked and response.text == "Only admins may press this."
    with world.db.session() as session:
        assert session.get(Page, page_id).acknowledged_by is None


def test_slacks_retry_of_a_pressed_button_is_answered_and_worked_once(world):
    _, message = opened_page(world)
    first = world.slack.press(message, "page.acknowledge", PRIMARY)
    said = len(world.fake.calls_to("chat.update"))
    again = world.slack.post(
        first.request.content.decode(), "application/x-www-form-urlencoded", retry_num=1
    )
    assert again.status_code == 200 and again.content == b""
    (stored,) = action_rows(world)
    assert stored.status == DONE and stored.attempts == 1
    assert len(world.fake.calls_to("chat.update")) == said


def test_a_request_that_could_not_be_stored_gets_a_500_so_slack_retries(world, monkeypatch):
    page_id, message = opened_page(world)

    def down(*_: Any, **__: Any) -> Any:
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(InboxWorker, "accept", down)
    monkeypatch.setattr(AsyncInbox, "_accept", down)
    response = world.slack.press(message, "page.acknowledge", PRIMARY)
    assert response.status_code == 500
    assert response.json() == {"error": "the request could not be stored; retry"}
    assert action_rows(world) == []
    monkeypatch.undo()
    # Slack's retry is stored and worked.
    retried = world.slack.post(
        response.request.content.decode(), "application/x-www-form-urlencoded", retry_num=1
    )
    assert retried.status_code == 200
    with world.db.session() as session:
        assert session.get(Page, page_id).acknowledged_by == PRIMARY


def test_on_postgresql_the_row_is_stored_by_the_ack_pool_and_survives_a_restart(world, monkeypatch):
    if world.db.engine.dialect.name != "postgresql":
        pytest.skip("the asyncio pool serves PostgreSQL; SQLite stores from a thread")
    _, message = opened_page(world)
    world.slack.press(message, "page.acknowledge", PRIMARY)
    with world.db.engine.connect() as connection:
        named = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = :name"
            ),
            {"name": APPLICATION_NAME},
        ).scalar()
    assert named >= 1
    # The database restarts: the pool's connection is dead, found so on use, and replaced.
    assert terminate_connections(world.db) >= 1
    tries: list[str] = []
    first_try = AsyncInbox._accept

    async def counted(self: AsyncInbox, *args: Any) -> Any:
        tries.append(args[1])
        return await first_try(self, *args)

    monkeypatch.setattr(AsyncInbox, "_accept", counted)
    response = world.slack.press(message, "page.escalate", PRIMARY)
    assert response.status_code == 200 and len(tries) == 2
    assert [r.status for r in action_rows(world)] == [DONE, DONE]


# ---- which requests are answered plainly (the listeners asked from the body) -------------------


def press(action_id: str) -> dict[str, Any]:
    return {"type": "block_actions", "trigger_id": "1.2.x", "actions": [{"action_id": action_id}]}


@pytest.fixture
def listeners(world) -> tuple[App, PlainAcks]:
    app = App(
        token="xoxb-unused",
        signing_secret="unused",
        token_verification_enabled=False,
        request_verification_enabled=False,
    )

    def work(**_: Any) -> None:
        return None

    after_ack(app.action("plain"))(work)
    after_ack(app.action("form"), at_once=lambda body: True)(work)
    app.action("bolt")(work)
    match_on_body(app)
    return app, PlainAcks(app, inbox_worker(world.runtime))


def test_an_after_ack_listener_answers_plainly_unless_it_works_at_once(listeners):
    _, plain = listeners
    assert plain.answers(press("plain"))
    assert not plain.answers(press("form"))  # a form opens while the trigger is fresh
    assert not plain.answers(press("bolt"))  # an ordinary listener: Bolt answers
    assert not plain.answers(press("unknown"))


def test_a_listener_ahead_that_only_bolt_can_ask_sends_the_request_through_bolt(world):
    app = App(
        token="xoxb-unused",
        signing_secret="unused",
        token_verification_enabled=False,
        request_verification_enabled=False,
    )
    app.action("plain", matchers=[lambda context: True])(lambda ack: ack())

    def later(**_: Any) -> None:
        return None

    after_ack(app.action("plain"))(later)
    assert not PlainAcks(app, inbox_worker(world.runtime)).answers(press("plain"))


def test_the_apps_commands_are_answered_plainly_unless_answered_in_the_ack(world):
    plain = PlainAcks(world.bolt, inbox_worker(world.runtime))

    def oncall(words: str) -> dict[str, Any]:
        return {"command": "/oncall", "text": words, "trigger_id": "1.2.x"}

    assert not plain.answers(oncall("now"))  # answered whole in the ack, stored nowhere
    assert not plain.answers(oncall("cover"))  # opens a form with the fresh trigger
    assert plain.answers(oncall("help"))  # answered after the ack, from the stored row


def test_on_postgresql_no_free_connection_is_a_500_at_once_not_a_second_wait(world, monkeypatch):
    if world.db.engine.dialect.name != "postgresql":
        pytest.skip("the asyncio pool serves PostgreSQL; SQLite stores from a thread")
    from psycopg_pool import PoolTimeout

    _, message = opened_page(world)
    tries: list[str] = []

    async def busy(self: AsyncInbox, *args: Any) -> Any:
        tries.append(args[1])
        raise PoolTimeout("couldn't get a connection after 2.00 sec")

    monkeypatch.setattr(AsyncInbox, "_accept", busy)
    response = world.slack.press(message, "page.acknowledge", PRIMARY)
    assert response.status_code == 500 and len(tries) == 1
    assert action_rows(world) == []
