"""Slack's acks while a long alert batch is stored (run on purpose):

    .venv/bin/python -m pytest tests/bench/test_alert_batch.py -q -s
    OPSBOT_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python -m pytest tests/bench/test_alert_batch.py -q -s

A real `opsbot serve` process receives one Alertmanager webhook of OPSBOT_BENCH_ALERTS alerts
(default 400, each a new page) while signed support messages arrive at 5 a second, open loop:
each latency runs from the message's scheduled moment to its answer. The same messages are first
sent to the quiet server. Reported: ack p50/p99/max in both windows and their ratio, and the
longest ack wait against the batch's whole duration (what a batch stored in one transaction would
make Slack's requests wait on SQLite).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from bot.demo.fake_slack import FakeSlack
from bot.demo.story import fake_users
from tests.paging_samples import alertmanager_body
from tests.test_alert_intake import prometheus_alert
from tests.test_faults import ALERT_TOKEN, Process, environment, message, org_text

ALERTS = int(os.environ.get("OPSBOT_BENCH_ALERTS", "400"))
RATE = 5.0  # support messages a second


def ack_seconds(url: str, n: int, run: str, scheduled: float) -> float:
    delay = scheduled - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    body, headers = message(n, run)
    response = httpx.post(f"{url}/slack/events", content=body, headers=headers, timeout=120)
    assert response.status_code == 200
    return time.monotonic() - scheduled


def window(
    url: str, run: str, first: int, until: threading.Event | None, count: int
) -> list[float]:
    """Messages at RATE a second: `count` of them, or until `until` is set."""
    start, futures = time.monotonic(), []
    with ThreadPoolExecutor(32) as pool:
        n = 0
        while (until is None and n < count) or (until is not None and not until.is_set()):
            scheduled = start + n / RATE
            futures.append(pool.submit(ack_seconds, url, first + n, run, scheduled))
            n += 1
            time.sleep(max(0.0, scheduled - time.monotonic()))
        return [f.result() for f in futures]


def quantiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    return (
        ordered[len(ordered) // 2],
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        ordered[-1],
    )


def test_slack_acks_stay_fast_while_a_long_alert_batch_is_stored(dbs, tmp_path, capsys):
    fake = FakeSlack(fake_users()).start()
    config = tmp_path / "opsbot.yaml"
    config.write_text(org_text())
    server = Process(environment(dbs.fresh(), config, fake), tmp_path / "opsbot.log").ready()
    run = uuid.uuid4().hex[:6].upper()
    body = json.dumps(alertmanager_body(*(prometheus_alert(n) for n in range(ALERTS))))
    try:
        quiet = window(server.url, run, 0, None, 25)
        done = threading.Event()
        batch: dict[str, float] = {}

        def store_batch() -> None:
            started = time.monotonic()
            response = httpx.post(
                f"{server.url}/alerts/alertmanager",
                content=body,
                headers={"Authorization": f"Bearer {ALERT_TOKEN}"},
                timeout=1200,
            )
            batch["seconds"] = time.monotonic() - started
            batch["status"] = response.status_code
            done.set()

        thread = threading.Thread(target=store_batch)
        thread.start()
        during = window(server.url, run, 1000, done, 0)
        thread.join()
    finally:
        server.stop()
        fake.stop()
    assert batch["status"] == 202
    q, d = quantiles(quiet), quantiles(during)
    rows = [
        ("backend", dbs.backend),
        ("alerts in the batch", ALERTS),
        ("batch stored in (s)", round(batch["seconds"], 1)),
        ("acks: quiet p50 / p99 / max (ms)", " / ".join(f"{x * 1000:.0f}" for x in q)),
        ("acks: during p50 / p99 / max (ms)", " / ".join(f"{x * 1000:.0f}" for x in d)),
        ("acks during the batch", len(during)),
        ("p99 during / p99 quiet", round(d[1] / q[1], 1)),
        ("longest ack / batch duration", round(d[2] / batch["seconds"], 3)),
    ]
    with capsys.disabled():
        print()
        for name, value in rows:
            print(f"{name:<36} {value}")
    # Slack's requests are never held for the batch: the longest wait is a small part of it.
    assert d[2] < batch["seconds"] / 4 or ALERTS < 500
