"""Support report at scale: 10,000 and 100,000 tickets, time and peak memory, and how they grow.

Run on purpose, once per backend (each prints one table):

    .venv/bin/python -m pytest tests/bench/test_support_report_scale.py -q -s
    OPSBOT_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python -m pytest tests/bench/test_support_report_scale.py -q -s

The tickets (with their resolve/reopen history, about two events each) are bulk-inserted with
SQL. The report covers every ticket of the queue (95 % of them; the rest are another queue's).
Time is the best of three runs without tracing; peak memory is a separate traced run
(tracemalloc slows allocation down). The per-ticket reference the report replaced (rows and each
ticket's history loaded one ticket at a time) is timed at 10,000 for comparison.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from bot.db import Database
from bot.support.reporting import ticket_report
from tests.support_samples import insert_tickets
from tests.test_support_report_db import reference

START = datetime(2026, 9, 7, 4, 0, tzinfo=UTC)
END = START + timedelta(weeks=12)
# Every ticket the samples make (opened from a week before START to a day after END) is in it.
WINDOW = (START - timedelta(days=8), END + timedelta(days=2))
SIZES = (10_000, 100_000)


def timed(db: Database) -> tuple[float, object]:
    best, found = float("inf"), None
    for _ in range(3):
        with db.session() as session:
            started = time.perf_counter()
            found = ticket_report(session, "infra-help", *WINDOW)
            best = min(best, time.perf_counter() - started)
    return best, found


def peak_mb(db: Database) -> float:
    tracemalloc.start()
    try:
        with db.session() as session:
            ticket_report(session, "infra-help", *WINDOW)
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def test_support_report_over_100000_tickets(dbs):
    figures: dict[int, dict[str, float]] = {}
    for size in SIZES:
        db = Database(dbs.fresh())
        try:
            insert_tickets(db, size, START, END)
            if db.engine.dialect.name == "postgresql":  # fresh statistics, as after autovacuum
                with db.engine.begin() as connection:
                    connection.execute(text("ANALYZE support_tickets, support_ticket_events"))
            seconds, found = timed(db)
            figures[size] = {"s": seconds, "mb": peak_mb(db), "tickets": found.total}
            if size == SIZES[0]:
                started = time.perf_counter()
                expected = reference(db, "infra-help", *WINDOW)
                figures[size]["reference s"] = time.perf_counter() - started
                assert (found.total, found.still_open) == (expected.total, expected.still_open)
        finally:
            db.dispose()
    small, large = figures[SIZES[0]], figures[SIZES[1]]
    backend = "PostgreSQL" if os.environ.get("OPSBOT_TEST_DATABASE_URL") else "SQLite"
    print(f"\n\nsupport report on {backend}\n")
    print("| tickets | report s | peak MB (tracemalloc) |\n|---|---|---|")
    for size, row in figures.items():
        print(f"| {size:,} ({row['tickets']:,} in the window) | {row['s']:.3f} | {row['mb']:.1f} |")
    print(
        f"| growth 10x tickets | {large['s'] / small['s']:.1f}x | {large['mb'] / small['mb']:.1f}x |"
    )
    print(
        f"| 100k / 2 s target | {large['s'] / 2:.2f} | |\n"
        f"| per-ticket reference at 10k / report at 10k | "
        f"{small['reference s'] / small['s']:.0f}x slower | |"
    )
    assert large["tickets"] >= 0.9 * SIZES[1]
    assert large["s"] < 2.0
