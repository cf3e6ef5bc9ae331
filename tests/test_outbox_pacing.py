"""Using Slack's whole rate limit: pacing per method and per channel, in parallel, never 429.

Buckets and the fake Slack read a hand-moved monotonic clock, so no test waits on wall time
except for the background loop's own threads to finish their work.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import outbox
from bot.clock import FrozenClock
from bot.demo.fake_slack import FakeSlack
from bot.outbox import OutboxSender
from bot.outbox.limits import TIERS, Rate, RateLimiter, SlackLimits

START = datetime(2026, 11, 16, 14, 30, tzinfo=UTC)


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---- the limits table -----------------------------------------------------------------------------


def test_posting_allows_a_short_burst_then_one_a_second_per_channel():
    ticks = Ticks()
    limiter = RateLimiter(SlackLimits.published(), monotonic=ticks)
    burst = [limiter.take("chat.postMessage", "C0INFRA0001") for _ in range(3)]
    assert burst == [0.0, 0.0, 0.0]
    assert limiter.take("chat.postMessage", "C0INFRA0001") == pytest.approx(1.0)
    assert limiter.take("chat.postMessage", "C0OTHER0001") == 0.0  # another channel is free
    ticks.now += 1.0
    assert limiter.take("chat.postMessage", "C0INFRA0001") == 0.0
    assert limiter.take("chat.postMessage", "C0INFRA0001") > 0


def test_each_method_has_its_tier_and_unknown_methods_tier_two():
    limits = SlackLimits.published()
    assert limits.buckets("chat.update", "C1") == [("chat.update", TIERS[3])]
    assert limits.buckets("usergroups.users.update", None) == [
        ("usergroups.users.update", TIERS[2])
    ]
    assert limits.buckets("views.publish", None) == [("views.publish", TIERS[4])]
    assert limits.buckets("admin.something", None) == [("admin.something", TIERS[2])]
    assert TIERS[3].per_second * 60 == pytest.approx(50)


def test_a_tier_two_method_gets_twenty_a_minute_after_its_burst():
    ticks = Ticks()
    limiter = RateLimiter(SlackLimits.published(), monotonic=ticks)
    allowed = 0
    for _ in range(600):  # one minute in tenths of a second
        if limiter.take("conversations.setTopic") == 0.0:
            allowed += 1
        ticks.now += 0.1
    assert allowed == pytest.approx(20 + TIERS[2].burst, abs=1)


@pytest.mark.parametrize(("spare", "refused"), [(0, True), (1, False)])
def test_a_spare_token_keeps_a_slow_first_call_from_making_the_next_look_early(spare, refused):
    # The channel's bucket is full; the first call of a burst takes half a second to reach
    # Slack, the others none. Slack's bucket wasted that half second full, so without a spare
    # token the sender believes in half a token Slack does not have.
    ticks = Ticks()
    ours = RateLimiter(SlackLimits.published(), spare=spare, monotonic=ticks)
    slack = RateLimiter(SlackLimits.published(), monotonic=ticks)
    assert ours.take("chat.postMessage", "C0INFRA0001") == 0.0
    ticks.now += 0.5
    assert slack.take("chat.postMessage", "C0INFRA0001") == 0.0  # the slow call arrives
    answers = []
    for _ in range(300):  # three seconds: each call the sender allows arrives at once
        if ours.take("chat.postMessage", "C0INFRA0001") == 0.0:
            answers.append(slack.take("chat.postMessage", "C0INFRA0001"))
        ticks.now += 0.01
    assert any(wait > 0 for wait in answers) is refused
    assert len(answers) >= 3 - spare + 2  # the rest of the burst, then one a second


def test_the_minimum_time_of_a_fan_out_follows_the_tightest_bucket():
    limits = SlackLimits(
        methods={"chat.postMessage": Rate(10, 5)},
        per_channel={"chat.postMessage": Rate(1, 2)},
    )
    assert limits.minimum_seconds("chat.postMessage", 105, channels=105) == pytest.approx(10)
    assert limits.minimum_seconds("chat.postMessage", 12, channels=1) == pytest.approx(10)
    assert limits.scaled(2).minimum_seconds("chat.postMessage", 105, 105) == pytest.approx(5)


# ---- the fake enforces them -----------------------------------------------------------------------


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def fake(ticks: Ticks) -> Iterator[FakeSlack]:
    slack = FakeSlack(monotonic=ticks).start()
    yield slack
    slack.stop()


def refused(client: WebClient, method: str, args: dict):
    with pytest.raises(SlackApiError) as raised:
        client.api_call(method, json=args)
    return raised.value.response


def test_the_fake_answers_429_with_retry_after_beyond_the_channel_limit(fake, ticks):
    fake.enforce()
    client = WebClient(token="xoxb-test", base_url=fake.api_url, retry_handlers=[])
    for n in range(3):
        client.chat_postMessage(channel="C0INFRA0001", text=f"burst {n}")
    answer = refused(client, "chat.postMessage", {"channel": "C0INFRA0001", "text": "x"})
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "1"
    assert answer["error"] == "ratelimited"
    assert client.chat_postMessage(channel="C0OTHER0001", text="elsewhere")["ok"]
    ticks.now += 1
    assert client.chat_postMessage(channel="C0INFRA0001", text="a second later")["ok"]
    assert len(fake.rate_limited("chat.postMessage")) == 1


def test_the_fake_answers_a_tier_one_method_with_a_long_retry_after(fake):
    fake.enforce(SlackLimits(methods={"team.info": TIERS[1]}))
    client = WebClient(token="xoxb-test", base_url=fake.api_url, retry_handlers=[])
    client.team_info()
    client.team_info()
    answer = refused(client, "team.info", {})
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "60"


def test_the_fake_fails_every_call_during_an_outage_window(fake, ticks):
    fake.outage(240, status=503, error="service_unavailable", after=10)
    client = WebClient(token="xoxb-test", base_url=fake.api_url, retry_handlers=[])
    assert client.chat_postMessage(channel="C1", text="before")["ok"]
    ticks.now += 10
    answer = refused(client, "chat.postMessage", {"channel": "C1", "text": "during"})
    assert answer.status_code == 503
    ticks.now += 240
    assert client.chat_postMessage(channel="C1", text="after")["ok"]


# ---- the parallel sender keeps to them ------------------------------------------------------------


def test_paced_drain_sends_what_the_limits_allow_now_and_the_rest_later(db, fake, ticks):
    fake.enforce()
    clock = FrozenClock(START)
    limiter = RateLimiter(SlackLimits.published(), monotonic=ticks)
    client = WebClient(token="xoxb-test", base_url=fake.api_url, retry_handlers=[])
    sender = OutboxSender(db, client, clock, limiter=limiter)
    with db.session() as session:
        for n in range(6):
            outbox.post(session, f"notice:{n}", "C0INFRA0001", f"notice {n}", START)
        outbox.post(session, "page:1:channel", "C0OTHER0001", "page", START)
    assert sender.drain() == 4  # the page, and a burst of three into the busy channel
    ticks.now += 1
    assert sender.drain() == 1
    ticks.now += 2
    assert sender.drain() == 2
    assert fake.rate_limited() == []
    texts = [c.args["text"] for c in fake.calls_to("chat.postMessage")]
    assert texts == ["page"] + [f"notice {n}" for n in range(6)]


def wait_until(condition, timeout: float = 30.0) -> bool:
    done = threading.Event()
    for _ in range(int(timeout * 100)):
        if condition():
            return True
        done.wait(0.01)
    return condition()


def test_the_background_sender_posts_in_parallel_each_once_in_channel_order(db):
    limits = SlackLimits.published().scaled(50)  # 50 posts a second per channel
    fake = FakeSlack().start()
    try:
        fake.enforce(limits)
        client = WebClient(token="xoxb-test", base_url=fake.api_url)
        sender = OutboxSender(
            db, client, FrozenClock(START), limiter=RateLimiter(limits, margin=0.9), workers=4
        )
        with db.session() as session:
            for n in range(120):
                outbox.post(session, f"notice:{n}", f"C0CHAN{n % 6:05d}", f"{n}", START)
        sender.start(interval=0.05)
        try:
            assert wait_until(lambda: len(fake.posts()) >= 120)
        finally:
            sender.stop()
        assert sorted(int(m.text) for m in fake.posts()) == list(range(120))
        for channel in {m.channel for m in fake.posts()}:
            order = [int(m.text) for m in fake.posts(channel)]
            assert order == sorted(order)
        assert fake.rate_limited() == []
    finally:
        fake.stop()


def test_the_background_loop_survives_its_own_exceptions(db, monkeypatch):
    fake = FakeSlack().start()
    try:
        sender = OutboxSender(
            db,
            WebClient(token="xoxb-test", base_url=fake.api_url),
            FrozenClock(START),
            loop_backoff=0.01,
        )
        real_due = sender._due
        failures = iter([RuntimeError("database is locked"), OSError("connection reset")])

        def flaky_due(*args):
            failure = next(failures, None)
            if failure is not None:
                raise failure
            return real_due(*args)

        monkeypatch.setattr(sender, "_due", flaky_due)
        with db.session() as session:
            outbox.post(session, "k", "C0INFRA0001", "after two failed rounds", START)
        sender.start(interval=0.05)
        try:
            assert wait_until(lambda: len(fake.posts()) == 1)
        finally:
            sender.stop()
        assert fake.posts()[0].text == "after two failed rounds"
    finally:
        fake.stop()


def test_wake_ups_during_a_database_outage_do_not_cut_the_loops_backoff_short(db, monkeypatch):
    """Every acknowledged request wakes the sender; while the database is away those wake-ups
    must not turn the backoff into a busy loop (which also reaches the cap at once and leaves
    the sender idle long after the database is back)."""
    fake = FakeSlack().start()
    try:
        sender = OutboxSender(
            db,
            WebClient(token="xoxb-test", base_url=fake.api_url),
            FrozenClock(START),
            loop_backoff=0.2,
        )
        sender.jitter = lambda delay: delay
        rounds: list[float] = []
        outage = threading.Event()
        outage.set()
        real_due = sender._due

        def due_while_up(*args):
            if outage.is_set():
                rounds.append(time.monotonic())
                raise OSError("connection refused")
            return real_due(*args)

        monkeypatch.setattr(sender, "_due", due_while_up)
        with db.session() as session:
            outbox.post(session, "k", "C0INFRA0001", "after the outage", START)
        sender.start(interval=0.05)
        try:
            assert wait_until(lambda: len(rounds) >= 1)
            first = rounds[0]
            while time.monotonic() - first < 0.5:  # a burst of requests, each waking the sender
                sender.wake()
                time.sleep(0.005)
            # 0.2 s then 0.4 s of backoff: the first try and at most two more, not dozens.
            assert len(rounds) <= 3, len(rounds)
            outage.clear()
            assert wait_until(lambda: len(fake.posts()) == 1)
        finally:
            sender.stop()
    finally:
        fake.stop()


def test_a_busy_channel_does_not_hold_back_the_channels_queued_behind_it(db, fake, ticks):
    fake.enforce()
    client = WebClient(token="xoxb-test", base_url=fake.api_url, retry_handlers=[])
    limiter = RateLimiter(SlackLimits.published(), monotonic=ticks)
    sender = OutboxSender(db, client, FrozenClock(START), limiter=limiter, batch=20)
    with db.session() as session:
        for n in range(100):
            outbox.post(session, f"support:ticket:{n}:reply", "C0HELP00001", f"reply {n}", START)
        outbox.post(session, "oncall:handoff:infra", "C0INFRA0001", "handoff", START)
    sender.drain()
    assert "handoff" in [m.text for m in fake.posts("C0INFRA0001")]
    assert len(fake.posts("C0HELP00001")) == 3  # its burst; the rest at one a second
    assert fake.rate_limited() == []


def test_a_parallel_round_looks_past_lanes_whose_rows_fill_a_page_of_due_rows(db, fake, ticks):
    # Two channels with fifty posts each are queued before a third channel's one post: the first
    # page of due rows holds only the first channel's; the round reads on past the lanes it has
    # seen, so one round starts all three channels (a storm never hides another team's page).
    fake.enforce()
    client = WebClient(token="xoxb-test", base_url=fake.api_url, retry_handlers=[])
    limiter = RateLimiter(SlackLimits.published(), monotonic=ticks)
    sender = OutboxSender(db, client, FrozenClock(START), limiter=limiter, workers=8)
    with db.session() as session:
        for channel in ("C0STORM0001", "C0STORM0002"):
            for n in range(50):
                outbox.post(session, f"notice:{channel}:{n}", channel, f"{n}", START)
        outbox.post(session, "notice:other", "C0OTHER0001", "other team", START)
    jobs, _ = sender._round(8, one_per_lane=True)
    assert [job.payload["channel"] for job in jobs] == ["C0STORM0001", "C0STORM0002", "C0OTHER0001"]
    assert [job.key for job in jobs][:2] == ["notice:C0STORM0001:0", "notice:C0STORM0002:0"]
