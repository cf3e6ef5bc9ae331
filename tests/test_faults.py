"""Faults as real processes: `opsbot serve` killed with SIGKILL during a burst, the database going
away under load, and replicas starting together on an empty database. Every request that got a
2xx must end with its ticket and its reply, once."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from bot.db import Database
from bot.demo.driver import sign
from bot.demo.fake_slack import FakeSlack, Message
from bot.demo.story import fake_users, sample_org_text
from bot.inbox import InboxEvent
from bot.outbox.queue import SENDING, OutboxMessage
from bot.paging.models import PageEvent
from bot.scheduler import Timer
from bot.support.models import Ticket
from tests.harness import PG_ENV

SECRET = "fault-signing-secret"
ALERT_TOKEN = "fault-token"
# The burst is spread over the queue's channels: replies to one channel are paced at Slack's one
# message a second, which would make the test wait on pacing rather than on the fault.
HELP_CHANNELS = [f"C0HELP{n:05d}" for n in range(1, 11)]
DEADLINE = 40.0  # seconds any one wait may take before the test fails
SLACK_TIMEOUT = 3.0  # Slack gives up on an answer after 3 seconds and retries later
ROOT = Path(__file__).resolve().parents[1]


def org_text() -> str:
    """The sample org with the burst's help channels and a policy whose second step is due a
    few seconds after a page opens (so it falls due inside an outage)."""
    org = sample_org_text().replace(
        "channels: [C0HELP00001]", f"channels: [{', '.join(HELP_CHANNELS)}]"
    )
    assert HELP_CHANNELS[-1] in org
    fast = (
        "escalation_policies:\n"
        "  - id: fault-fast\n"
        "    steps:\n"
        '      - {notify: "rotation:infra-oncall", after: 0m}\n'
        '      - {notify: "rotation:data-oncall", after: 3s}\n'
    )
    return org.replace("escalation_policies:\n", fast, 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Process:
    """One `opsbot serve` or `opsbot worker` process on its own port (the worker's port serves
    its health endpoints). Started at once; `ready()` waits for its /healthz."""

    def __init__(self, env: dict[str, str], log: Path, command: str = "serve", *args: str) -> None:
        self.port = free_port()
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot.cli",
                command,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                *args,
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.path = log

    def ready(self) -> Process:
        until = time.monotonic() + DEADLINE
        while time.monotonic() < until:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"opsbot exited with {self.process.returncode}; see {self.path}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code in (200, 503):
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"opsbot did not start; see {self.path}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


class TcpProxy:
    """A TCP relay between opsbot and PostgreSQL. `cut()` is the outage: every connection is
    closed and new ones are refused (nothing listens); `restore()` listens again on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.port = free_port()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._stop = threading.Event()
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self._stop = threading.Event()
        threading.Thread(target=self._accept, args=(listener, self._stop), daemon=True).start()

    def _accept(self, listener: socket.socket, stop: threading.Event) -> None:
        with listener:
            while not stop.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                client.settimeout(None)
                try:
                    server = socket.create_connection(self.upstream)
                except OSError:
                    client.close()
                    continue
                with self._lock:
                    self._open |= {client, server}
                for source, sink in ((client, server), (server, client)):
                    threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._close(source, sink)

    def _close(self, *sockets: socket.socket) -> None:
        for s in sockets:
            with self._lock:
                self._open.discard(s)
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def cut(self) -> None:
        self._stop.set()
        with self._lock:
            sockets = list(self._open)
        self._close(*sockets)
        # The listener closes within one accept timeout; wait until a connection is refused.
        wait_for(lambda: not self._listening(), "the proxy to stop listening")

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False


class SqliteWriteLock:
    """SQLite's outage: the test holds the write lock (a write transaction of its own), so
    every write of opsbot waits, and fails once its busy timeout runs out."""

    def __init__(self, url: str) -> None:
        self.path = make_url(url).database
        self.connection: sqlite3.Connection | None = None

    def cut(self) -> None:
        self.connection = sqlite3.connect(
            self.path, isolation_level=None, timeout=30, check_same_thread=False
        )
        self.connection.execute("BEGIN IMMEDIATE")

    def restore(self) -> None:
        assert self.connection is not None
        self.connection.execute("ROLLBACK")
        self.connection.close()


def environment(url: str, config: Path, fake: FakeSlack) -> dict[str, str]:
    return {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-fault",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
        "DATABASE_URL": url,
        "OPSBOT_CONFIG": str(config),
        "OPSBOT_ALERT_TOKEN": ALERT_TOKEN,
        "OPSBOT_INBOX_LEASE_SECONDS": "1",
        "OPSBOT_INBOX_POLL_SECONDS": "0.2",
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def deployment(dbs, tmp_path) -> Iterator[dict]:
    fake = FakeSlack(fake_users()).start()
    config = tmp_path / "opsbot.yaml"
    config.write_text(org_text())
    url = dbs.fresh()
    try:
        yield {
            "fake": fake,
            "env": environment(url, config, fake),
            "config": config,
            "url": url,
            "log": tmp_path / "opsbot.log",
        }
    finally:
        fake.stop()


# ---- what Slack sends -------------------------------------------------------------------------


def message(n: int, run: str, retry: int = 0) -> tuple[str, dict[str, str]]:
    ts = f"{1796000000 + n}.{500000 + n:06d}"
    event = {
        "type": "message",
        "channel": HELP_CHANNELS[n % len(HELP_CHANNELS)],
        "user": "U0APP00001",
        "text": summary(n, run),
        "ts": ts,
        "event_ts": ts,
        "channel_type": "channel",
    }
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": "T0OPSBOT01",
            "api_app_id": "A0OPSBOT01",
            "event_id": f"Ev{run}{n:05d}",
            "event_time": int(time.time()),
            "event": event,
        }
    )
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(SECRET, stamp, body),
    }
    if retry:
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_error"}
    return body, headers


def messages_in_slack(fake: FakeSlack, run: str, total: int) -> None:
    """The people's messages, as Slack holds them: a sender recovering a reply a crash left
    half-sent looks for it in the message's thread."""
    with fake._lock:
        for n in range(total):
            ts = f"{1796000000 + n}.{500000 + n:06d}"
            channel = HELP_CHANNELS[n % len(HELP_CHANNELS)]
            fake.messages.append(Message(channel, ts, summary(n, run), None, user="U0APP00001"))


def summary(n: int, run: str) -> str:
    return f"Burst {run} request {n}: deploys fail"


def post(url: str, n: int, run: str, retry: int = 0, timeout: float = 5) -> int:
    """Send message n as Slack would; the status Slack saw (0: no answer in time, which Slack
    treats like an error and retries)."""
    body, headers = message(n, run, retry)
    try:
        return httpx.post(
            f"{url}/slack/events", content=body, headers=headers, timeout=timeout
        ).status_code
    except httpx.HTTPError:
        return 0  # the connection died or timed out: no 2xx, no promise


def summaries(db: Database) -> list[str]:
    with db.session() as session:
        return [t.summary for t in session.exec(select(Ticket)).all()]


def replies(fake: FakeSlack) -> list[str]:
    return [m.thread_ts for c in HELP_CHANNELS for m in fake.posts(c) if m.thread_ts]


def wait_until_worked(db: Database, fake: FakeSlack, replies_within: float = DEADLINE) -> None:
    """Every stored request worked, and a reply posted in every ticket's thread (the replies go
    out through the outbox after the inbox is drained)."""

    def inbox_drained() -> bool:
        with db.session() as session:
            return not session.exec(select(InboxEvent).where(InboxEvent.status != "done")).first()

    wait_for(inbox_drained, "every stored request to be worked")
    wait_for(
        lambda: len(replies(fake)) >= len(summaries(db)),
        "a reply in every ticket's thread",
        replies_within,
    )


def assert_worked_once(db: Database, fake: FakeSlack, run: str, acknowledged: set[int]) -> None:
    stored = summaries(db)
    for n in acknowledged:
        assert stored.count(summary(n, run)) == 1, n
    assert len(stored) == len(set(stored))  # nothing twice, acknowledged or not
    threads = replies(fake)
    assert len(threads) == len(set(threads)) == len(stored)  # one reply per ticket


def age_the_dead_process_claims(db: Database) -> None:
    """A reply the killed process was posting stays "sending" for 90 s before a sender looks it
    up in the channel's history (found: marked sent; not found: sent again). Age those claims
    by 90 s so that recovery runs within the test instead of after it."""
    with db.session() as session:
        for row in session.exec(select(OutboxMessage).where(OutboxMessage.status == SENDING)):
            assert row.claimed_at is not None
            row.claimed_at -= timedelta(seconds=90)


# ---- kill -9 --------------------------------------------------------------------------------------


def test_requests_acknowledged_before_a_kill_9_are_all_worked_once_after_a_restart(deployment):
    run, total = uuid.uuid4().hex[:6].upper(), 60
    messages_in_slack(deployment["fake"], run, total)
    first = Process(deployment["env"], deployment["log"]).ready()
    answered: dict[int, int] = {}
    try:
        with ThreadPoolExecutor(8) as pool:
            futures = {n: pool.submit(post, first.url, n, run) for n in range(total)}
            # Mid-burst: some requests answered (their work done or not), some cut off.
            wait_for(lambda: sum(f.done() for f in futures.values()) >= 15, "the burst to start")
            first.kill()
            answered = {n: f.result() for n, f in futures.items()}
    finally:
        first.stop()
    acknowledged = {n for n, status in answered.items() if status == 200}
    assert acknowledged, "nothing was acknowledged before the kill"
    assert len(acknowledged) < total, "the kill came after the burst"
    db = Database(deployment["url"])
    age_the_dead_process_claims(db)
    second = Process(deployment["env"], deployment["log"]).ready()
    try:
        # Every stored request gets worked and answered, acknowledged or not.
        wait_until_worked(db, deployment["fake"])
        assert_worked_once(db, deployment["fake"], run, acknowledged)
    finally:
        second.stop()
        db.dispose()


# ---- a database outage under load -----------------------------------------------------------------


def test_a_database_outage_under_load_loses_nothing_acknowledged_and_escalations_due_run_after(
    deployment, dbs
):
    """PostgreSQL: the connection to the server is cut mid-burst (a proxy closes every connection
    and refuses new ones) and restored. SQLite: the test holds the write lock for the outage,
    so opsbot's writes wait (longer than Slack waits for an answer) until it is released."""
    run, total = uuid.uuid4().hex[:6].upper(), 60
    env, url = dict(deployment["env"]), deployment["url"]
    if dbs.backend == "postgresql":
        parsed = make_url(url)
        proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
        env["DATABASE_URL"] = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False
        )
        outage: TcpProxy | SqliteWriteLock = proxy
    else:
        outage = SqliteWriteLock(url)
    server = Process(env, deployment["log"]).ready()  # with its scheduler and outbox
    db, fake = Database(url), deployment["fake"]  # the test reads the database directly
    messages_in_slack(fake, run, total)
    try:
        answered: dict[int, int] = {}
        page: dict[str, object] = {}
        notified_during_outage: list[int] = []

        def outage_window() -> None:
            # Mid-burst an alert opens a page whose second escalation step falls due a few
            # seconds later, and the database goes away.
            opened = httpx.post(
                f"{server.url}/alerts/generic",
                json={"summary": "Orders DB replica lag", "policy": "fault-fast", "dedup_key": run},
                headers={"Authorization": f"Bearer {ALERT_TOKEN}"},
            )
            assert opened.status_code == 202, opened.text
            (page["id"],) = opened.json()["page_ids"]
            with db.session() as session:
                timer = session.exec(
                    select(Timer).where(
                        Timer.ref == f"page:{page['id']}", Timer.status == "pending"
                    )
                ).one()
            page["due"] = timer.due_at
            outage.cut()
            outage_began.set()
            cut_at = datetime.now(UTC)
            assert cut_at < timer.due_at, "the outage began after the escalation was due"
            # Held past the escalation's moment, and long enough that Slack gives up on some.
            wait_for(
                lambda: datetime.now(UTC) > max(timer.due_at, cut_at + timedelta(seconds=4)),
                "the outage window",
            )
            notified_during_outage.append(notified(db, page["id"]))
            outage.restore()

        outage_pool, answers = ThreadPoolExecutor(1), itertools.count(1)
        window: list[Future] = []

        outage_began = threading.Event()

        def send(n: int) -> None:
            if n >= total // 2:  # the burst's second half comes during the outage
                outage_began.wait(timeout=DEADLINE)
            answered[n] = post(server.url, n, run, timeout=SLACK_TIMEOUT)
            if next(answers) == 15:  # mid-burst: the outage begins
                window.append(outage_pool.submit(outage_window))

        with ThreadPoolExecutor(8) as pool, outage_pool:
            list(pool.map(send, range(total)))
        window[0].result()
        assert notified_during_outage == [1], "step 2 was due but should not have run yet"
        page_id = page["id"]
        first_tries = dict(answered)
        refused = [n for n, status in first_tries.items() if status != 200]
        assert len(refused) >= 8, "the outage should have met the burst"
        assert any(s == 200 for s in first_tries.values()), "the outage came before the burst"

        # Slack retries what did not get a 2xx in time; each retry is acknowledged and acts once.
        for n, status in first_tries.items():
            if status != 200:
                answered[n] = post(server.url, n, run, retry=1)
        assert set(answered.values()) == {200}, answered

        # A reply Slack took but whose result the outage kept from being recorded stays
        # "sending" until the sender looks it up in the thread, 90 s later.
        wait_until_worked(db, fake, replies_within=90 + DEADLINE)
        assert_worked_once(db, fake, run, set(range(total)))
        # The escalation due during the outage ran once the database answered again.
        wait_for(lambda: notified(db, page_id) == 2, "the escalation due during the outage")
        with db.session() as session:
            step_two = session.exec(
                select(PageEvent)
                .where(PageEvent.page_id == page_id, PageEvent.kind == "notified")
                .order_by(col(PageEvent.id).desc())
            ).first()
        assert step_two is not None and step_two.actor
        wait_for(lambda: bool(fake.dms(step_two.actor)), "the escalation's DM")
    finally:
        server.stop()
        db.dispose()
        if isinstance(outage, TcpProxy):
            outage.cut()


def notified(db: Database, page_id: int) -> int:
    with db.session() as session:
        return len(
            session.exec(
                select(PageEvent).where(PageEvent.page_id == page_id, PageEvent.kind == "notified")
            ).all()
        )


# ---- replicas starting together --------------------------------------------------------------------


@contextmanager
def empty_postgresql_database() -> Iterator[str]:
    base = make_url(os.environ[PG_ENV].replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"opsbot_faults_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def empty_database(dbs, tmp_path) -> Iterator[str]:
    if dbs.backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with empty_postgresql_database() as url:
        yield url


@pytest.mark.parametrize("replicas_do", ["--no-worker", "--ack-only"])
def test_two_replicas_and_a_worker_started_together_on_an_empty_database_work_each_request_once(
    empty_database, tmp_path, replicas_do
):
    run, total = uuid.uuid4().hex[:6].upper(), 40
    fake = FakeSlack(fake_users()).start()
    messages_in_slack(fake, run, total)
    config = tmp_path / "opsbot.yaml"
    config.write_text(org_text())
    env, log = environment(empty_database, config, fake), tmp_path / "opsbot.log"
    # All three upgrade the empty database's schema as they start.
    processes = [
        Process(env, log, "serve", replicas_do),
        Process(env, log, "serve", replicas_do),
        Process(env, log, "worker"),
    ]
    db = Database(empty_database)
    try:
        replicas = [p.ready() for p in processes][:2]
        with ThreadPoolExecutor(8) as pool:
            statuses = pool.map(
                lambda n: post(replicas[n % 2].url, n, run, timeout=SLACK_TIMEOUT), range(total)
            )
            answered = dict(enumerate(statuses))
        # Slack resends what it got no 2xx for within 3 s (to either replica).
        for n, status in answered.items():
            if status != 200:
                answered[n] = post(replicas[(n + 1) % 2].url, n, run, retry=1)
        assert set(answered.values()) == {200}, answered
        # The replicas work what they received (with --ack-only, the worker works it all); the
        # worker delivers every reply.
        wait_until_worked(db, fake)
        assert_worked_once(db, fake, run, set(range(total)))
    finally:
        for process in processes:
            process.stop()
        db.dispose()
        fake.stop()


def test_three_processes_upgrading_an_empty_database_at_once_all_succeed(empty_database):
    """PostgreSQL: the upgrade holds an advisory lock; SQLite: the upgrade's transaction holds
    the write lock from its start. Either way one upgrades and the others find it done."""
    env = {
        **os.environ,
        "DATABASE_URL": empty_database.replace("postgresql+psycopg://", "postgresql://", 1),
        "PYTHONPATH": str(ROOT),
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "db", "upgrade"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=DEADLINE)[0].decode() for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    engine = create_engine(empty_database)
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    engine.dispose()
    assert len(versions) == 1
