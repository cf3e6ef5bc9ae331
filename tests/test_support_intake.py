"""Support intake: which messages become tickets, and what the bot answers in the thread."""

from __future__ import annotations

from sqlmodel import select

from bot.support.models import Ticket

HELP = "C0HELP00001"
APP_DEV = "U0APP00001"


def tickets(world) -> list[Ticket]:
    with world.db.session() as session:
        return list(session.exec(select(Ticket).order_by(Ticket.id)).all())


def thread_replies(world, ts):
    return [m for m in world.fake.posts(HELP) if m.thread_ts == ts]


def test_top_level_message_in_queue_channel_becomes_ticket_answered_in_thread(world):
    _, ts = world.slack.message(HELP, APP_DEV, "Deploys to staging fail with a 503 from the gateway")
    [ticket] = tickets(world)
    assert ticket.queue_id == "infra-help" and ticket.requester == APP_DEV
    assert ticket.assignee == "U0ENG00004"  # infra-support, third week since 2 Nov
    [card] = thread_replies(world, ts)
    assert f"Ticket #{ticket.id}" in card.text
    text = str(card.blocks)
    assert "infra-help" in text and "U0ENG00004" in text and "SLA" in text
    assert "support.claim" in text and "support.resolve" in text
