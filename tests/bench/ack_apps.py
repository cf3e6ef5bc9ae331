"""Processes the ack-latency benchmark starts beside `opsbot serve`: the fake Slack Web API, and a
bare Bolt app with no-op listeners served by uvicorn with the same options as opsbot.

    python -m tests.bench.ack_apps fake-slack            # prints the API URL, serves until killed
    python -m tests.bench.ack_apps bare PORT API_URL     # SLACK_SIGNING_SECRET from the environment

Each runs in its own process so the load generator's measurements share the GIL with nothing.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any


def serve_fake_slack() -> None:
    from bot.demo.fake_slack import FakeSlack
    from bot.demo.story import fake_users

    fake = FakeSlack(fake_users()).start()
    print(fake.api_url, flush=True)
    threading.Event().wait()


def serve_bare_bolt(port: int, api_url: str) -> None:
    """Bolt's own Starlette adapter around an App whose listeners only ack."""
    import uvicorn
    from slack_bolt import App
    from slack_bolt.adapter.starlette import SlackRequestHandler
    from slack_sdk import WebClient
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    from bot.cli import server_options
    from bot.logs import configure

    app = App(
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        client=WebClient(token="xoxb-bare", base_url=api_url),
        # As opsbot: Bolt's default acks from a listener thread it polls every 10 ms, which
        # would make the floor slower than it need be.
        process_before_response=True,
    )

    def noop(ack: Any) -> None:
        ack()

    app.event("message")(noop)
    app.command("/oncall")(noop)
    app.action("page.acknowledge")(noop)
    handler = SlackRequestHandler(app)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    asgi = Starlette(
        routes=[
            Route("/slack/events", events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
    configure("INFO")  # as `opsbot serve` does with its defaults
    uvicorn.run(asgi, **server_options("127.0.0.1", port, "INFO"))


if __name__ == "__main__":
    if sys.argv[1] == "fake-slack":
        serve_fake_slack()
    elif sys.argv[1] == "bare":
        serve_bare_bolt(int(sys.argv[2]), sys.argv[3])
    else:
        raise SystemExit(f"unknown process {sys.argv[1]!r}")
