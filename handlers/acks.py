"""Listeners whose work runs after the answer, from the inbox, with Bolt's lazy listeners.

`@after_ack(app.action("page.acknowledge"))` registers the listener as Bolt's `ack=` plus
`lazy=[...]`: the ack path only answers 200, and the listener runs from the stored request
right after (or, after a crash, by whichever process takes the row over). The ack function is
marked (`mark_after_ack`), so `/slack/events` stores and answers such a request itself, without
Bolt's dispatch (bot/plain_acks.py). `at_once(body)` names
the requests that must be handled on the request itself, such as a form to open while the
trigger_id is fresh: for those the whole listener runs before the answer, and the stored request
is then only marked done. `from_memory` may make such an answer on the event loop, without
Bolt, when all it needs is in memory (`bot.plain_acks.FromMemory`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from bot.intake import answered_at_once
from bot.plain_acks import FromMemory, mark_after_ack


def after_ack(
    register: Callable[..., Any],
    *,
    at_once: Callable[[dict[str, Any]], bool] | None = None,
    from_memory: FromMemory | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(listener: Callable[..., Any]) -> Callable[..., Any]:
        def immediate(body: dict[str, Any]) -> bool:
            return at_once is not None and at_once(body)

        @functools.wraps(listener)
        def acknowledge(**kwargs: Any) -> Any:
            if immediate(kwargs["body"]):
                answered = listener(**kwargs)
                answered_at_once()  # its lazy part has nothing left to do
                return answered
            kwargs["ack"]()
            return None

        @functools.wraps(listener)
        def work(**kwargs: Any) -> Any:
            if not immediate(kwargs["body"]):
                return listener(**kwargs)
            return None

        mark_after_ack(acknowledge, immediate, from_memory)
        register(ack=acknowledge, lazy=[work])
        return listener

    return decorate
