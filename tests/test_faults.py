"""Faults as real processes: `opsbot serve` killed with SIGKILL during a burst, and replicas
starting together on an empty database. Every request that got a 2xx must end with its ticket
and its reply, once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import select

from bot.db import Database
from bot.demo.driver import sign
from bot.demo.fake_slack import FakeSlack
from bot.demo.story import fake_users, sample_org_text
from bot.inbox import InboxEvent
from bot.support.models import Ticket
from tests.harness import PG_ENV

SECRET = "fault-signing-secret"
HELP = "C0HELP00001"
DEADLINE = 40.0  # seconds any one wait may take before the test fails


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `opsbot serve` process on its own port."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        until = time.monotonic() + DEADLINE
        while time.monotonic() < until:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code in (200, 503):
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"opsbot serve did not start; see {log}")

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


@pytest.fixture
def deployment(dbs, tmp_path) -> Iterator[dict]:
    fake = FakeSlack(fake_users()).start()
    config = tmp_path / "opsbot.yaml"
    config.write_text(sample_org_text())
    url = dbs.fresh()
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-fault",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
        "DATABASE_URL": url,
        "OPSBOT_CONFIG": str(config),
        "OPSBOT_ALERT_TOKEN": "fault-token",
        "OPSBOT_INBOX_LEASE_SECONDS": "1",
        "OPSBOT_INBOX_POLL_SECONDS": "0.2",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    try:
        yield {"fake": fake, "env": env, "url": url, "log": tmp_path / "serve.log"}
    finally:
        fake.stop()


def message(n: int, run: str) -> tuple[str, dict[str, str]]:
    ts = f"{1796000000 + n}.{500000 + n:06d}"
    event = {
        "type": "message",
        "channel": HELP,
        "user": "U0APP00001",
        "text": f"Burst {run} request {n}: deploys fail",
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
    return body, {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(SECRET, stamp, body),
    }


def post(url: str, n: int, run: str) -> int:
    body, headers = message(n, run)
    try:
        return httpx.post(
            f"{url}/slack/events", content=body, headers=headers, timeout=5
        ).status_code
    except httpx.HTTPError:
        return 0  # the connection died with the process: no 2xx, no promise


def wait_for(check, what: str) -> None:
    until = time.monotonic() + DEADLINE
    while time.monotonic() < until:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_requests_acknowledged_before_a_kill_9_are_all_worked_once_after_a_restart(deployment):
    run, total = uuid.uuid4().hex[:6].upper(), 60
    first = Server(deployment["env"], deployment["log"])
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
    second = Server(deployment["env"], deployment["log"])
    db = Database(deployment["url"])
    try:

        def all_done() -> bool:
            with db.session() as session:
                return not session.exec(
                    select(InboxEvent).where(InboxEvent.status != "done")
                ).first()

        wait_for(all_done, "every stored request to be worked")
        with db.session() as session:
            summaries = [t.summary for t in session.exec(select(Ticket)).all()]
        fake = deployment["fake"]
        # Every stored request gets its reply, acknowledged or not: wait for as many replies as
        # tickets (the replies go out through the outbox after the inbox is drained).
        wait_for(
            lambda: len([m for m in fake.posts(HELP) if m.thread_ts]) >= len(summaries),
            "a reply in every ticket's thread",
        )
    finally:
        second.stop()
        db.dispose()
    for n in acknowledged:
        assert summaries.count(f"Burst {run} request {n}: deploys fail") == 1, n
    assert len(summaries) == len(set(summaries))  # nothing twice, acknowledged or not
    threads = [m.thread_ts for m in fake.posts(HELP) if m.thread_ts]
    assert len(threads) == len(set(threads)) == len(summaries)  # one reply per ticket


@pytest.mark.skipif(not os.environ.get(PG_ENV), reason="the advisory lock is PostgreSQL's")
def test_three_processes_upgrading_an_empty_postgresql_database_at_once_all_succeed(tmp_path):
    base = make_url(os.environ[PG_ENV].replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"opsbot_faults_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    env = {
        **os.environ,
        "DATABASE_URL": url.replace("postgresql+psycopg://", "postgresql://", 1),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    try:
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
        with create_engine(url).connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        assert len(versions) == 1
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
