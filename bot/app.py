"""Builds the Bolt app (inbox middleware plus every capability's listeners) and the HTTP app around it."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from typing import Any

import anyio
from slack_bolt import Ack, App, BoltRequest, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import metrics
from bot.health import health_routes
from bot.inbox import inbox_key
from bot.intake import (
    MAX_BODY_BYTES,
    REPLAY,
    InboxLazyRunner,
    InboxWorker,
    InlineExecutor,
    ParsedRequest,
    QuietReplays,
    RefusedRequest,
    copy_replays_lightly,
    end_replays_at_their_listener,
    parse_body,
    retry_number,
    verify_signature,
)
from bot.plain_acks import AsyncInbox, PlainAcks, mark_ack_path, match_on_body
from bot.runtime import Runtime

__all__ = ["InlineExecutor", "build_bolt_app", "build_http_app", "inbox_worker"]

log = logging.getLogger(__name__)

ACK_PATH = "opsbot: no lazy function on the ack path"


class BotIdentity:
    """Who the bot is (auth.test), learned off the ack path: a cold start while Slack answers
    429 still accepts every request, and the work phase asks again until Slack answers."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.result: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def authorize(self, context: Any, enterprise_id: str | None, team_id: str | None) -> Any:
        if self.result is None and context.get(REPLAY):
            with self._lock:
                if self.result is None:
                    try:
                        self.result = dict(self.runtime.slack.auth_test().data)
                    except SlackApiError as exc:
                        log.warning("auth.test failed (%s); going on", exc.response.get("error"))
                    except OSError as exc:
                        log.warning("auth.test failed (%s); going on", exc)
        known = self.result or {}
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id or known.get("team_id"),
            bot_token=self.runtime.slack.token,
            bot_user_id=known.get("user_id"),
            bot_id=known.get("bot_id"),
        )


def inbox_worker(runtime: Runtime) -> InboxWorker:
    """The runtime's inbox worker (made with the Bolt app, which it dispatches to)."""
    return runtime.extras["inbox"]


def build_bolt_app(runtime: Runtime, *, listener_executor: Executor | None = None) -> App:
    """The Bolt app. `listener_executor` runs the work of stored requests after their answer
    (a thread pool by default; tests and the demo pass InlineExecutor)."""
    from handlers import register_listeners

    identity = BotIdentity(runtime)
    app = App(
        client=runtime.slack,
        # The HTTP layer verifies the signature before it parses anything; a replay from the
        # inbox is minutes old and no longer signed for now.
        request_verification_enabled=False,
        authorize=lambda context, enterprise_id, team_id: identity.authorize(
            context, enterprise_id, team_id
        ),
        process_before_response=True,
        raise_error_for_unhandled_request=False,
    )
    app.listener_runner.lazy_listener_runner = InboxLazyRunner(log)
    copy_replays_lightly(app.listener_runner)
    end_replays_at_their_listener(app.listener_runner)
    app.logger.addFilter(QuietReplays())
    worker = InboxWorker(runtime.db, runtime.clock, app.dispatch, executor=listener_executor)
    worker.after_work.append(runtime.outbox.wake)
    runtime.extras["inbox"] = worker

    def inbox(req: BoltRequest, resp: BoltResponse, next: Any) -> BoltResponse | None:
        if req.context.get(REPLAY):
            return next()
        # Start no lazy function on the ack path (the stored row is the work to do): Bolt skips
        # every lazy function whose name is not this one, without copying the request for it.
        # It also overrides the header through which a caller could name one to run now.
        req.lazy_function_name = ACK_PATH
        worker.answering(None)  # nothing left over from this thread's previous request
        found = inbox_key(req.body)
        if found is None or worker.unstored(req.body):
            return next()
        kind, key = found
        if req.mode == "http":
            raw = req.raw_body
            content_type = (req.headers.get("content-type") or ["application/json"])[0]
        else:  # Socket Mode hands over the parsed payload
            raw, content_type = json.dumps(req.body), "application/json"
        retry = retry_number((req.headers.get("x-slack-retry-num") or [None])[0])
        accepted = worker.store(kind, key, raw, {"content-type": content_type}, retry)
        if not accepted.new or kind == "event":
            return BoltResponse(status=200, body="")
        # The listener's ack function runs after this middleware (a modal, a validation, an ack
        # body); one that does all the work at once marks the row done (`answered_at_once`).
        worker.answering(key)
        return next()

    mark_ack_path(inbox)
    app.use(inbox)

    @app.error
    def on_error(error: Exception, context: Any, logger: logging.Logger) -> None:
        context["opsbot_error"] = f"{type(error).__name__}: {error}"[:500]
        logger.error("listener failed: %s", error, exc_info=error)

    register_listeners(app, runtime)
    match_on_body(app)
    return app


def _http_response(bolt_response: BoltResponse) -> Response:
    return Response(
        status_code=bolt_response.status,
        content=bolt_response.body,
        headers=bolt_response.first_headers_without_set_cookie(),
    )


async def read_capped(request: Request, cap: int = MAX_BODY_BYTES) -> bytes:
    """The body, refused (413) before reading when it says it is too big, or as soon as it is."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > cap):
        raise RefusedRequest(413, f"the body is larger than {cap} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise RefusedRequest(413, f"the body is larger than {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def build_http_app(runtime: Runtime, bolt_app: App) -> Starlette:
    from handlers import http_routes

    secret = runtime.settings.slack_signing_secret or ""
    worker = inbox_worker(runtime)
    dispatch = worker.priority.answering_here(bolt_app.dispatch)
    plain = PlainAcks(bolt_app, worker)
    store = worker.priority.answering_here(worker.store)
    async_inbox: AsyncInbox | None = None

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # The pool lives on the server's event loop, so it is made at start-up.
        nonlocal async_inbox
        if AsyncInbox.usable(runtime.db):
            async_inbox = AsyncInbox(runtime.db.url, worker)
            await async_inbox.open()
        try:
            yield
        finally:
            if async_inbox is not None:
                await async_inbox.close()
                async_inbox = None

    async def store_plainly(kind: str, key: str, raw: bytes, headers: dict[str, str]) -> Response:
        """Store a request an after_ack listener answers with a bare 200, and answer it."""
        retry = retry_number(headers.get("x-slack-retry-num"))
        content_type = headers.get("content-type") or "application/json"
        stored = (kind, key, raw.decode("utf-8"), {"content-type": content_type}, retry)
        try:
            if async_inbox is not None:
                worker.accepted(key, await async_inbox.accept(*stored), retry)
            else:
                await anyio.to_thread.run_sync(store, *stored)
        except Exception:  # as Bolt answers when its middleware fails: Slack retries a 5xx
            log.exception("%s could not be stored; Slack will retry it", key)
            return JSONResponse({"error": "the request could not be stored; retry"}, 500)
        return Response(status_code=200)

    async def answer_from_memory(body: dict[str, Any]) -> Response | None:
        """The ack's answer made on the event loop by the listener's `FromMemory`, or None
        (Bolt then dispatches the request in a thread, as it would have)."""
        answerer = plain.from_memory(body) if async_inbox is not None else None
        if answerer is None:
            return None
        try:
            answer = await answerer(body, async_inbox.rows)  # type: ignore[union-attr]
        except Exception:  # the database, or a bug: Bolt's way still answers, or says why not
            log.warning("answering from memory failed; answering through Bolt", exc_info=True)
            return None
        # Built by Bolt's own Ack, as the listener's `ack(**answer)` would: the same response.
        return None if answer is None else _http_response(Ack()(**answer))

    async def slack_events(request: Request) -> Response:
        with worker.priority.answering():
            return await acknowledge(request)

    async def acknowledge(request: Request) -> Response:
        try:
            raw = await read_capped(request)
            headers = {k.lower(): v for k, v in request.headers.items()}
            verify_signature(secret, raw, headers)
            body = parse_body(raw, headers.get("content-type", ""))
        except RefusedRequest as exc:
            return JSONResponse({"error": str(exc)}, exc.status)
        request.scope[metrics.SLACK_KIND] = metrics.kind_of(body)  # parsed once, for the metrics
        if worker.unstored(body):  # answered in the ack, nothing stored
            answered = await answer_from_memory(body)
            if answered is not None:
                return answered
        else:
            found = inbox_key(body)
            if found is not None and plain.answers(body):
                return await store_plainly(*found, raw, headers)
        dispatched = ParsedRequest(
            raw.decode("utf-8"),
            body,
            request.headers,  # type: ignore[arg-type]
            query=request.query_params,  # type: ignore[arg-type]
        )
        # Bolt's dispatch blocks (ack functions may call Slack); keep it off the event loop.
        bolt_response = await anyio.to_thread.run_sync(dispatch, dispatched)
        runtime.outbox.wake()
        return _http_response(bolt_response)

    routes = [
        Route("/slack/events", slack_events, methods=["POST"]),
        *health_routes(runtime),
        *http_routes(runtime),
    ]
    return Starlette(
        routes=routes, middleware=[Middleware(metrics.RequestMetrics)], lifespan=lifespan
    )
