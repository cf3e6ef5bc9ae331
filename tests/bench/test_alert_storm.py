"""Alert storm benchmark (run on purpose: `.venv/bin/python -m pytest tests/bench -q`).

500 alerts over 50 fingerprints in one minute, each webhook its own HTTP request, the outbox
worker draining as time passes, as it would in production. Reported as ratios so the figures mean the same on
any machine: Slack posts per alert, and time per storm alert relative to a single alert arriving
in a quiet system.
"""

from __future__ import annotations

import time

from sqlmodel import select

from bot.demo.world import ALERT_TOKEN
from bot.paging.models import Page
from tests.paging_samples import alertmanager_alert, alertmanager_body

ALERTS, FINGERPRINTS, DRAIN_EVERY, STORM_SECONDS = 500, 50, 50, 60
AUTH = {"Authorization": f"Bearer {ALERT_TOKEN}"}


def _send(world, fingerprint: str) -> None:
    body = alertmanager_body(alertmanager_alert(f"Storm{fingerprint}", fingerprint=fingerprint))
    response = world.http.post("/alerts/alertmanager", json=body, headers=AUTH)
    assert response.status_code == 202


def test_alert_storm_costs_few_posts_and_little_time_per_alert(world_factory, capsys):
    quiet = world_factory()
    singles = []
    for index in range(20):  # a single alert (a new page) into a quiet system, twenty times
        started = time.perf_counter()
        _send(quiet, f"single{index}")
        quiet.settle()
        singles.append(time.perf_counter() - started)
    single = sorted(singles)[len(singles) // 2]

    world = world_factory()
    started = time.perf_counter()
    for index in range(ALERTS):
        _send(world, f"fp{index % FINGERPRINTS:02d}")
        if (index + 1) % DRAIN_EVERY == 0:
            world.advance(seconds=STORM_SECONDS * DRAIN_EVERY / ALERTS)
    world.advance(seconds=30)  # the last batched edits go out
    storm = (time.perf_counter() - started) / ALERTS

    posts = sum(  # other capabilities post as time passes (the 10:00 handoff): not counted
        c.args["text"].startswith("Page #") for c in world.fake.calls_to("chat.postMessage")
    )
    updates = len(world.fake.calls_to("chat.update"))
    with world.db.session() as session:
        pages = session.exec(select(Page)).all()
    figures = {
        "pages": len(pages),
        "posts per alert": round(posts / ALERTS, 3),
        "edits per alert": round(updates / ALERTS, 3),
        "time per storm alert / single alert": round(storm / single, 2),
        "single alert ms": round(single * 1000, 1),
        "storm alert ms": round(storm * 1000, 1),
    }
    with capsys.disabled():
        print("\nalert storm:", figures)

    assert len(pages) == FINGERPRINTS
    assert all(p.repeat_count == ALERTS // FINGERPRINTS for p in pages)
    assert posts == FINGERPRINTS * 2  # one DM and one channel post per page, never per alert
    # Repeats are batched into about one edit per message per 30 seconds, whatever their number.
    assert updates <= FINGERPRINTS * 2 * 3
    # A repeat does less than opening a page; it must not grow with the storm.
    assert storm / single < 2.0
