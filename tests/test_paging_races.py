"""Concurrent moves on one page (two people, two replicas) end in one defined state, on SQLite and
PostgreSQL alike: each move is a compare-and-set UPDATE, so the database orders them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlmodel import select

from bot.paging import intake, lifecycle, service
from bot.paging.alerts import parse
from bot.paging.models import Page
from tests.paging_samples import alertmanager_alert, alertmanager_body

ROUNDS = 6


def race(*moves: Callable[[], Any]) -> list[Any]:
    """Run the moves at once (each in its own thread and unit of work); results or exceptions."""
    barrier = threading.Barrier(len(moves))
    results: list[Any] = [None] * len(moves)

    def run(index: int, move: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = move()
        except Exception as exc:  # the loser's refusal is part of the outcome under test
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, m)) for i, m in enumerate(moves)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def open_page(world, summary: str) -> int:
    with world.db.session() as session:
        return service.trigger_page(
            world.runtime, session, policy_id="infra-default", summary=summary
        ).id


def in_unit_of_work(world, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Any]:
    def move() -> Any:
        with world.db.session() as session:
            return fn(world.runtime, session, *args, **kwargs).status

    return move


def test_acknowledge_racing_resolve_always_ends_resolved(world):
    for round_ in range(ROUNDS):
        page_id = open_page(world, f"race {round_}")
        acked, resolved = race(
            in_unit_of_work(world, lifecycle.acknowledge, page_id, "U0ENG00002"),
            in_unit_of_work(
                world, lifecycle.resolve, page_id, "U0ENG00003", classification="false_alarm"
            ),
        )
        assert resolved == "resolved"
        # The acknowledgement either landed first, or was refused because the page was resolved.
        assert acked == "acknowledged" or isinstance(acked, lifecycle.PageConflict)
        with world.db.session() as session:
            page = service.get_page(session, page_id)
            events = [e.kind for e in service.page_events(session, page_id)]
        assert page.status == "resolved" and page.resolved_by == "U0ENG00003"
        assert events.count("resolved") == 1
        assert events.count("acknowledged") == (1 if acked == "acknowledged" else 0)
        assert (page.acknowledged_by == "U0ENG00002") is (acked == "acknowledged")


def test_two_replicas_acknowledging_at_once_record_one_acknowledgement(world):
    for round_ in range(ROUNDS):
        page_id = open_page(world, f"double ack {round_}")
        results = race(
            in_unit_of_work(world, lifecycle.acknowledge, page_id, "U0ENG00002"),
            in_unit_of_work(world, lifecycle.acknowledge, page_id, "U0ENG00004"),
        )
        winners = [r for r in results if r == "acknowledged"]
        losers = [r for r in results if isinstance(r, lifecycle.PageConflict)]
        assert len(winners) == 1 and len(losers) == 1
        with world.db.session() as session:
            page = service.get_page(session, page_id)
            events = [e.kind for e in service.page_events(session, page_id)]
        assert events.count("acknowledged") == 1
        assert losers[0].by == page.acknowledged_by


def test_two_replicas_receiving_the_same_new_alert_open_one_page(world):
    for round_ in range(ROUNDS):
        body = alertmanager_body(alertmanager_alert(fingerprint=f"same{round_}"))

        def receive(body: dict[str, Any] = body) -> list[Any]:
            with world.db.session() as session:
                return intake.receive_alerts(world.runtime, session, parse("alertmanager", body))

        first, second = race(receive, receive)
        assert not isinstance(first, Exception), first
        assert not isinstance(second, Exception), second
        assert first[0].page_id == second[0].page_id
        assert sorted([first[0].action, second[0].action]) == ["opened", "repeated"]
        with world.db.session() as session:
            pages = session.exec(
                select(Page).where(Page.dedup_key == f"alertmanager:same{round_}")
            ).all()
        assert len(pages) == 1 and pages[0].repeat_count == 2


def test_an_escalation_due_while_the_page_is_acknowledged_does_nothing(world):
    page_id = open_page(world, "acked just in time")
    world.clock.advance(minutes=15)  # the step is due, but the acknowledgement commits first
    with world.db.session() as session:
        lifecycle.acknowledge(world.runtime, session, page_id, "U0ENG00002")
    world.tick()
    with world.db.session() as session:
        page = service.get_page(session, page_id)
    assert page.status == "acknowledged" and page.notified == ["U0ENG00002"]


def test_an_escalation_racing_an_acknowledgement_ends_acknowledged(world):
    for round_ in range(ROUNDS):
        page_id = open_page(world, f"escalation race {round_}")
        world.clock.advance(minutes=15)
        _, acked = race(
            world.runtime.scheduler.tick,
            in_unit_of_work(world, lifecycle.acknowledge, page_id, "U0ENG00002"),
        )
        assert acked == "acknowledged"
        with world.db.session() as session:
            page = service.get_page(session, page_id)
            kinds = [e.kind for e in service.page_events(session, page_id)]
        assert page.status == "acknowledged"
        # Either the step fired before the acknowledgement, or it found the page acknowledged.
        assert kinds.count("escalated") == (1 if len(page.notified) == 2 else 0)
        world.advance(hours=2)  # and nothing fires after it
        with world.db.session() as session:
            assert len(service.get_page(session, page_id).notified) == len(page.notified)
