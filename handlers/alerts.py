"""POST /alerts/{source}: Alertmanager, Grafana and generic JSON webhooks become pages."""

from __future__ import annotations

import hmac
import logging
from typing import Any

import anyio
from sqlalchemy.exc import DBAPIError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.app import read_capped
from bot.errors import NotFound
from bot.intake import RefusedRequest
from bot.paging.alerts import SOURCES, AlertPayloadError, NoRoute, parse_json
from bot.paging.intake import AlertOutcome, receive_alert_batch
from bot.runtime import Runtime

log = logging.getLogger(__name__)

# Alertmanager sends a group's alerts in one body: 5,000 alerts with Prometheus' long
# generatorURLs (1,000 characters) come to about 8 MB. A larger body is refused before it is read.
MAX_ALERT_BODY_BYTES = 16 * 1024 * 1024


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="opsbot alerts"'} if status == 401 else None
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def _authorized(runtime: Runtime, header: str | None) -> bool:
    expected = runtime.settings.alert_token
    scheme, _, token = (header or "").partition(" ")
    if not expected or scheme.lower() != "bearer" or not token:
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


def routes(runtime: Runtime) -> list[BaseRoute]:
    async def receive(request: Request) -> Response:
        if not runtime.settings.alert_token:
            return _error(401, "alerts are refused: OPSBOT_ALERT_TOKEN is not set on this server")
        if not _authorized(runtime, request.headers.get("authorization")):
            return _error(401, "missing or wrong bearer token (Authorization: Bearer <token>)")
        source = request.path_params["source"]
        if source not in SOURCES:
            return _error(404, f"unknown alert source '{source}'", sources=list(SOURCES))
        try:
            raw = await read_capped(request, MAX_ALERT_BODY_BYTES)
        except RefusedRequest:
            return _error(
                413,
                f"the body is larger than {MAX_ALERT_BODY_BYTES // 2**20} MiB: send fewer alerts"
                " per request",
                limit_bytes=MAX_ALERT_BODY_BYTES,
            )

        def work() -> list[AlertOutcome]:
            return receive_alert_batch(runtime, parse_json(source, raw))

        try:
            outcomes = await anyio.to_thread.run_sync(work)
        except AlertPayloadError as exc:
            return _error(400, str(exc), field=exc.field)
        except NoRoute as exc:
            return _error(422, str(exc), field=exc.field, labels=exc.labels)
        except NotFound as exc:  # a generic alert naming a policy that does not exist
            return _error(400, str(exc), field="policy")
        except DBAPIError:
            # The database went away part-way: the parts already committed stay, and the resent
            # batch repeats on their pages instead of paging again.
            log.exception("alerts from %s: the database failed", source)
            return _error(503, "the database is unavailable: resend the batch")
        runtime.outbox.wake()
        page_ids = list(dict.fromkeys(o.page_id for o in outcomes if o.page_id is not None))
        log.info("alerts from %s: %s", source, [o.action for o in outcomes])
        return JSONResponse(
            {
                "status": "accepted",
                "page_ids": page_ids,
                "alerts": [
                    {"fingerprint": o.fingerprint, "action": o.action, "page_id": o.page_id}
                    for o in outcomes
                ],
            },
            status_code=202,
        )

    return [Route("/alerts/{source}", receive, methods=["POST"])]
