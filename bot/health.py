"""Health of a process: is the database there, is the schema current, are the in-process workers
(scheduler, outbox sender) still beating. GET /healthz and GET /readyz answer from here."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from bot.runtime import Runtime


@dataclass
class Heartbeat:
    """A worker's pulse: `beat()` after each round; stale when no beat for `allowed` seconds.

    The scheduler wakes at least every 30 s and the outbox sender every second, so the default
    allowance of 2 minutes means several missed rounds, not one slow one.
    """

    name: str
    allowed: float | None = 120.0  # None: only the thread's liveness counts
    monotonic: Callable[[], float] = time.monotonic
    thread: Callable[[], threading.Thread | None] | None = None
    started: float = field(init=False)
    last: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.started = self.monotonic()

    def beat(self) -> None:
        self.last = self.monotonic()

    def problem(self) -> str | None:
        """Why this worker counts as stopped, or None while it is beating."""
        if self.thread is not None:
            running = self.thread()
            if running is not None and not running.is_alive():
                return f"the {self.name} thread has stopped"
        if self.allowed is None:
            return None
        since = self.monotonic() - (self.last if self.last is not None else self.started)
        if since > self.allowed:
            if self.last is None:
                return (
                    f"the {self.name} has not completed a round since it started {since:.0f}s ago"
                )
            return f"the {self.name} has not completed a round for {since:.0f}s"
        return None


def watch_workers(runtime: Runtime, allowed: float = 120.0) -> None:
    """Give the runtime's scheduler and outbox sender heartbeats that /healthz checks; called
    where a process starts them (`serve` without --no-worker, `worker`, `socket`)."""
    scheduler = Heartbeat("scheduler", allowed)
    runtime.scheduler.after_tick.append(scheduler.beat)
    # The sender's loop has no per-round hook; its thread's liveness stands in for a beat.
    outbox = Heartbeat("outbox sender", None, thread=lambda: _thread_of(runtime.outbox))
    loops = [
        Heartbeat(getattr(loop, "name", type(loop).__name__), None, thread=_thread_getter(loop))
        for loop in runtime.loops
    ]
    runtime.extras[HEARTBEATS] = [scheduler, outbox, *loops]


def _thread_getter(worker: Any) -> Callable[[], threading.Thread | None]:
    return lambda: _thread_of(worker)


HEARTBEATS = "health.heartbeats"


def _thread_of(worker: Any) -> threading.Thread | None:
    return getattr(worker, "_thread", None)


def worker_problems(runtime: Runtime) -> list[str]:
    problems = [p for hb in runtime.extras.get(HEARTBEATS, []) if (p := hb.problem())]
    # Every replica runs the inbox sweeper (stored requests whose receiver died); once started,
    # its thread must stay alive.
    sweeper = _thread_of(runtime.extras.get("inbox"))
    if sweeper is not None and not sweeper.is_alive():
        problems.append("the inbox sweeper thread has stopped")
    return problems


def schema_problem(runtime: Runtime) -> str | None:
    """None when the database is at the newest Alembic revision, else what is wrong."""
    from bot.db import schema_status

    status = schema_status(runtime.db)
    return None if status.current else status.describe()


def health_routes(runtime: Runtime) -> list[Route]:
    """GET /healthz (liveness: restart me), GET /readyz (send me traffic), GET /metrics."""
    from prometheus_client import CollectorRegistry

    from bot import metrics

    database = CollectorRegistry(auto_describe=False)
    database.register(metrics.DatabaseCollector(runtime.db, runtime.clock.now))

    async def healthz(request: Request) -> Response:
        problems = list(worker_problems(runtime))
        if not await anyio.to_thread.run_sync(runtime.db.ping):
            problems.insert(0, "database does not answer")
        if problems:
            body = {"status": "unavailable", "error": "; ".join(problems), "problems": problems}
            return JSONResponse(body, 503)
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            problem = await anyio.to_thread.run_sync(schema_problem, runtime)
        except SQLAlchemyError:
            problem = "database does not answer"
        if problem:
            return JSONResponse({"status": "not ready", "error": problem}, 503)
        return JSONResponse({"status": "ready"})

    async def prometheus(request: Request) -> Response:
        body = await anyio.to_thread.run_sync(metrics.render, database)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
    ]


def worker_http_app(runtime: Runtime) -> Starlette:
    """What `opsbot worker --port` serves: health and metrics only, no Slack endpoints."""
    from bot import metrics

    return Starlette(routes=health_routes(runtime), middleware=[Middleware(metrics.RequestMetrics)])
