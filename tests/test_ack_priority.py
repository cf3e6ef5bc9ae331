"""The ack path before background work: one statement to store a request, and background threads
of the same process held back (briefly) while an answer to Slack is being made."""

from __future__ import annotations

import os
import sys
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from bot.db import Database
from bot.inbox import DONE, PENDING, accept
from bot.intake import BACKGROUND_NICE, AckPriority, InboxWorker
from tests.harness import terminate_connections

NOW = datetime(2026, 11, 16, 14, 30, tzinfo=UTC)


def in_background(work) -> tuple[threading.Thread, list[str]]:
    done: list[str] = []
    thread = threading.Thread(target=lambda: (work(), done.append("work")), daemon=True)
    thread.start()
    return thread, done


# ---- the one insert ----------------------------------------------------------------------------


def test_accept_stores_a_request_once_and_tells_a_repeat_its_state(db):
    first = accept(db, "event", "event:Ev1", NOW, body="{}", headers={"content-type": "x"})
    again = accept(db, "event", "event:Ev1", NOW, body="{}", headers={"content-type": "x"})
    assert (first.new, first.status) == (True, PENDING)
    assert (again.new, again.status) == (False, PENDING)


def test_accept_goes_on_after_the_database_dropped_its_connections(db):
    """The ack path's pool is not pinged before use: a connection the server closed is replaced
    and the insert tried again, so a database restart costs no request."""
    if not db.url.startswith("postgresql"):
        pytest.skip("terminating server connections is PostgreSQL's")
    assert accept(db, "event", "event:Ev2", NOW).new
    ended = terminate_connections(db)
    assert ended >= 1
    assert accept(db, "event", "event:Ev3", NOW).new
    assert not accept(db, "event", "event:Ev3", NOW).new


# ---- answers first ------------------------------------------------------------------------------


def test_background_work_starts_only_once_the_answer_in_flight_is_made():
    priority = AckPriority(max_wait=60)
    order: list[str] = []
    with priority.answering():
        thread, done = in_background(priority.let_answers_go_first)
        thread.join(timeout=0.2)
        assert thread.is_alive() and not done  # held back while Slack waits
        order.append("answer")
    thread.join(timeout=10)
    order += done
    assert order == ["answer", "work"]


def test_background_work_is_held_back_for_a_bounded_time_only():
    priority = AckPriority(max_wait=0.01)
    with priority.answering():
        thread, done = in_background(priority.let_answers_go_first)
        thread.join(timeout=10)
        assert done == ["work"]  # a steady stream of requests does not starve the work


def test_after_an_answer_background_work_waits_for_a_quiet_moment():
    priority = AckPriority(quiet=0.004)
    now = [100.0]
    slept: list[float] = []
    priority.monotonic = lambda: now[0]
    priority.sleep = slept.append
    priority.let_answers_go_first()
    assert slept == []  # nothing was answered yet
    with priority.answering():
        pass
    now[0] += 0.001
    priority.let_answers_go_first()
    assert slept == [pytest.approx(0.003)]  # the rest of the quiet period
    now[0] += 0.01
    priority.let_answers_go_first()
    assert len(slept) == 1  # quiet long enough


def test_the_ack_path_itself_is_never_held_back():
    priority = AckPriority(max_wait=60)
    seen: list[str] = []

    def dispatch(request):
        priority.let_answers_go_first()  # e.g. a statement of a listener answering at once
        seen.append(request)
        return request

    marked = priority.answering_here(dispatch)
    with priority.answering(), priority.answering():
        assert marked("ack") == "ack"
    assert seen == ["ack"]


def test_background_statements_wait_for_the_answer_in_flight(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'priority.db'}")
    priority = AckPriority(max_wait=60)
    priority.install(db.engine)

    def read() -> None:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    try:
        with priority.answering():
            thread, done = in_background(read)
            thread.join(timeout=0.2)
            assert thread.is_alive() and not done
        thread.join(timeout=10)
        assert done == ["work"]
    finally:
        db.dispose()


def test_on_sqlite_a_writer_holding_the_lock_is_not_held_back(tmp_path):
    """The ack's insert may be waiting for that very lock."""
    db = Database(f"sqlite:///{tmp_path / 'priority.db'}")
    db.upgrade()
    priority = AckPriority(max_wait=60)
    priority.install(db.engine)
    started, go_on = threading.Event(), threading.Event()

    def write() -> None:
        with db.engine.begin() as connection:
            connection.execute(text("DELETE FROM inbox_events WHERE key = 'none'"))
            started.set()
            go_on.wait(10)
            connection.execute(text("DELETE FROM inbox_events WHERE key = 'none'"))

    try:
        thread, done = in_background(write)
        assert started.wait(10)
        with priority.answering():
            go_on.set()
            thread.join(timeout=10)
            assert done == ["work"]  # its second statement ran while the answer was in flight
    finally:
        db.dispose()


def test_a_repeat_of_finished_work_reports_done(db):
    assert accept(db, "command", "command:t1", NOW).new
    with db.session() as session:
        from bot.inbox import InboxEvent

        row = session.get(InboxEvent, "command:t1")
        row.status = DONE
    repeat = accept(db, "command", "command:t1", NOW)
    assert (repeat.new, repeat.status) == (False, DONE)


# ---- the kernel's share ------------------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own nice is Linux's")
def test_the_work_of_stored_requests_runs_at_a_lower_priority_than_the_answers(db):
    """The inbox's threads run BACKGROUND_NICE levels below the process's other threads, so a
    waking answer gets a core first; the thread that answers keeps its priority."""
    from bot.clock import SystemClock

    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    worker = InboxWorker(db, SystemClock(), lambda request: None)
    try:
        mine = nice()
        theirs = worker.executor.submit(nice).result(timeout=10)
    finally:
        worker.stop()
    assert theirs == min(19, mine + BACKGROUND_NICE)
    assert nice() == mine
