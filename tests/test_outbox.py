"""The outbox: one post per key, retries with backoff, Retry-After honoured, edits coalesced."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk import WebClient
from sqlmodel import select

from bot import outbox
from bot.clock import FrozenClock
from bot.db import Database
from bot.demo.fake_slack import FakeSlack
from bot.outbox import OutboxMessage, OutboxSender

START = datetime(2026, 11, 16, 14, 30, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    slack = FakeSlack().start()
    yield slack
    slack.stop()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


def client_for(fake: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=fake.api_url)


def no_jitter(delay: float) -> float:
    return delay


@pytest.fixture
def sender(db: Database, fake: FakeSlack, clock: FrozenClock) -> OutboxSender:
    return OutboxSender(db, client_for(fake), clock, jitter=no_jitter)


def post(db: Database, key: str, channel: str = "C0INFRA0001", text: str = "hello", **kw):
    with db.session() as session:
        return outbox.post(session, key, channel, text, START, **kw)


def row(db: Database, key: str) -> OutboxMessage:
    with db.session() as session:
        found = session.exec(select(OutboxMessage).where(OutboxMessage.key == key)).one()
        session.expunge(found)
        return found


def texts(fake: FakeSlack, method: str = "chat.postMessage") -> list[str]:
    return [c.args.get("text") for c in fake.calls_to(method) if c.response.get("ok")]


# ---- once per key ---------------------------------------------------------------------------------


def test_a_queued_post_is_delivered_and_remembered(db, fake, sender):
    post(db, "page:1:channel", text="Checkout is down", thread_ts=None)
    assert sender.drain() == 1
    [message] = fake.posts("C0INFRA0001")
    assert message.text == "Checkout is down"
    sent = row(db, "page:1:channel")
    assert sent.status == outbox.SENT
    assert (sent.result_channel, sent.result_ts) == ("C0INFRA0001", message.ts)
    assert sent.sent_at == START and sent.attempts == 1


def test_the_same_key_enqueued_twice_posts_once(db, fake, sender):
    post(db, "handoff:infra:1", text="first")
    post(db, "handoff:infra:1", text="second")
    with db.session() as session:
        again = outbox.post(session, "handoff:infra:1", "C0INFRA0001", "third", START)
        assert again.payload["text"] == "first"
    sender.drain()
    post(db, "handoff:infra:1", text="after it was sent")
    sender.drain()
    sender.drain()
    assert texts(fake) == ["first"]


def test_a_post_rolled_back_with_its_unit_of_work_is_never_sent(db, fake, sender):
    with pytest.raises(RuntimeError), db.session() as session:
        outbox.post(session, "never", "C0INFRA0001", "rolled back", START)
        raise RuntimeError("the change that caused it failed")
    assert sender.drain() == 0
    assert fake.calls == []


def test_two_senders_draining_concurrently_post_each_key_once(db, fake, clock):
    keys = [f"notice:{n}" for n in range(30)]
    for key in keys:
        post(db, key, text=key)
    # Two replicas: each its own engine and client, sharing the database and Slack.
    replicas = [Database(db.url), Database(db.url)]
    senders = [OutboxSender(r, client_for(fake), clock) for r in replicas]
    barrier = threading.Barrier(len(senders))
    delivered: list[int] = []
    errors: list[BaseException] = []

    def run(sender: OutboxSender) -> None:
        try:
            barrier.wait()
            delivered.append(sender.drain())
        except BaseException as exc:  # surfaced below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for r in replicas:
        r.dispose()
    assert errors == []
    assert sum(delivered) == len(keys)
    assert sorted(texts(fake)) == sorted(keys)
    assert all(row(db, key).status == outbox.SENT for key in keys)


def test_a_dm_to_a_user_id_is_remembered_with_the_dm_channel(db, fake, sender):
    post(db, "page:1:dm:U0ENG00001", channel="U0ENG00001", text="You are paged")
    sender.drain()
    [dm] = fake.dms("U0ENG00001")
    assert dm.text == "You are paged"
    with db.session() as session:
        assert outbox.message_ref(session, "page:1:dm:U0ENG00001") == (dm.channel, dm.ts)


def test_message_ref_is_known_only_once_posted(db, fake, sender):
    fake.fail("chat.postMessage", error="internal_error")
    post(db, "k")
    with db.session() as session:
        assert outbox.message_ref(session, "k") is None
        assert outbox.message_ref(session, "no-such-key") is None
    sender.drain()
    with db.session() as session:
        assert outbox.message_ref(session, "k") is None  # failed once, retry pending
    sender.clock.advance(minutes=1)
    sender.drain()
    with db.session() as session:
        channel, ts = outbox.message_ref(session, "k")
    assert fake.message(channel, ts).text == "hello"


def test_other_methods_are_sent_as_given(db, fake, sender):
    with db.session() as session:
        outbox.enqueue(
            session,
            "usergroup:S0INFRAONC:2026-11-16",
            "usergroups.users.update",
            {"usergroup": "S0INFRAONC", "users": "U0ENG00002"},
            START,
        )
        outbox.enqueue(
            session,
            "topic:C0INFRA0001",
            "conversations.setTopic",
            {"channel": "C0INFRA0001", "topic": "On call: Bob"},
            START,
        )
    assert sender.drain() == 2
    assert fake.usergroups == {"S0INFRAONC": ["U0ENG00002"]}
    assert fake.topics == {"C0INFRA0001": "On call: Bob"}
    assert row(db, "topic:C0INFRA0001").result_channel == "C0INFRA0001"


def test_a_message_is_not_sent_before_its_not_before(db, fake, sender, clock):
    with db.session() as session:
        outbox.post(session, "later", "C0INFRA0001", "later", START)
        outbox.enqueue(
            session,
            "much-later",
            "chat.postMessage",
            {"channel": "C0INFRA0001", "text": "in an hour"},
            START,
            not_before=START + timedelta(hours=1),
        )
    assert sender.drain() == 1
    clock.advance(minutes=59)
    assert sender.drain() == 0
    clock.advance(minutes=1)
    assert sender.drain() == 1
    assert texts(fake) == ["later", "in an hour"]


# ---- failures -------------------------------------------------------------------------------------


def test_429_pauses_the_method_for_retry_after_without_using_an_attempt(db, fake, sender, clock):
    fake.fail("chat.postMessage", status=429, retry_after=7)
    post(db, "k", text="rate limited once")
    post(db, "k2", text="queued behind it")
    assert sender.drain() == 0
    assert len(fake.calls_to("chat.postMessage")) == 1  # the method waits, not row by row
    waiting = row(db, "k")
    assert waiting.status == outbox.PENDING
    assert waiting.not_before == START + timedelta(seconds=7)
    assert "429" in waiting.last_error
    assert waiting.attempts == 0
    clock.advance(seconds=6)
    assert sender.drain() == 0
    assert len(fake.calls_to("chat.postMessage")) == 1  # not even tried again yet
    clock.advance(seconds=1)
    assert sender.drain() == 2
    assert texts(fake) == ["rate limited once", "queued behind it"]
    assert row(db, "k").attempts == 1


def test_a_429_on_one_method_does_not_hold_back_another(db, fake, sender):
    fake.fail("chat.postMessage", status=429, retry_after=30)
    post(db, "k")
    with db.session() as session:
        outbox.enqueue(
            session,
            "topic",
            "conversations.setTopic",
            {"channel": "C0X0000001", "topic": "t"},
            START,
        )
    assert sender.drain() == 1
    assert fake.topics == {"C0X0000001": "t"}


def test_many_429s_never_give_a_message_up(db, fake, clock):
    sender = OutboxSender(db, client_for(fake), clock, max_attempts=2)
    fake.fail("chat.postMessage", status=429, retry_after=1, times=20)
    post(db, "k", text="patient")
    for _ in range(25):
        sender.drain()
        clock.advance(seconds=1)
    assert texts(fake) == ["patient"]
    assert row(db, "k").attempts == 1


@pytest.mark.parametrize("error", ["ratelimited", "rate_limited"])
def test_a_ratelimited_error_without_retry_after_waits_thirty_seconds(db, fake, sender, error):
    fake.fail("chat.postMessage", error=error)
    post(db, "k")
    sender.drain()
    assert row(db, "k").not_before == START + timedelta(seconds=30)


@pytest.mark.parametrize(
    "failure",
    [{"status": 500}, {"status": 503}, {"error": "internal_error"}, {"error": "fatal_error"}],
)
def test_transient_errors_back_off_and_retry(db, fake, sender, clock, failure):
    fake.fail("chat.postMessage", times=2, **failure)
    post(db, "k", text="eventually")
    assert sender.drain() == 0
    assert row(db, "k").not_before == START + timedelta(seconds=2)
    clock.advance(seconds=1)
    assert sender.drain() == 0
    assert len(fake.calls_to("chat.postMessage")) == 1
    clock.advance(seconds=1)
    assert sender.drain() == 0  # second failure: the wait doubles
    assert row(db, "k").not_before == clock.now() + timedelta(seconds=4)
    clock.advance(seconds=4)
    assert sender.drain() == 1
    assert texts(fake) == ["eventually"]
    assert row(db, "k").last_error is None


def test_an_unknown_error_is_given_up_after_max_attempts(db, fake, clock):
    sender = OutboxSender(db, client_for(fake), clock, max_attempts=3)
    fake.fail("chat.postMessage", error="something_new", times=100)
    post(db, "k")
    for _ in range(10):
        sender.drain()
        clock.advance(minutes=10)
    assert len(fake.calls_to("chat.postMessage")) == 3
    failed = row(db, "k")
    assert failed.status == outbox.FAILED
    assert failed.attempts == 3


def test_a_5xx_is_retried_past_max_attempts_while_the_message_is_useful(db, fake, clock):
    sender = OutboxSender(db, client_for(fake), clock, max_attempts=3)
    fake.fail("chat.postMessage", status=503, times=6)
    post(db, "k", text="still useful")
    for _ in range(12):
        sender.drain()
        clock.advance(minutes=5)
    assert texts(fake) == ["still useful"]
    assert row(db, "k").attempts == 7


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel", "invalid_blocks"])
def test_permanent_errors_fail_without_retry(db, fake, sender, clock, error):
    fake.fail("chat.postMessage", error=error)
    post(db, "k")
    post(db, "other", text="unaffected")
    assert sender.drain() == 1
    clock.advance(hours=1)
    sender.drain()
    failed = row(db, "k")
    assert failed.status == outbox.FAILED
    assert error in failed.last_error
    assert failed.attempts == 1
    assert len(fake.calls_to("chat.postMessage")) == 2
    assert texts(fake) == ["unaffected"]


def test_a_connection_error_is_retried_later(db, fake, clock):
    dead = FakeSlack().start()
    url = dead.api_url
    dead.stop()  # nothing listens on this port any more
    sender = OutboxSender(db, WebClient(token="x", base_url=url, retry_handlers=[]), clock)
    post(db, "k")
    assert sender.drain() == 0
    waiting = row(db, "k")
    assert waiting.status == outbox.PENDING
    assert waiting.last_error.startswith("connection:")
    sender.client = client_for(fake)
    clock.advance(seconds=2)
    assert sender.drain() == 1


# ---- edits ----------------------------------------------------------------------------------------


def test_an_edit_waits_for_the_post_it_refers_to(db, fake, sender, clock):
    fake.fail("chat.postMessage", status=429, retry_after=5)
    with db.session() as session:
        outbox.post(session, "page:1", "C0INFRA0001", "Paging Alice", START)
        outbox.update_message(
            session, "page:1:acked", of="page:1", text="Acked by Alice", now=START
        )
    sender.drain()
    assert fake.calls_to("chat.update") == []
    assert row(db, "page:1:acked").status == outbox.PENDING
    clock.advance(seconds=5)
    sender.drain()
    [posted] = fake.posts("C0INFRA0001")
    [update] = fake.calls_to("chat.update")
    assert update.args["channel"] == "C0INFRA0001" and update.args["ts"] == posted.ts
    assert posted.text == "Acked by Alice" and posted.updates == 1


def test_only_the_newest_pending_edit_is_sent(db, fake, sender):
    post(db, "page:1", text="Paging Alice")
    sender.drain()
    with db.session() as session:
        for n, text in enumerate(["Acked by Alice", "Escalated", "Resolved by Alice"]):
            outbox.update_message(session, f"page:1:edit:{n}", of="page:1", text=text, now=START)
    assert sender.drain() == 1
    assert texts(fake, "chat.update") == ["Resolved by Alice"]
    assert fake.posts("C0INFRA0001")[0].text == "Resolved by Alice"
    assert row(db, "page:1:edit:0").status == outbox.SUPERSEDED
    assert row(db, "page:1:edit:1").status == outbox.SUPERSEDED


def test_edits_of_different_messages_do_not_coalesce(db, fake, sender):
    post(db, "a", text="A")
    post(db, "b", text="B")
    with db.session() as session:
        outbox.update_message(session, "a:edit", of="a", text="A2", now=START)
        outbox.update_message(session, "b:edit", of="b", text="B2", now=START)
    sender.drain()
    assert sorted(texts(fake, "chat.update")) == ["A2", "B2"]


def test_an_edit_of_a_post_that_failed_fails_too(db, fake, sender):
    fake.fail("chat.postMessage", error="channel_not_found")
    with db.session() as session:
        outbox.post(session, "p", "C0GONE00001", "lost", START)
        outbox.update_message(session, "p:edit", of="p", text="lost too", now=START)
    sender.drain()
    failed = row(db, "p:edit")
    assert failed.status == outbox.FAILED
    assert "p" in failed.last_error
    assert fake.calls_to("chat.update") == []


# ---- crashes --------------------------------------------------------------------------------------


def _claim(db: Database, key: str, at: datetime) -> None:
    with db.session() as session:
        message = session.exec(select(OutboxMessage).where(OutboxMessage.key == key)).one()
        message.status = outbox.SENDING
        message.claimed_at = at
        message.attempts = 1


def test_recover_leaves_a_row_another_sender_is_sending_alone(db, fake, sender, clock):
    post(db, "in-flight")
    clock.advance(minutes=10)
    _claim(db, "in-flight", clock.now())  # another replica is sending it right now
    assert sender.recover() == 0
    assert row(db, "in-flight").status == outbox.SENDING
    assert sender.drain() == 0
    assert fake.calls == []


def test_a_wake_looks_at_the_outbox_only_after_a_message_was_queued_and_committed(db, sender):
    from bot.outbox.queue import committed

    sender.wake()  # the first wake always looks
    sender._wake.clear()
    before = committed()
    sender.wake()
    assert not sender._wake.is_set()  # nothing queued since: the work of a second press
    with pytest.raises(RuntimeError), db.session() as session:
        outbox.post(session, "undone", "C0INFRA0001", "never sent", START)
        raise RuntimeError("the change that caused it failed")
    sender.wake()
    assert committed() == before and not sender._wake.is_set()
    with db.session() as session:  # one unit of work, counted once however many it queues
        outbox.post(session, "one", "C0INFRA0001", "first", START)
        outbox.post(session, "two", "C0INFRA0001", "second", START)
    assert committed() == before + 1
    sender.wake()
    assert sender._wake.is_set()
