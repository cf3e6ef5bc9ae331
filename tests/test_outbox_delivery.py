"""Delivery that outlasts an outage: priorities, usefulness, Slack outages, crashes mid-send.

The fake Slack reads time from the test's clock, so a four-minute outage takes no wall time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk import WebClient
from sqlmodel import col, select

from bot import outbox
from bot.clock import FrozenClock
from bot.db import Database
from bot.demo.fake_slack import FakeSlack
from bot.outbox import OutboxMessage, OutboxSender, SlackHealth
from bot.outbox.queue import default_priority
from bot.outbox.sender import BACKOFF_CAP, PROBE_CAP, equal_jitter

START = datetime(2026, 11, 16, 14, 30, tzinfo=UTC)
PLATFORM = "C0PLATFORM1"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def fake(clock: FrozenClock) -> Iterator[FakeSlack]:
    slack = FakeSlack(monotonic=lambda: clock.now().timestamp()).start()
    yield slack
    slack.stop()


def client_for(fake: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=fake.api_url, retry_handlers=[])


def make_sender(db: Database, fake: FakeSlack, clock: FrozenClock, **kw) -> OutboxSender:
    kw.setdefault("audience", lambda session: ([PLATFORM], START.tzinfo))
    return OutboxSender(db, client_for(fake), clock, **kw)


@pytest.fixture
def sender(db, fake, clock) -> OutboxSender:
    return make_sender(db, fake, clock)


def post(db: Database, key: str, channel: str = "C0INFRA0001", text: str | None = None, **kw):
    with db.session() as session:
        return outbox.post(session, key, channel, text or key, kw.pop("now", START), **kw)


def row(db: Database, key: str) -> OutboxMessage:
    with db.session() as session:
        found = session.exec(select(OutboxMessage).where(OutboxMessage.key == key)).one()
        session.expunge(found)
        return found


def texts(fake: FakeSlack, channel: str | None = None) -> list[str]:
    return [
        c.args["text"]
        for c in fake.calls_to("chat.postMessage")
        if c.response.get("ok") and (channel is None or c.args["channel"] == channel)
    ]


def run_for(sender: OutboxSender, clock: FrozenClock, seconds: int, step: int = 5) -> None:
    """The worker's rounds as time passes: a drain every `step` seconds of the test's clock."""
    for _ in range(seconds // step):
        sender.drain()
        clock.advance(seconds=step)


# ---- priorities -----------------------------------------------------------------------------------


def test_a_page_goes_before_bulk_nudges_queued_earlier(db, fake, sender):
    for n in range(50):
        post(db, f"migration:nudge:{n}", channel=f"U0OWNER{n:04d}")
    post(db, "page:7:dm:U0ENG00001", channel="U0ENG00001", text="You are paged")
    post(db, "support:ticket:3:assigned", channel="U0ENG00002", text="A ticket for you")
    sender.drain()
    sent = texts(fake)
    assert sent[:2] == ["You are paged", "A ticket for you"]
    assert len(sent) == 52


@pytest.mark.parametrize(
    ("key", "method", "priority"),
    [
        ("page:12:dm:U0ENG00001", "chat.postMessage", outbox.URGENT),
        ("page:12:channel:v3", "chat.update", outbox.URGENT),
        ("support:ticket:4:assigned:U1", "chat.postMessage", outbox.NORMAL),
        ("oncall:handoff:infra:2026-11-16", "chat.postMessage", outbox.NORMAL),
        ("support:report:queue:2026-11-16", "chat.postMessage", outbox.BULK),
        ("migration:nudge:svc:U1", "chat.postMessage", outbox.BULK),
        ("wins:digest:2026Q4", "chat.postMessage", outbox.BULK),
        ("home:U0ENG00001", "views.publish", outbox.BULK),
    ],
)
def test_priority_defaults_by_kind(key, method, priority):
    assert default_priority(key, method) == priority


def test_a_capability_may_set_priority_and_expiry_itself(db):
    post(db, "support:ticket:9:critical", priority=outbox.URGENT, expires_at=START)
    saved = row(db, "support:ticket:9:critical")
    assert (saved.priority, saved.expires_at) == (outbox.URGENT, START)


# ---- usefulness -----------------------------------------------------------------------------------


def test_a_reminder_is_useful_until_its_moment_has_long_passed(db):
    later = START + timedelta(hours=2)
    with db.session() as session:
        outbox.enqueue(
            session,
            "oncall:reminder:1",
            "chat.postMessage",
            {"channel": "U0ENG00001", "text": "Your shift starts in an hour"},
            START,
            not_before=later,
        )
    assert row(db, "oncall:reminder:1").expires_at == later + outbox.queue.USEFUL_FOR[1]
    post(db, "page:1:dm:U0ENG00001", channel="U0ENG00001")
    assert row(db, "page:1:dm:U0ENG00001").expires_at is None  # useful until resolved


def test_a_notice_whose_moment_passed_during_an_outage_is_dropped_not_sent(db, fake, sender, clock):
    fake.outage(600)
    post(db, "oncall:shift-starts:1", expires_at=START + timedelta(minutes=5), text="in 5 min")
    post(db, "page:1:dm:U0ENG00001", channel="U0ENG00001", text="paged")
    run_for(sender, clock, 700)
    dropped = row(db, "oncall:shift-starts:1")
    assert dropped.status == outbox.EXPIRED
    assert "no longer useful" in dropped.last_error
    assert texts(fake, "U0ENG00001") == ["paged"]
    assert texts(fake, "C0INFRA0001") == []


def test_a_capability_can_say_what_is_no_longer_useful(db, fake, sender, clock):
    resolved = {"1"}

    def page_dms_useful(session, rows):
        return [r.id for r in rows if r.key.split(":")[1] in resolved and ":dm:" in r.key]

    outbox.register_usefulness("page", page_dms_useful)
    try:
        post(db, "page:1:dm:U0ENG00001", channel="U0ENG00001", text="page 1, resolved already")
        post(db, "page:1:channel", text="page 1 in the channel")
        post(db, "page:2:dm:U0ENG00001", channel="U0ENG00001", text="page 2")
        sender.drain()
    finally:
        outbox.queue._USEFULNESS.pop("page", None)
    assert sorted(texts(fake)) == ["page 1 in the channel", "page 2"]
    assert row(db, "page:1:dm:U0ENG00001").status == outbox.EXPIRED


# ---- Slack outages --------------------------------------------------------------------------------


def test_a_page_queued_during_a_four_minute_500_outage_is_delivered_after_it(
    db, fake, sender, clock
):
    fake.outage(240, status=500)
    post(db, "page:1:dm:U0ENG00001", channel="U0ENG00001", text="Checkout is down")
    for n in range(20):
        post(db, f"support:ticket:{n}:assigned", channel=f"U0ENG{n:05d}")
    run_for(sender, clock, 240)
    assert texts(fake) == []
    during = len(fake.calls)
    # While Slack fails, one call per round probes it instead of every row hammering it.
    assert during <= 240 // 5 + 1
    assert row(db, "page:1:dm:U0ENG00001").status == outbox.PENDING
    run_for(sender, clock, 20)
    # Slack is asked again at least every 10 s; the first call that works ends the outage and
    # what waited on it goes at once, pages first.
    assert texts(fake).count("Checkout is down") == 1
    page = row(db, "page:1:dm:U0ENG00001")
    assert page.sent_at - (START + timedelta(seconds=240)) <= timedelta(seconds=PROBE_CAP + 5)
    run_for(sender, clock, 600)
    assert len(texts(fake)) == 21 + 1  # every notice, and the announcement


def test_the_outage_is_announced_once_to_the_platform_team_when_it_clears(db, fake, clock):
    fake.outage(180, status=503, error="service_unavailable")
    replicas = [make_sender(db, fake, clock) for _ in range(2)]
    for n in range(4):
        post(db, f"support:ticket:{n}:assigned", channel=f"U0ENG{n:05d}")
    for _ in range(60):
        for replica in replicas:
            replica.drain()
        clock.advance(seconds=5)
    [announcement] = texts(fake, PLATFORM)
    assert "Slack is reachable again" in announcement
    assert "503 service_unavailable" in announcement
    assert re.search(r"about [34] min, \d+ failed calls", announcement)
    with db.session() as session:
        assert session.get(SlackHealth, "slack").failing_since is None
    # Slack keeps answering: nothing more is said.
    post(db, "support:ticket:9:assigned", channel="U0ENG00009")
    run_for(replicas[0], clock, 60)
    assert len(texts(fake, PLATFORM)) == 1


def test_a_blip_shorter_than_a_minute_is_not_announced(db, fake, sender, clock):
    fake.outage(20)
    post(db, "support:ticket:1:assigned", channel="U0ENG00001")
    run_for(sender, clock, 60)
    assert texts(fake) == ["support:ticket:1:assigned"]
    with db.session() as session:
        assert session.get(SlackHealth, "slack").failing_since is None


def test_an_outage_is_announced_to_the_admins_when_there_is_no_platform_team(world_factory):
    world = world_factory()
    audience = world.runtime.outbox.health.audience
    with world.db.session() as session:
        recipients, zone = audience(session)
    org = world.runtime.org
    team = next((t for t in org.teams if t.id == org.platform_migrations.platform_team), None)
    if team is not None and team.channel:
        assert recipients == [team.channel]
    else:
        assert recipients == [world.runtime.directory.user_id(a) for a in org.admins]
    assert str(zone) == org.timezone


def test_backoff_is_jittered_and_capped_lower_for_pages():
    assert all(5 <= equal_jitter(10) <= 10 for _ in range(200))
    assert len({equal_jitter(10) for _ in range(20)}) > 1
    assert BACKOFF_CAP[outbox.URGENT] <= 30


def test_a_normal_notice_backs_off_up_to_five_minutes(db, fake, clock):
    sender = make_sender(db, fake, clock, jitter=lambda d: d)
    fake.fail("chat.postMessage", status=500, times=20)
    post(db, "support:ticket:1:assigned")
    for _ in range(12):
        sender.drain()
        clock.set(row(db, "support:ticket:1:assigned").not_before)
    waiting = row(db, "support:ticket:1:assigned")
    assert waiting.not_before - clock.now() <= timedelta(seconds=300)


# ---- crashes mid-send -----------------------------------------------------------------------------


def crash_mid_send(db, fake, sender, key: str, *, reached_slack: bool) -> None:
    """A sender claimed `key`, maybe posted it, then died before recording the result."""
    [job] = sender._claim([row(db, key)], sender.clock.now())
    sender._lanes.clear()
    if reached_slack:
        client_for(fake).api_call(job.method, json=job.payload)


@pytest.mark.parametrize("channel", ["C0INFRA0001", "U0ENG00001"])
def test_a_post_that_reached_slack_before_a_crash_is_not_posted_again(
    db, fake, sender, clock, channel
):
    post(db, "page:1:dm", channel=channel, text="You are paged")
    crash_mid_send(db, fake, sender, "page:1:dm", reached_slack=True)
    clock.advance(minutes=1)
    assert sender.recover() == 0  # not stuck yet: it may still be on its way
    clock.advance(minutes=1)
    assert sender.recover() == 1
    sender.drain()
    assert texts(fake) == ["You are paged"]
    recovered = row(db, "page:1:dm")
    assert recovered.status == outbox.SENT
    [message] = fake.posts(channel)
    assert (recovered.result_channel, recovered.result_ts) == (message.channel, message.ts)


def test_a_thread_reply_that_reached_slack_before_a_crash_is_not_posted_again(
    db, fake, sender, clock
):
    parent = client_for(fake).chat_postMessage(channel="C0HELP00001", text="My build fails")
    post(db, "support:ticket:1:ack", channel="C0HELP00001", thread_ts=parent["ts"])
    crash_mid_send(db, fake, sender, "support:ticket:1:ack", reached_slack=True)
    clock.advance(minutes=5)
    sender.recover()
    sender.drain()
    assert texts(fake, "C0HELP00001").count("support:ticket:1:ack") == 1
    assert row(db, "support:ticket:1:ack").status == outbox.SENT


def test_a_post_a_crash_stopped_before_slack_is_sent_after_recovery(db, fake, sender, clock):
    post(db, "page:1:dm", channel="U0ENG00001", text="You are paged")
    crash_mid_send(db, fake, sender, "page:1:dm", reached_slack=False)
    clock.advance(minutes=5)
    assert sender.recover() == 1
    assert sender.drain() == 1
    assert texts(fake) == ["You are paged"]


def test_when_history_cannot_be_read_the_post_is_sent_again_rather_than_lost(
    db, fake, sender, clock
):
    post(db, "k", text="at least once")
    crash_mid_send(db, fake, sender, "k", reached_slack=False)
    fake.fail("conversations.history", error="missing_scope")
    clock.advance(minutes=5)
    sender.recover()
    sender.drain()
    assert texts(fake) == ["at least once"]


def test_recovery_waits_while_slack_cannot_be_asked(db, fake, sender, clock):
    post(db, "k")
    crash_mid_send(db, fake, sender, "k", reached_slack=True)
    clock.advance(minutes=5)
    fake.outage(60)
    assert sender.recover() == 0
    assert row(db, "k").status == outbox.SENDING
    clock.advance(minutes=2)
    sender.recover()
    sender.drain()
    assert texts(fake) == ["k"]


def test_an_edit_interrupted_by_a_crash_is_simply_sent_again(db, fake, sender, clock):
    post(db, "p", text="Paging Alice")
    sender.drain()
    with db.session() as session:
        outbox.update_message(session, "p:v2", of="p", text="Acked", now=START)
    crash_mid_send(db, fake, sender, "p:v2", reached_slack=True)
    clock.advance(minutes=5)
    sender.recover()
    sender.drain()
    assert fake.posts("C0INFRA0001")[0].text == "Acked"
    assert row(db, "p:v2").status == outbox.SENT


def test_a_page_dm_held_up_by_slack_is_dropped_once_the_page_resolves(world):
    from tests.paging_samples import alertmanager_alert, alertmanager_body

    auth = {"Authorization": "Bearer demo-alert-token"}
    world.fake.fail("chat.postMessage", status=500, times=2)  # the DM and the channel post
    opened = world.http.post("/alerts/alertmanager", json=alertmanager_body(), headers=auth)
    world.settle()
    assert world.fake.posts() == []
    resolved = alertmanager_body(alertmanager_alert(status="resolved"))
    world.http.post("/alerts/alertmanager", json=resolved, headers=auth)
    for _ in range(12):
        world.advance(seconds=10)
    page_id = opened.json()["page_ids"][0]
    with world.db.session() as session:
        rows = session.exec(
            select(OutboxMessage).where(col(OutboxMessage.key).startswith(f"page:{page_id}:"))
        ).all()
    status = {r.key: r.status for r in rows if r.method == "chat.postMessage"}
    assert [s for k, s in status.items() if ":dm:" in k] == [outbox.EXPIRED]
    assert status[f"page:{page_id}:channel"] == outbox.SENT
    [post] = [m for m in world.fake.posts() if m.text.startswith("Page #")]
    assert post.channel == "C0INFRA0001"
