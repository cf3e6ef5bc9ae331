"""On-call at scale (run on purpose: `.venv/bin/python -m pytest tests/bench/test_oncall_scale.py -q -s`).

Prints one table: each figure's time and peak memory (tracemalloc, a separate run so tracing does
not slow the timing), at a size and at 10x that size, and the growth ratio. Targets (issue 13):
who-is-on-call for 1,000 rotations x every hour of a year under 1 s, `/oncall now` for 100
rotations under 20 ms, config parse of 1,000 rotations under 1 s. The reference (per-instant,
uncached) who-is-on-call is timed on a sample, and the answers compared, for the ratio.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from bot.cli import settle_heap
from bot.config import parse_org
from bot.db import Database
from bot.oncall import lookup, service
from bot.oncall.models import Override
from bot.paging.load import weekly_load
from bot.paging.models import Page
from handlers import org_checks
from tests import oncall_reference as reference
from tests.bench.scale_org import scale_org_text

YEAR_START = datetime(2027, 1, 1, tzinfo=UTC)
HOURS = [YEAR_START + timedelta(hours=h) for h in range(24 * 365)]
NOW = datetime(2027, 12, 31, 12, tzinfo=UTC)
ROWS: list[tuple[str, str, float, float, float, float]] = []


def _timed(run: Callable[[], Any], repeat: int = 1) -> float:
    """The median wall time of `repeat` runs, in seconds."""
    times = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _peak(run: Callable[[], Any]) -> float:
    """Peak memory allocated during one run, in MB."""
    gc.collect()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def _row(name: str, size: str, small: Callable[[], Any], large: Callable[[], Any], repeat=1):
    t_small, t_large = _timed(small, repeat), _timed(large, repeat)
    m_small, m_large = _peak(small), _peak(large)
    ROWS.append((name, size, t_small, t_large, m_small, m_large))
    return t_small, t_large


def _org_with_covers(db: Database, rotations: int):
    org = parse_org(scale_org_text(rotations))
    with db.session() as session:
        for index in range(0, rotations, 10):  # a cover on every tenth rotation
            start = YEAR_START + timedelta(days=index % 300, hours=5)
            session.add(
                Override(
                    rotation_id=f"rot-{index}",
                    start=start,
                    end=start + timedelta(days=2),
                    person="U0COVER001",
                    created_by="U0ADMIN0001",
                    created_at=YEAR_START,
                )
            )
    return org


def _year_of_hours(db: Database, org, *, cold: bool = True) -> Callable[[], int]:
    ids = [r.id for r in org.rotations]

    def run() -> int:
        if cold:  # every timeline built from the database first
            lookup.STORE.clear()
        answers = 0
        with db.session() as session:
            lookup.prepare(session, org, ids)
            for pair in range(0, len(ids), 2):  # each pair is the other's secondary
                # Every hour's answer, as runs of hours that share one answer.
                runs = lookup.runs_over_each(session, org, ids[pair : pair + 2], HOURS)
                answers += sum(count for each in runs.values() for count, _ in each)
        assert answers == len(ids) * len(HOURS)
        return answers

    return run


def test_oncall_at_scale(dbs, world_factory):
    # ---- who is on call, every hour of a year ---------------------------------------------------
    # One database (PostgreSQL test runs have only one): the small org's rotations are the
    # large org's first hundred, covers included.
    small_db = large_db = Database(dbs.fresh())
    large_org = _org_with_covers(large_db, 1000)
    small_org = parse_org(scale_org_text(100))
    # As `opsbot serve` does once started (bot.cli.settle_heap): what start-up made, the config
    # included, is out of the garbage collector's reach, so a collection does not walk it.
    settle_heap()
    # The median of 3 runs each: on a shared 2-core VM one run can take twice another.
    _, year = _row(
        "who is on call, every hour of a year (cold)",
        "100 / 1,000 rotations",
        _year_of_hours(small_db, small_org),
        _year_of_hours(large_db, large_org),
        repeat=3,
    )
    _, year_warm = _row(
        "who is on call, every hour of a year (warm)",
        "100 / 1,000 rotations",
        _year_of_hours(small_db, small_org, cold=False),
        _year_of_hours(large_db, large_org, cold=False),
        repeat=3,
    )
    answers = 1000 * len(HOURS)

    # The reference and the cached per-call answer on a sample, compared.
    rng = random.Random(13)
    sample = [(f"rot-{rng.randrange(1000)}", rng.choice(HOURS)) for _ in range(200)]
    with large_db.session() as session:
        started = time.perf_counter()
        expected = [reference.who_is_on_call(session, large_org, r, at) for r, at in sample]
        reference_each = (time.perf_counter() - started) / len(sample)
        lookup.prepare(session, large_org, [r.id for r in large_org.rotations])
        started = time.perf_counter()
        fast = [service.who_is_on_call(session, large_org, r, at) for r, at in sample]
        cached_each = (time.perf_counter() - started) / len(sample)
    assert fast == expected

    # ---- /oncall now -----------------------------------------------------------------------------
    def now_through_service(db: Database, org) -> Callable[[], Any]:
        ids = [r.id for r in org.rotations]

        def run() -> Any:
            with db.session() as session:
                return service.who_is_on_call_each(session, org, ids, NOW)

        return run

    now_service = _row(
        "/oncall now, service function (warm)",
        "10 / 100 rotations",
        now_through_service(small_db, parse_org(scale_org_text(10))),
        now_through_service(small_db, small_org),
        repeat=50,
    )
    worlds = [world_factory(scale_org_text(n), NOW) for n in (10, 100)]

    def now_through_bolt(world) -> Callable[[], Any]:
        def run() -> Any:
            world.slack.command("/oncall", "now", user="U00000001")
            assert "Who is on call now" in world.last_ack()["text"]

        return run

    for world in worlds:
        now_through_bolt(world)()  # warm
    now_bolt = _row(
        "/oncall now, signed request through Bolt (warm)",
        "10 / 100 rotations",
        now_through_bolt(worlds[0]),
        now_through_bolt(worlds[1]),
        repeat=50,
    )

    # ---- config parse ----------------------------------------------------------------------------
    texts = {n: scale_org_text(n) for n in (100, 1000)}
    _, parse = _row(
        "config parse with every check",
        "100 / 1,000 rotations",
        lambda: parse_org(texts[100], checks=org_checks()),
        lambda: parse_org(texts[1000], checks=org_checks()),
        repeat=3,
    )

    # ---- pager load ------------------------------------------------------------------------------
    pages_db = Database(dbs.fresh())
    pages_org = parse_org(scale_org_text(2))

    def with_pages(count: int, rotation_id: str) -> tuple[Database, Any, str]:
        people = list(pages_org.rotation(rotation_id).members)
        kinds = ["business_impacting", "false_alarm", "deploy_noise", None]
        rows = [
            {
                "summary": f"page {i}",
                "source": "alertmanager",
                "status": "resolved",
                "policy_id": f"rotation:{rotation_id}",
                "policy": {},
                "labels": {},
                "notified": [],
                "messages": [],
                "rotation_id": rotation_id,
                "primary_user": people[i % len(people)],
                "classification": kinds[i % 4],
                "off_hours": i % 3 == 0,
                "fell_through": i % 7 == 0,
                "opened_at": NOW - timedelta(weeks=52) + timedelta(seconds=i * 600 % 31_000_000),
                "last_alert_at": NOW - timedelta(weeks=1),
            }
            for i in range(count)
        ]
        with pages_db.engine.begin() as connection:
            connection.execute(insert(Page), rows)
        return pages_db, pages_org, rotation_id

    small_pages, large_pages = with_pages(5_000, "rot-0"), with_pages(50_000, "rot-1")

    def load_of(db: Database, org, rotation_id: str, count: int) -> Callable[[], Any]:
        def run() -> Any:
            with db.session() as session:
                report = weekly_load(session, org, rotation_id, NOW, weeks=52)
            assert report.totals.pages == count
            return report

        return run

    _, pager = _row(
        "pager load, 52 weeks of one rotation",
        "5,000 / 50,000 pages",
        load_of(*small_pages, 5_000),
        load_of(*large_pages, 50_000),
    )

    # ---- the table -------------------------------------------------------------------------------
    lines = [
        f"{'figure':<50} {'sizes':<22} {'time':>9} {'10x time':>10} {'ratio':>6}"
        f" {'peak MB':>8} {'10x MB':>8} {'ratio':>6}",
    ]
    for name, size, t1, t2, m1, m2 in ROWS:
        lines.append(
            f"{name:<50} {size:<22} {_ms(t1):>9} {_ms(t2):>10} {t2 / t1:>6.1f}"
            f" {m1:>8.1f} {m2:>8.1f} {m2 / max(m1, 0.01):>6.1f}"
        )
    lines += [
        "",
        f"who is on call, 1,000 rotations x {len(HOURS)} hours: {_ms(year)} with the "
        f"timelines built, {_ms(year_warm)} once built "
        f"({year_warm / answers * 1e9:.0f} ns an answer; target < 1 s)",
        f"  reference (uncached) who_is_on_call: {reference_each * 1e3:.2f} ms a call, "
        f"so {reference_each * answers / 3600:.1f} h for the year; "
        f"{reference_each / (year / answers):,.0f}x the bulk answer",
        f"  cached who_is_on_call, one call: {cached_each * 1e6:.1f} us "
        f"({reference_each / cached_each:,.0f}x faster than the reference)",
        f"/oncall now, 100 rotations: {_ms(now_service[1])} in the service, "
        f"{_ms(now_bolt[1])} through Bolt (target < 20 ms)",
        f"config parse, 1,000 rotations: {_ms(parse)} (target < 1 s)",
        f"pager load over 50,000 pages: {_ms(pager)}",
    ]
    print("\n" + "\n".join(lines))
    for db in (large_db, pages_db):
        db.dispose()


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"
