"""The outbox: every notification is a row with an idempotency key, delivered by a sender.

`queue` is what capabilities call inside their unit of work (post, update_message, enqueue);
`sender` delivers the rows to Slack (priorities, rate limits, retries, crash recovery);
`limits` holds Slack's published rate limits; `health` notices and announces Slack outages.
"""

from bot.outbox.queue import (
    BULK,
    EXPIRED,
    FAILED,
    NORMAL,
    PENDING,
    SENDING,
    SENT,
    SUPERSEDED,
    URGENT,
    OutboxMessage,
    SlackHealth,
    enqueue,
    kind_of,
    message_ref,
    post,
    register_usefulness,
    update_message,
)
from bot.outbox.sender import OutboxSender

__all__ = [
    "BULK",
    "EXPIRED",
    "FAILED",
    "NORMAL",
    "PENDING",
    "SENDING",
    "SENT",
    "SUPERSEDED",
    "URGENT",
    "OutboxMessage",
    "OutboxSender",
    "SlackHealth",
    "enqueue",
    "kind_of",
    "message_ref",
    "post",
    "register_usefulness",
    "update_message",
]
