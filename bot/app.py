"""Builds the Bolt app (inbox middleware plus every capability's listeners) and the HTTP app around it."""

from __future__ import annotations

import logging
from concurrent.futures import Executor, Future
from typing import Any

import anyio
from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import metrics
from bot.health import health_routes
from bot.inbox import inbox_key, record
from bot.runtime import Runtime

log = logging.getLogger(__name__)


class InlineExecutor(Executor):
    """Runs listeners in the calling thread: deterministic for tests and the demo.

    Production uses Bolt's thread pool, so the ack returns to Slack before slow work finishes.
    """

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def build_bolt_app(runtime: Runtime, *, listener_executor: Executor | None = None) -> App:
    from handlers import register_listeners

    app = App(
        client=runtime.slack,
        signing_secret=runtime.settings.slack_signing_secret or "",
        token_verification_enabled=False,
        process_before_response=False,
        listener_executor=listener_executor,
        raise_error_for_unhandled_request=False,
    )

    def inbox(req: BoltRequest, resp: BoltResponse, next: Any) -> BoltResponse | None:
        found = inbox_key(req.body)
        if found is not None:
            kind, key = found
            retry = req.headers.get("x-slack-retry-num") or ["0"]
            try:
                retry_num = int(retry[0])
            except ValueError:
                retry_num = 0
            if not record(runtime.db, kind, key, runtime.clock.now(), retry_num):
                log.info("skipping %s already handled (retry %s)", key, retry_num)
                return BoltResponse(status=200, body="")
        return next()

    app.use(inbox)

    @app.error
    def on_error(error: Exception, body: dict[str, Any], logger: logging.Logger) -> None:
        logger.error("listener failed: %s", error, exc_info=error)

    register_listeners(app, runtime)
    return app


def build_http_app(runtime: Runtime, bolt_app: App) -> Starlette:
    from handlers import http_routes

    async def slack_events(request: Request) -> Response:
        body = await request.body()
        try:
            bolt_request = BoltRequest(
                body=body.decode("utf-8"),
                query=request.query_params,  # type: ignore[arg-type]
                headers=request.headers,  # type: ignore[arg-type]
            )
        except ValueError:
            # Bolt parses before it verifies, so an unparsable body never reaches its check.
            verifier = SignatureVerifier(runtime.settings.slack_signing_secret or "")
            if not verifier.is_valid_request(body, dict(request.headers)):
                return JSONResponse({"error": "invalid request"}, 401)  # as Bolt answers
            return JSONResponse({"error": "the body is neither JSON nor form data"}, 400)
        # Bolt's dispatch blocks (it waits for ack); keep it off the event loop.
        bolt_response = await anyio.to_thread.run_sync(bolt_app.dispatch, bolt_request)
        runtime.outbox.wake()
        return Response(
            status_code=bolt_response.status,
            content=bolt_response.body,
            headers=bolt_response.first_headers_without_set_cookie(),
        )

    routes = [
        Route("/slack/events", slack_events, methods=["POST"]),
        *health_routes(runtime),
        *http_routes(runtime),
    ]
    return Starlette(routes=routes, middleware=[Middleware(metrics.RequestMetrics)])
