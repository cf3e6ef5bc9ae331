"""CPU per answer: what one answer to Slack costs the serving process, opsbot against a bare Bolt
app with no-op listeners, measured in the same run.

    OPSBOT_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python -m pytest tests/bench/test_ack_cpu.py -q -s

Latency under load (test_ack_latency.py) moves with whatever else the host runs; the CPU a
process spends per answer moves much less, so this says where an answer's cost went after a
change even in a noisy hour. Each app gets OPSBOT_BENCH_ANSWERS requests (default 2,000, after
200 to warm up), one after the other on one keep-alive connection, and the process's CPU time
(user + system, from /proc) is divided by their number. opsbot runs as `serve --ack-only` beside
an `opsbot worker`, which is stopped (SIGSTOP) while the answers are counted: the figure is the
answering process's alone, and the worker's work is not in it. "wall" is the mean time from
sending a request to its answer, one at a time. The worker is then let go, and "work cpu" is
its CPU time until it has done the work of every request opsbot stored meanwhile, divided by
their number: the work of one stored request (its claim, Bolt's replay, the listener, its reply
and the row marked done); "-" for a request that stores nothing. Same processes, requests and
fake Slack as the latency benchmark; the database is PostgreSQL when configured, else SQLite
(the latency benchmark's backend list, OPSBOT_BENCH_BACKENDS, picks).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from bot.db import Database
from tests.bench.test_ack_latency import (
    Process,
    Requests,
    bare,  # noqa: F401 (a fixture)
    databases,
    drain,
    fake_slack,  # noqa: F401 (a fixture)
    open_page,
    serve_opsbot,
    stored,
)

ANSWERS = int(os.environ.get("OPSBOT_BENCH_ANSWERS", "2000"))
WARM_UP = 200
KINDS = ("page button", "/oncall now")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process `pid` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def per_answer(target: Process, requests: Requests, kind: str) -> tuple[float, float]:
    """(CPU ms, wall ms) per answer of `target`, over ANSWERS requests of `kind` in a row."""
    made = requests.make(kind, WARM_UP + ANSWERS)
    with httpx.Client(timeout=30) as client:
        for request in made[:WARM_UP]:
            client.post(f"{target.url}/slack/events", content=request.body, headers=request.headers)
        cpu_before, started = cpu_seconds(target.process.pid), time.perf_counter()
        for request in made[WARM_UP:]:
            answer = client.post(
                f"{target.url}/slack/events", content=request.body, headers=request.headers
            )
            assert answer.status_code == 200, answer.text
        wall = time.perf_counter() - started
        cpu = cpu_seconds(target.process.pid) - cpu_before
    return 1000 * cpu / ANSWERS, 1000 * wall / ANSWERS


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads CPU time from /proc")
def test_cpu_per_answer_against_a_bare_bolt_app(fake_slack, bare, tmp_path):  # noqa: F811
    rows = []
    for backend, url in databases(tmp_path):
        db = Database(url)
        (tmp_path / backend).mkdir()
        opsbot = serve_opsbot(url, fake_slack, tmp_path / backend, "ack-only")
        serve, worker = opsbot.processes
        try:
            requests = Requests(fake_slack.removesuffix("/api/"))
            requests.page_message = open_page(serve, fake_slack)
            for kind in KINDS:
                drain(db)  # the worker is stopped between statements, not holding a lock
                os.kill(worker.process.pid, signal.SIGSTOP)
                try:
                    bare_cpu, bare_wall = per_answer(bare, requests, kind)
                    before = stored(db)
                    opsbot_cpu, opsbot_wall = per_answer(serve, requests, kind)
                    work = stored(db) - before
                    worker_before = cpu_seconds(worker.process.pid)
                finally:
                    os.kill(worker.process.pid, signal.SIGCONT)
                drain(db)  # the work of what was just answered, and nothing else
                worker_cpu = cpu_seconds(worker.process.pid) - worker_before
                work_cpu = 1000 * worker_cpu / work if work else None
                rows.append((backend, kind, bare_cpu, opsbot_cpu, bare_wall, opsbot_wall, work_cpu))
        finally:
            opsbot.stop()
            db.dispose()
    print()
    print(f"CPU per answer (ms), {ANSWERS} answers in a row, serve --ack-only")
    print(
        "backend     request      bare cpu  opsbot cpu  ratio  bare wall  opsbot wall  ratio"
        "  work cpu"
    )
    for backend, kind, bare_cpu, opsbot_cpu, bare_wall, opsbot_wall, work_cpu in rows:
        print(
            f"{backend:<11} {kind:<12} {bare_cpu:8.3f}  {opsbot_cpu:10.3f}"
            f"  {opsbot_cpu / bare_cpu:5.2f}  {bare_wall:9.3f}  {opsbot_wall:11.3f}"
            f"  {opsbot_wall / bare_wall:5.2f}  {'-' if work_cpu is None else f'{work_cpu:8.3f}'}"
        )
