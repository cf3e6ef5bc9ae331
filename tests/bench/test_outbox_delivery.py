"""Outbox benchmarks: fan-out and alert storm under Slack's rate limits; end to end throughput.

Run on purpose, once per backend (each prints one table):

    .venv/bin/python -m pytest tests/bench/test_outbox_delivery.py -q -s
    OPSBOT_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python -m pytest tests/bench/test_outbox_delivery.py -q -s

The fan-out and the storm go through a fake Slack that enforces Slack's published limits
(`bot/outbox/limits.py`) and answers 429 with Retry-After beyond them. The limits are compressed
in time by OPSBOT_BENCH_SPEEDUP (default 10: a channel takes 10 posts a second instead of one,
the workspace 50 instead of 5), for the fake and the sender alike, so each run takes minutes
instead of half an hour; every figure is a ratio to the limits' own minimum, or is converted
back to Slack's real limits, so it means the same at any speed. The end-to-end runs measure
opsbot itself (the fake does not rate limit there): signed requests into the real app, the
background sender posting to the fake Slack.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections import Counter
from typing import Any

import yaml
from slack_sdk import WebClient
from sqlmodel import col, func, select

from bot import outbox
from bot.clock import SystemClock
from bot.db import Database
from bot.demo.fake_slack import FakeSlack
from bot.demo.story import sample_org_text
from bot.demo.world import ALERT_TOKEN
from bot.outbox import OutboxMessage, OutboxSender
from bot.outbox.limits import RateLimiter, SlackLimits
from tests.paging_samples import alertmanager_alert, alertmanager_body

SPEEDUP = float(os.environ.get("OPSBOT_BENCH_SPEEDUP", "10"))
FANOUT, STORM, SUPPORT_MESSAGES, E2E_PAGES = 5000, 1000, 300, 100
STORM_BATCH = 10
AUTH = {"Authorization": f"Bearer {ALERT_TOKEN}"}
RESULTS: dict[str, dict[str, Any]] = {}


def paced_sender(db: Database, fake: FakeSlack, limits: SlackLimits | None) -> OutboxSender:
    client = WebClient(token="xoxb-bench", base_url=fake.api_url)
    # As the runtime paces a real deployment (bot/runtime.py).
    limiter = RateLimiter(limits, margin=0.95, spare=1) if limits is not None else None
    return OutboxSender(db, client, SystemClock(), limiter=limiter, workers=8)


def wait_for(condition, timeout: float) -> bool:
    tick = threading.Event()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        tick.wait(0.005)
    return condition()


def posted_keys(fake: FakeSlack) -> Counter[str]:
    """How many times Slack accepted a post carrying each outbox key."""
    with fake._lock:
        calls = [c for c in fake.calls if c.method == "chat.postMessage" and c.status == 200]
    return Counter(
        ((c.args.get("metadata") or {}).get("event_payload") or {}).get("key")
        for c in calls
        if c.response.get("ok")
    )


def first_post_at(fake: FakeSlack, key: str) -> float | None:
    with fake._lock:
        for c in fake.calls:
            meta = (c.args.get("metadata") or {}).get("event_payload") or {}
            if c.method == "chat.postMessage" and c.response.get("ok") and meta.get("key") == key:
                return c.at
    return None


def unsent(db: Database) -> int:
    with db.session() as session:
        return session.exec(
            select(func.count())
            .select_from(OutboxMessage)
            .where(col(OutboxMessage.status).in_([outbox.PENDING, outbox.SENDING]))
        ).one()


def test_fan_out_of_5000_owner_dms_uses_the_limit_and_a_page_cuts_in(db):
    limits = SlackLimits.published().scaled(SPEEDUP)
    fake = FakeSlack().start()
    fake.enforce(limits)
    sender = paced_sender(db, fake, limits)
    now = SystemClock().now()
    with db.session() as session:
        for n in range(FANOUT):
            outbox.post(session, f"migration:nudge:svc{n}:U0OWN{n:05d}", f"U0OWN{n:05d}", "x", now)
    started = time.perf_counter()
    sender.start(interval=0.05)
    try:
        assert wait_for(lambda: len(fake.messages) >= FANOUT // 2, timeout=600)
        with db.session() as session:
            outbox.post(session, "page:bench:dm:U0ONCALL01", "U0ONCALL01", "paged", now)
        paged_at = time.monotonic()
        sender.wake()
        assert wait_for(lambda: len(fake.messages) >= FANOUT + 1, timeout=900)
        elapsed = time.perf_counter() - started
        assert wait_for(lambda: unsent(db) == 0, timeout=30)  # the last results recorded
    finally:
        sender.stop()
        fake.stop()
    keys = posted_keys(fake)
    page_latency = first_post_at(fake, "page:bench:dm:U0ONCALL01") - paged_at
    minimum = limits.minimum_seconds("chat.postMessage", FANOUT + 1, channels=FANOUT + 1)
    RESULTS["fan-out: 5,000 owner DMs"] = {
        "rate / allowed": round(minimum / elapsed, 3),
        "lost": FANOUT + 1 - len(keys),
        "doubled": sum(1 for k in keys.values() if k > 1),
        "429s (all retried)": len(fake.rate_limited()),
        "unsent rows": unsent(db),
        "mid-run page, s at Slack's limits": round(page_latency * SPEEDUP, 2),
    }
    assert len(keys) == FANOUT + 1 and max(keys.values()) == 1
    assert unsent(db) == 0
    assert minimum / elapsed >= 0.9
    assert page_latency * SPEEDUP < 5


def storm_org() -> str:
    org = yaml.safe_load(sample_org_text())
    org["escalation_policies"].append(
        {"id": "data-default", "steps": [{"notify": "rotation:data-oncall", "after": "0m"}]}
    )
    org["alert_routes"].append({"match": {"team": "data"}, "policy": "data-default"})
    return yaml.safe_dump(org, sort_keys=False)


def test_alert_storm_of_1000_pages_uses_the_limit_and_another_teams_page_is_not_held(
    world_factory,
):
    limits = SlackLimits.published().scaled(SPEEDUP)
    world = world_factory(storm_org(), start=SystemClock().now())  # the sender's clock
    world.fake.enforce(limits)
    sender = paced_sender(world.db, world.fake, limits)
    sender.start(interval=0.05)
    other: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        # Alertmanager groups a storm's alerts into webhooks of several alerts each.
        for first in range(0, STORM, STORM_BATCH):
            body = alertmanager_body(
                *(
                    alertmanager_alert(f"Storm{n}", fingerprint=f"storm{n:04d}")
                    for n in range(first, first + STORM_BATCH)
                )
            )
            assert (
                world.http.post("/alerts/alertmanager", json=body, headers=AUTH).status_code == 202
            )
            sender.wake()
            if first == STORM // 2:
                data = alertmanager_alert("DataLag", fingerprint="data01", labels={"team": "data"})
                answer = world.http.post(
                    "/alerts/alertmanager", json=alertmanager_body(data), headers=AUTH
                )
                other = {"at": time.monotonic(), "page": answer.json()["page_ids"][0]}
        accepted = time.perf_counter() - started
        assert wait_for(
            lambda: unsent(world.db) == 0 and len(world.fake.messages) >= 2 * STORM + 2, 900
        )
        elapsed = time.perf_counter() - started
    finally:
        sender.stop()
    keys = posted_keys(world.fake)
    dm_keys = [k for k in keys if k and k.startswith(f"page:{other['page']}:dm:")]
    other_latency = first_post_at(world.fake, dm_keys[0]) - other["at"]
    counts = Counter(m.channel for m in world.fake.messages)
    minimum = max(
        limits.minimum_seconds("chat.postMessage", n, channels=1) for n in counts.values()
    )
    RESULTS["alert storm: 1,000 pages"] = {
        "rate / allowed": round(minimum / elapsed, 3),
        "alerts accepted / s (webhooks of 10)": round((STORM + 1) / accepted, 1),
        "lost": 2 * (STORM + 1) - sum(1 for k in keys if k and k.startswith("page:")),
        "doubled": sum(1 for k in keys.values() if k > 1),
        "429s (all retried)": len(world.fake.rate_limited()),
        "unsent rows": unsent(world.db),
        "mid-run page, s at Slack's limits": round(other_latency * SPEEDUP, 2),
    }
    assert max(keys.values()) == 1
    assert RESULTS["alert storm: 1,000 pages"]["lost"] == 0
    assert other_latency * SPEEDUP < 5


def test_end_to_end_support_messages_and_pages(world_factory, dbs):
    world = world_factory(start=SystemClock().now())  # the sender's clock: nothing expires
    world.slack.after = None  # the background sender delivers, as in production
    sender = paced_sender(world.db, world.fake, None)
    sender.start(interval=0.05)
    try:
        started = time.perf_counter()
        for n in range(SUPPORT_MESSAGES):
            world.slack.message("C0HELP00001", "U0DEV00001", f"The build {n} fails with exit 137")
            sender.wake()
        accepted = time.perf_counter() - started

        def replied() -> int:  # tickets with the bot's first reply in their thread
            return len({m.thread_ts for m in world.fake.posts("C0HELP00001") if m.thread_ts})

        assert wait_for(lambda: replied() >= SUPPORT_MESSAGES, 300)
        support_elapsed = time.perf_counter() - started
        latencies = []
        for n in range(E2E_PAGES):
            body = alertmanager_body(alertmanager_alert(f"E2E{n}", fingerprint=f"e2e{n:04d}"))
            sent = time.monotonic()
            page = world.http.post("/alerts/alertmanager", json=body, headers=AUTH).json()
            sender.wake()
            prefix = f"page:{page['page_ids'][0]}:dm:"
            assert wait_for(
                lambda p=prefix: any(k and k.startswith(p) for k in posted_keys(world.fake)), 60
            )
            key = next(k for k in posted_keys(world.fake) if k and k.startswith(prefix))
            latencies.append(first_post_at(world.fake, key) - sent)
    finally:
        sender.stop()
    latencies.sort()
    RESULTS["end to end"] = {
        "support msgs/s (request to reply)": round(SUPPORT_MESSAGES / support_elapsed, 1),
        "support msgs/s accepted": round(SUPPORT_MESSAGES / accepted, 1),
        "page alert to first DM p50 ms": round(statistics.median(latencies) * 1000, 1),
        "page alert to first DM p95 ms": round(latencies[int(len(latencies) * 0.95)] * 1000, 1),
    }


def test_print_the_table(dbs):
    backend = "PostgreSQL" if os.environ.get("OPSBOT_TEST_DATABASE_URL") else "SQLite"
    print(f"\n\noutbox benchmarks on {backend}, limits compressed {SPEEDUP:g}x")
    for scenario, figures in RESULTS.items():
        print(f"\n| {scenario} | |\n|---|---|")
        for name, value in figures.items():
            print(f"| {name} | {value} |")
