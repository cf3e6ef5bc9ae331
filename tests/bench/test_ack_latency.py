"""Ack latency under a steady rate: how long Slack waits for opsbot's answer, against a bare Bolt
app with no-op listeners measured in the same run.

One command (SQLite always; PostgreSQL too when OPSBOT_TEST_DATABASE_URL is set), one table:

    OPSBOT_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python -m pytest tests/bench/test_ack_latency.py -q -s

Two deployments of opsbot, each measured: *in-process*, a real `opsbot serve` process with its
defaults (the inbox worker, scheduler and outbox sender in the same process), and *ack-only*,
`opsbot serve --ack-only` (answers and stores only) beside an `opsbot worker` process that does
the work (OPSBOT_BENCH_TOPOLOGIES picks them). They and the bare app (`tests/bench/ack_apps.py`,
Bolt's own Starlette adapter, served by uvicorn with opsbot's options) each run in their own
process, and so does the fake Slack the work phase talks to. The load is open-loop: requests
leave on schedule whatever the answers, and each latency runs from the request's scheduled
moment to its answer, so a server that falls behind is charged for the queue it causes. Three
kinds of request: a support message (Events API, becomes a ticket), `/oncall now` (slash
command, answered in the ack) and a page button (block_actions on the real message of a page
opened by an alert). Between opsbot's windows the benchmark waits until
the inbox and the outbox are empty, so each window starts without the previous one's work.

For each kind and rate, windows of the bare app and of opsbot alternate, OPSBOT_BENCH_ROUNDS
(default 5) of each, OPSBOT_BENCH_WINDOW seconds long (default 2), and each app's percentiles
are over all its windows: a moment the host stalls (a shared VM's neighbours) then tends to
fall on both apps rather than on one. "median round ratio" is the median over the rounds of
opsbot's p99 over the bare app's in the same round, which one stalled round cannot move. The
generator collects its own garbage between windows and not during them: a full collection of
its heap stalled it for 100-200 ms, and every request in flight was charged for it, in whichever
app's window it fell.
OPSBOT_BENCH_RATES (default 20,50,100 requests/s) changes the load; OPSBOT_BENCH_BACKENDS
(default sqlite,postgresql) and OPSBOT_BENCH_KINDS pick the backends and the kinds of request.
"drain s" is the longest opsbot then took to finish the work of what it had accepted (the next
window starts after it). The "gen lag" column is the load generator's own lateness (p99, ms):
small means the generator kept its schedule, so the bare app's figures are the floor of this
machine.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk import WebClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import func, select

from bot.db import Database, upgrade
from bot.demo.chapter_paging import ALERT
from bot.demo.driver import API_APP_ID, sign
from bot.demo.fake_slack import TEAM_ID
from bot.demo.story import sample_org_text
from bot.inbox import InboxEvent
from tests.harness import PG_ENV

RATES = [int(r) for r in os.environ.get("OPSBOT_BENCH_RATES", "20,50,100").split(",")]
WINDOW = float(os.environ.get("OPSBOT_BENCH_WINDOW", "2"))
# Windows of the bare app and of opsbot alternate, ROUNDS of each per rate, pooled: a moment the
# host itself stalls (another VM on the same cores) then falls on both apps alike.
ROUNDS = int(os.environ.get("OPSBOT_BENCH_ROUNDS", "5"))
BACKENDS = os.environ.get("OPSBOT_BENCH_BACKENDS", "sqlite,postgresql").split(",")
SLACK_LIMIT = 3.0  # seconds Slack waits for an ack
DRAIN_TIMEOUT = 300.0
SECRET = "bench-signing-secret"
ALERT_TOKEN = "bench-alert-token"
HELP = "C0HELP00001"  # the sample org's support channel
PAGES = "C0INFRA0001"  # where the infra team's pages are posted
ASKER, ON_CALL_ASKER, ADMIN = "U0APP00001", "U0ENG00001", "U0VP000001"
ROOT = Path(__file__).resolve().parents[2]
# in-process: one `serve` process does everything (its defaults); ack-only: `serve --ack-only`
# answers and stores, and an `opsbot worker` process beside it does the work.
TOPOLOGIES = os.environ.get("OPSBOT_BENCH_TOPOLOGIES", "in-process,ack-only").split(",")
WORKER_NICE = int(os.environ.get("OPSBOT_BENCH_WORKER_NICE", "10"))
# Support messages last: their work takes longest to drain, and the last window's need not be.
KINDS = tuple(
    os.environ.get("OPSBOT_BENCH_KINDS", "page button,/oncall now,support message").split(",")
)


# ---- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A server process on its own port, up once its /healthz answers."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log.open("ab")
        self.process = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{args} exited with {self.process.returncode}; see {log}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code in (200, 503):
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"{args} did not start; see {log}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def base_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "SLACK_SIGNING_SECRET": SECRET}


@pytest.fixture(scope="module")
def fake_slack(tmp_path_factory) -> Iterator[str]:
    """The fake Slack Web API in its own process; yields its API URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.ack_apps", "fake-slack"],
        env=base_env(),
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    api_url = process.stdout.readline().decode().strip()
    try:
        yield api_url
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(scope="module")
def bare(fake_slack, tmp_path_factory) -> Iterator[Process]:
    port = free_port()
    log = tmp_path_factory.mktemp("bare") / "bare.log"
    process = Process(
        [sys.executable, "-m", "tests.bench.ack_apps", "bare", str(port), fake_slack],
        base_env(),
        log,
        port,
    )
    yield process
    process.stop()


def databases(tmp: Path) -> Iterator[tuple[str, str]]:
    """(backend, URL): a migrated SQLite file, then a fresh PostgreSQL database if configured."""
    if "sqlite" in BACKENDS:
        sqlite = f"sqlite:///{tmp / 'bench.db'}"
        upgrade(sqlite)
        yield "sqlite", sqlite
    base_url = os.environ.get(PG_ENV)
    if not base_url or "postgresql" not in BACKENDS:
        return
    base = make_url(base_url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"opsbot_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield "postgresql", url.replace("postgresql+psycopg://", "postgresql://", 1)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Deployment:
    """`opsbot serve` and, in the ack-only topology, an `opsbot worker` beside it."""

    def __init__(self, processes: list[Process]) -> None:
        self.processes = processes
        self.url = processes[0].url

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


def serve_opsbot(url: str, api_url: str, tmp: Path, topology: str = "in-process") -> Deployment:
    config = tmp / "opsbot.yaml"
    config.write_text(sample_org_text())
    env = {
        **base_env(),
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_API_URL": api_url,
        "DATABASE_URL": url,
        "OPSBOT_CONFIG": str(config),
        "OPSBOT_ALERT_TOKEN": ALERT_TOKEN,
    }
    port = free_port()
    serve = [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if topology == "in-process":
        return Deployment([Process(serve, env, tmp / "opsbot.log", port)])
    assert topology == "ack-only", topology
    worker_port = free_port()
    # The worker yields the CPU to the answers (`nice`), as the ack path's priority does inside
    # one process: on a host the two share, Slack's answers go first.
    worker = ["nice", "-n", str(WORKER_NICE), sys.executable, "-m", "bot.cli", "worker"]
    worker += ["--host", "127.0.0.1"]
    return Deployment(
        [
            Process([*serve, "--ack-only"], env, tmp / "opsbot.log", port),
            Process([*worker, "--port", str(worker_port)], env, tmp / "worker.log", worker_port),
        ]
    )


# ---- requests as Slack signs them ---------------------------------------------------------------


@dataclass
class Signed:
    body: str
    headers: dict[str, str]


def signed(body: str, content_type: str) -> Signed:
    stamp = str(int(time.time()))
    return Signed(
        body,
        {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": sign(SECRET, stamp, body),
        },
    )


class Requests:
    """Unique, signed requests of each kind (Slack never sends the same ids twice)."""

    def __init__(self, slack_base: str) -> None:
        self.slack_base = slack_base
        self.run = uuid.uuid4().hex[:8]
        self.n = 0
        self.page_message: dict[str, Any] | None = None

    def _next(self) -> int:
        self.n += 1
        return self.n

    def make(self, kind: str, count: int) -> list[Signed]:
        build = {
            "support message": self.support_message,
            "/oncall now": self.oncall_now,
            "page button": self.page_button,
        }[kind]
        return [build() for _ in range(count)]

    def support_message(self) -> Signed:
        n = self._next()
        ts = f"{int(time.time())}.{500000 + n % 500000:06d}"
        event = {
            "type": "message",
            "channel": HELP,
            "user": ASKER,
            "text": f"Bench {self.run} request {n}: the deploy pipeline fails at the image step",
            "ts": ts,
            "event_ts": ts,
            "channel_type": "channel",
            "team": TEAM_ID,
        }
        envelope = {
            "token": "unused",
            "team_id": TEAM_ID,
            "api_app_id": API_APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{self.run}{n:07d}",
            "event_time": int(time.time()),
        }
        return signed(json.dumps(envelope), "application/json")

    def _trigger(self, n: int) -> str:
        return f"{n}.{int(time.time())}.{self.run}{n:07d}"

    def oncall_now(self) -> Signed:
        n = self._next()
        form = {
            "token": "unused",
            "team_id": TEAM_ID,
            "team_domain": "opsbot-bench",
            "channel_id": "C0GENERAL01",
            "channel_name": "general",
            "user_id": ON_CALL_ASKER,
            "user_name": "eng1",
            "command": "/oncall",
            "text": "now",
            "api_app_id": API_APP_ID,
            "is_enterprise_install": "false",
            "response_url": f"{self.slack_base}/response/bench-{self.run}-{n}",
            "trigger_id": self._trigger(n),
        }
        return signed(urlencode(form), "application/x-www-form-urlencoded")

    def page_button(self) -> Signed:
        """Acknowledge pressed on the page's message (after the first, each press is told the
        page is acknowledged already)."""
        assert self.page_message is not None, "open the page first"
        n = self._next()
        message = self.page_message
        button = next(
            (block.get("block_id"), element)
            for block in message["blocks"]
            for element in block.get("elements", [])
            if element.get("action_id") == "page.acknowledge"
        )
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM_ID, "domain": "opsbot-bench"},
            "user": {"id": ADMIN, "username": "vp", "name": "vp", "team_id": TEAM_ID},
            "api_app_id": API_APP_ID,
            "token": "unused",
            "trigger_id": self._trigger(n),
            "container": {
                "type": "message",
                "message_ts": message["ts"],
                "channel_id": PAGES,
                "is_ephemeral": False,
            },
            "channel": {"id": PAGES, "name": "infra"},
            "message": message,
            "response_url": f"{self.slack_base}/response/bench-{self.run}-{n}",
            "actions": [
                {
                    "action_id": "page.acknowledge",
                    "block_id": button[0],
                    "type": "button",
                    "value": button[1].get("value", ""),
                    "text": button[1].get("text"),
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        return signed(
            urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
        )


def open_page(opsbot: Process, api_url: str) -> dict[str, Any]:
    """A page opened by an Alertmanager alert; returns its message as Slack shows it."""
    alert = json.loads(json.dumps(ALERT))
    alert["alerts"][0]["fingerprint"] = uuid.uuid4().hex[:16]
    answer = httpx.post(
        f"{opsbot.url}/alerts/alertmanager",
        json=alert,
        headers={"Authorization": f"Bearer {ALERT_TOKEN}"},
        timeout=30,
    )
    assert answer.status_code < 300, answer.text
    client = WebClient(token="xoxb-bench", base_url=api_url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for message in client.conversations_history(channel=PAGES)["messages"]:
            actions = [
                e
                for b in message.get("blocks") or []
                for e in b.get("elements", [])
                if e.get("action_id") == "page.acknowledge"
            ]
            if actions:
                return {k: message[k] for k in ("type", "ts", "text", "blocks") if k in message}
        time.sleep(0.2)
    raise AssertionError("the page's message never reached Slack")


# ---- the load -----------------------------------------------------------------------------------


@dataclass
class Window:
    latencies: list[float] = field(default_factory=list)  # seconds, inf for a failed request
    lags: list[float] = field(default_factory=list)  # the generator's lateness, seconds
    statuses: list[int] = field(default_factory=list)

    def add(self, other: Window) -> None:
        self.latencies += other.latencies
        self.lags += other.lags
        self.statuses += other.statuses


async def _fire(url: str, requests: list[Signed], rate: float) -> Window:
    """Send `requests` at `rate` per second on schedule, whatever the answers (open loop)."""
    window = Window()
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        loop = asyncio.get_running_loop()

        async def one(request: Signed, at: float) -> None:
            window.lags.append(loop.time() - at)
            try:
                answer = await client.post(
                    f"{url}/slack/events", content=request.body, headers=request.headers
                )
                window.statuses.append(answer.status_code)
                window.latencies.append(loop.time() - at)
            except httpx.HTTPError:
                window.statuses.append(0)
                window.latencies.append(math.inf)

        start = loop.time() + 0.05
        tasks = []
        for i, request in enumerate(requests):
            at = start + i / rate
            delay = at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(request, at)))
        await asyncio.gather(*tasks)
    return window


def fire(url: str, requests: list[Signed], rate: float) -> Window:
    """One window. The generator collects its garbage before and not during it: a full
    collection of this process's heap (the requests made so far, the windows kept) stalls it for
    100-200 ms, which would be charged to whichever app's window it fell in."""
    gc.collect()
    gc.disable()
    try:
        return asyncio.run(_fire(url, requests, rate))
    finally:
        gc.enable()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def backlog(db: Database) -> int:
    """Stored requests not yet worked (their replies then go out at Slack's pace, about one
    message a second in a channel, which the next window need not wait for)."""
    with db.session() as session:
        return session.exec(
            select(func.count()).select_from(InboxEvent).where(InboxEvent.status == "pending")
        ).one()


def stored(db: Database) -> int:
    with db.session() as session:
        return session.exec(select(func.count()).select_from(InboxEvent)).one()


def drain(db: Database) -> float:
    """Wait until opsbot has worked every request it accepted; returns how long that took."""
    started = time.monotonic()
    while backlog(db) and time.monotonic() - started < DRAIN_TIMEOUT:
        time.sleep(0.25)
    assert backlog(db) == 0, "opsbot did not work off its backlog"
    return time.monotonic() - started


def alternate(
    bare: Process,
    opsbot: Deployment,
    db: Database,
    requests: Requests,
    kind: str,
    rate: int,
    *,
    last: bool,
) -> tuple[Window, Window, list[float], list[float]]:
    """ROUNDS windows to the bare app and to opsbot, alternating, pooled. Returns both apps'
    pooled windows, each round's p99 ratio and how long each drain took (after every opsbot
    window but the `last` one of the run: the server stops after it)."""
    count = int(rate * WINDOW)
    floor, measured, ratios, drains = Window(), Window(), [], []
    for round_ in range(ROUNDS):
        bare_round = fire(bare.url, requests.make(kind, count), rate)
        before = stored(db)
        round_measured = fire(opsbot.url, requests.make(kind, count), rate)
        accepted = sum(s == 200 for s in round_measured.statuses)
        if not (last and round_ == ROUNDS - 1):
            drains.append(drain(db))
        # 0: no answer within the client's 60 s (counted as failed, never as fast).
        assert set(bare_round.statuses) <= {200, 0}, f"bare app: {set(bare_round.statuses)}"
        assert set(round_measured.statuses) <= {200, 0}, set(round_measured.statuses)
        # The promise behind every 200: the request is stored to be worked (one the client
        # gave up on may be stored too). `/oncall now` changes nothing and is answered in full
        # in the ack: nothing is stored for it.
        if kind != "/oncall now":
            assert stored(db) - before >= accepted, (kind, rate)
        ratios.append(
            percentile(round_measured.latencies, 0.99) / percentile(bare_round.latencies, 0.99)
        )
        floor.add(bare_round)
        measured.add(round_measured)
    return floor, measured, ratios, drains


# ---- the benchmark ------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return "fail" if math.isinf(seconds) else f"{seconds * 1000:.1f}"


def test_ack_latency_against_a_bare_bolt_app(fake_slack, bare, tmp_path):
    slack_base = fake_slack.removesuffix("/api/")
    rows: list[dict[str, Any]] = []
    crossings: list[str] = []
    for (backend, url), topology in (
        (database, topology) for database in databases(tmp_path) for topology in TOPOLOGIES
    ):
        db = Database(url)
        where = tmp_path / backend / topology
        where.mkdir(parents=True)
        opsbot = serve_opsbot(url, fake_slack, where, topology)
        try:
            requests = Requests(slack_base)
            requests.page_message = open_page(opsbot, fake_slack)
            for kind in ("support message", "/oncall now", "page button"):  # warm up both apps
                for target in (bare, opsbot):
                    fire(target.url, requests.make(kind, 20), 50)
            drain(db)
            for kind in KINDS:
                crossed = None
                for rate in RATES:
                    last = (kind, rate) == (KINDS[-1], RATES[-1])
                    floor, measured, ratios, drains = alternate(
                        bare, opsbot, db, requests, kind, rate, last=last
                    )
                    drained = max(drains) if drains else math.nan
                    p99 = percentile(measured.latencies, 0.99)
                    if crossed is None and p99 > SLACK_LIMIT:
                        crossed = rate
                    rows.append(
                        {
                            "backend": backend,
                            "topology": topology,
                            "request": kind,
                            "rate/s": rate,
                            "bare p50": ms(percentile(floor.latencies, 0.5)),
                            "bare p99": ms(percentile(floor.latencies, 0.99)),
                            "opsbot p50": ms(percentile(measured.latencies, 0.5)),
                            "opsbot p99": ms(p99),
                            "p99 ratio": f"{p99 / percentile(floor.latencies, 0.99):.2f}",
                            "median round ratio": f"{statistics.median(ratios):.2f}",
                            "failed": sum(s != 200 for s in measured.statuses),
                            "gen lag p99": ms(
                                max(percentile(floor.lags, 0.99), percentile(measured.lags, 0.99))
                            ),
                            "drain s": "-" if math.isnan(drained) else f"{drained:.1f}",
                        }
                    )
                crossings.append(
                    f"{backend}, {topology}, {kind}: p99 crosses {SLACK_LIMIT:.0f} s at {crossed}/s"
                    if crossed
                    else f"{backend}, {topology}, {kind}: p99 under {SLACK_LIMIT:.0f} s up to {RATES[-1]}/s"
                )
        finally:
            opsbot.stop()
            db.dispose()
    print_table(rows, crossings)


def print_table(rows: list[dict[str, Any]], notes: list[str]) -> None:
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print()
    print(
        f"Ack latency (ms), open-loop, {ROUNDS} alternating windows of {WINDOW:g} s per app and "
        "rate; opsbot and a bare Bolt app with no-op listeners in the same run"
    )
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))
    for note in notes:
        print(note)
