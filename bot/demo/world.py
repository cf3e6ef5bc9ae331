"""The bot wired to a fake Slack, a frozen clock and a database: what the demo plays and tests drive."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from starlette.testclient import TestClient

from bot.app import InlineExecutor, build_bolt_app, build_http_app, inbox_worker
from bot.clock import FrozenClock
from bot.config import OrgConfig, parse_org
from bot.db import Database
from bot.demo.driver import SlackDriver
from bot.demo.fake_slack import FakeSlack
from bot.runtime import Runtime
from bot.settings import Settings
from handlers import build_runtime

SIGNING_SECRET = "demo-signing-secret"
ALERT_TOKEN = "demo-alert-token"


class World:
    """Everything a story or a test needs: `slack` sends signed requests, `fake` saw the answers."""

    def __init__(
        self,
        org: str | OrgConfig,
        database_url: str,
        start: datetime,
        *,
        users: dict[str, dict[str, Any]] | None = None,
        upgrade: bool = True,
        public_url: str = "https://opsbot.example.com",
    ) -> None:
        self.fake = FakeSlack(users).start()
        self.settings = Settings(
            SLACK_BOT_TOKEN="xoxb-fake-token",
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=self.fake.api_url,
            DATABASE_URL=database_url,
            OPSBOT_ALERT_TOKEN=ALERT_TOKEN,
            OPSBOT_PUBLIC_URL=public_url,
        )
        self.org = parse_org(org) if isinstance(org, str) else org
        self.clock = FrozenClock(start)
        self.db = Database(database_url)
        if upgrade:
            self.db.upgrade()
        # The frozen clock only moves when told; real-time pacing would stall it (pacing has
        # its own tests and benchmark).
        self.runtime: Runtime = build_runtime(
            self.settings, org=self.org, clock=self.clock, db=self.db, pace_slack=False
        )
        self.bolt = build_bolt_app(self.runtime, listener_executor=InlineExecutor())
        self.asgi = build_http_app(self.runtime, self.bolt)
        # Entered, as a server runs it: its start-up (the ack path's pool on PostgreSQL) runs,
        # and every request is served on one event loop.
        self.http = TestClient(self.asgi).__enter__()
        self.slack = SlackDriver(self.http, SIGNING_SECRET, self.fake, after=self.settle)

    def settle(self) -> None:
        """Deliver whatever the last request queued (the outbox worker's job in production)."""
        self.runtime.outbox.drain()

    def tick(self) -> int:
        inbox_worker(self.runtime).sweep()  # requests a failed attempt left for later
        ran = self.runtime.scheduler.tick()
        self.settle()
        return ran

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move time forward, running every scheduled firing and timer due on the way, in order."""
        target = self.clock.now() + (delta if delta is not None else timedelta(**kwargs))
        while True:
            wake = self.runtime.scheduler.next_wake(cap=None)
            if wake is None or wake >= target:
                break
            # A timer that keeps failing stays due; step past it rather than spin.
            self.clock.set(max(wake, self.clock.now() + timedelta(seconds=1)))
            self.tick()
        self.clock.set(target)
        self.tick()
        return target

    def close(self) -> None:
        self.http.__exit__(None, None, None)
        self.fake.stop()
        self.db.dispose()
