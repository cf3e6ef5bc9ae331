"""The ack path and the durable inbox: what got a 2xx is stored whole and its work is done from
the store, after a failure or a crash too; refusals come before any parsing."""

from __future__ import annotations

import copy
import json
import logging
import time
from concurrent.futures import Executor, Future
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import select

from bot.app import inbox_worker
from bot.demo.driver import sign
from bot.demo.world import SIGNING_SECRET
from bot.inbox import DONE, PENDING, InboxEvent, accept
from bot.intake import (
    MAX_BODY_BYTES,
    MAX_JSON_DEPTH,
    REPLAY,
    InboxWorker,
    InlineExecutor,
    RefusedRequest,
    _depth,
    parse_body,
)
from bot.paging.models import Page
from bot.support.models import Ticket
from tests.paging_samples import alertmanager_body
from tests.test_paging import INFRA, PRIMARY, pages_in, send

HELP = "C0HELP00001"
APP_DEV = "U0APP00001"


def tickets(world) -> list[Ticket]:
    with world.db.session() as session:
        return list(session.exec(select(Ticket)).all())


def row(world, key: str) -> InboxEvent:
    with world.db.session() as session:
        found = session.get(InboxEvent, key)
        assert found is not None
        return found


def signed_headers(body: str, timestamp: str | None = None) -> dict[str, str]:
    ts = timestamp or str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sign(SIGNING_SECRET, ts, body),
    }


def message_envelope(world, event_id: str, text: str, ts: str = "1763300000.000100") -> str:
    event = {
        "type": "message",
        "channel": HELP,
        "user": APP_DEV,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel_type": "channel",
    }
    return json.dumps(
        {"type": "event_callback", "event_id": event_id, "team_id": "T0", "event": event}
    )


# ---- what Slack is told -------------------------------------------------------------------------


def test_events_the_bot_does_not_act_on_still_get_a_200(world):
    response, ts = world.slack.message("C0RANDOM001", APP_DEV, "lunch anyone?")
    assert response.status_code == 200
    assert world.slack.reaction(APP_DEV, "thumbsup", "C0RANDOM001", ts).status_code == 200
    assert world.slack.event({"type": "emoji_changed", "subtype": "add"}).status_code == 200
    assert tickets(world) == []


def test_a_malformed_timestamp_is_refused_as_unauthorised(world):
    body = message_envelope(world, "Ev0BADTS01", "help")
    for stamp in ("soon", "-1", "1e9", ""):
        headers = signed_headers(body, stamp) | {"X-Slack-Request-Timestamp": stamp}
        response = world.http.post("/slack/events", content=body, headers=headers)
        assert response.status_code == 401, stamp
        assert "timestamp" in response.json()["error"]


def test_deeply_nested_json_is_refused_with_a_400(world):
    for depth in (100, 100_000):
        body = '{"type": "event_callback", "x": ' + "[" * depth + "]" * depth + "}"
        response = world.http.post("/slack/events", content=body, headers=signed_headers(body))
        assert response.status_code == 400
        assert "nested" in response.json()["error"]


def _nesting(value: Any) -> int:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max((_nesting(v) for v in value), default=0)
    return 1


JSON = st.recursive(
    st.none() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner),
    max_leaves=60,
)


@settings(max_examples=300, deadline=None)
@given(JSON, st.integers(0, MAX_JSON_DEPTH + 2))
def test_the_nesting_limit_counts_as_a_recursive_walk_does(value, wrap):
    for _ in range(wrap):
        value = {"x": [value]} if wrap % 2 else [value]
    depth = _nesting(value)
    assert _depth(value) == min(depth, MAX_JSON_DEPTH + 1)
    text = json.dumps({"type": "event_callback", "x": value})
    if depth + 1 <= MAX_JSON_DEPTH:
        assert parse_body(text.encode(), "application/json")["x"] == value
    else:
        with pytest.raises(RefusedRequest, match="nested too deeply"):
            parse_body(text.encode(), "application/json")


def test_a_huge_body_is_refused_before_its_signature_or_content_is_read(world):
    body = "x" * (MAX_BODY_BYTES + 1)
    response = world.http.post("/slack/events", content=body, headers=signed_headers("other"))
    assert response.status_code == 413

    def chunks():  # no Content-Length: refused once the cap is passed
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"y" * 65536

    response = world.http.post("/slack/events", content=chunks(), headers=signed_headers("y"))
    assert response.status_code == 413


def test_a_cold_start_while_slack_answers_429_still_acts_on_every_event(world):
    world.fake.fail("auth.test", status=429, retry_after=30, times=100)
    for n in range(3):
        response, _ = world.slack.message(HELP, APP_DEV, f"Deploys fail, case {n}")
        assert response.status_code == 200
    assert len(tickets(world)) == 3


def test_acks_never_call_slack_for_who_the_bot_is(world):
    world.slack.command("/oncall", "now", "U0ENG00001")
    world.slack.message("C0RANDOM001", APP_DEV, "hello")
    # Only the work phase may ask (once per process), never the ack path.
    assert len(world.fake.calls_to("auth.test")) <= 1


# ---- durable work -------------------------------------------------------------------------------


def test_a_request_is_stored_whole_and_marked_done_when_its_work_is_done(world):
    response, _ = world.slack.message(HELP, APP_DEV, "Deploys fail", event_id="Ev0STORED1")
    assert response.status_code == 200
    stored = row(world, "event:Ev0STORED1")
    assert stored.status == DONE and stored.attempts == 1 and stored.done_at is not None
    assert len(tickets(world)) == 1


def test_work_that_failed_is_retried_from_the_store_until_done(world):
    original = world.runtime.db.session
    calls = {"n": 0}

    def flaky():
        # The insert and the claim go through (each a statement of its own, not a session);
        # the listener's own unit of work, the first session, fails.
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("database went away")
        return original()

    world.runtime.db.session = flaky  # type: ignore[method-assign]
    try:
        response, _ = world.slack.message(HELP, APP_DEV, "Builds hang", event_id="Ev0FLAKY01")
    finally:
        world.runtime.db.session = original  # type: ignore[method-assign]
    assert response.status_code == 200
    assert row(world, "event:Ev0FLAKY01").status == PENDING
    assert tickets(world) == []
    world.advance(minutes=1)
    assert row(world, "event:Ev0FLAKY01").status == DONE
    assert len(tickets(world)) == 1
    world.advance(minutes=10)
    assert len(tickets(world)) == 1


def test_a_slack_retry_of_a_request_whose_first_try_never_finished_is_processed(world):
    body = message_envelope(world, "Ev0CUTOFF1", "The registry is down")
    # The first try was stored, then the process died before it did anything.
    accept(
        world.db,
        "event",
        "event:Ev0CUTOFF1",
        world.clock.now(),
        body=body,
        headers={"content-type": "application/json"},
    )
    headers = signed_headers(body) | {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "timeout"}
    response = world.http.post("/slack/events", content=body, headers=headers)
    world.settle()
    assert response.status_code == 200
    assert [t.summary for t in tickets(world)] == ["The registry is down"]
    again = world.http.post("/slack/events", content=body, headers=headers)
    assert again.status_code == 200 and len(tickets(world)) == 1


def test_work_a_dead_receiver_held_is_taken_over_when_its_lease_runs_out(world):
    body = message_envelope(world, "Ev0ORPHAN1", "Can't reach the VPN")
    accept(
        world.db,
        "event",
        "event:Ev0ORPHAN1",
        world.clock.now(),
        body=body,
        headers={"content-type": "application/json"},
    )
    worker = inbox_worker(world.runtime)
    assert worker.sweep() == 0  # the receiver's head start: nobody else takes it yet
    world.clock.set(world.clock.now() + worker.lease + timedelta(seconds=1))
    assert worker.sweep() == 1
    world.settle()
    assert len(tickets(world)) == 1
    assert row(world, "event:Ev0ORPHAN1").status == DONE


def test_a_page_button_is_answered_before_its_work_and_the_work_is_done_once(world):
    sent = send(world, "alertmanager", alertmanager_body())
    (page_id,) = sent.json()["page_ids"]
    (message,) = [m for m in world.fake.dms(PRIMARY) if m.text.startswith("Page #")]
    response = world.slack.press(message, "page.acknowledge", PRIMARY)
    assert response.status_code == 200 and response.content == b""
    with world.db.session() as session:
        assert session.get(Page, page_id).acknowledged_by == PRIMARY
    with world.db.session() as session:
        actions = session.exec(select(InboxEvent).where(InboxEvent.kind == "action")).all()
    assert [a.status for a in actions] == [DONE]


class HeldExecutor(Executor):
    """Keeps submitted work until the test runs it (as a busy pool would, after the answer)."""

    def __init__(self) -> None:
        self.jobs: list[Any] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future:
        self.jobs.append((fn, args, kwargs))
        future: Future = Future()
        future.set_result(None)
        return future

    def run(self) -> list[Any]:
        jobs, self.jobs = self.jobs, []
        return [fn(*args, **kwargs) for fn, args, kwargs in jobs]


def command_rows(world) -> list[InboxEvent]:
    with world.db.session() as session:
        return list(session.exec(select(InboxEvent).where(InboxEvent.kind == "command")).all())


def test_oncall_now_is_answered_in_the_ack_without_being_stored(world):
    held = HeldExecutor()
    inbox_worker(world.runtime).executor = held
    for text in ("", "now", "who"):
        response = world.slack.command("/oncall", text, "U0ENG00001")
        assert response.status_code == 200
        assert "Who is on call now" in response.json()["text"]
    # It changes nothing: nothing is stored, no work is queued, a retry simply asks again.
    assert command_rows(world) == [] and held.jobs == []
    # A subcommand answered after the ack stays pending until its work runs from the row.
    world.slack.command("/oncall", "help", "U0ENG00001")
    assert [r.status for r in command_rows(world)] == [PENDING]
    assert held.run() == [True]
    assert "/oncall schedule" in world.last_response()["text"]
    assert [r.status for r in command_rows(world)] == [DONE]


def test_a_form_opened_in_the_ack_is_stored_done_without_a_replay(world):
    held = HeldExecutor()
    inbox_worker(world.runtime).executor = held
    response = world.slack.command("/oncall", "cover", "U0ENG00001")
    assert response.status_code == 200
    assert len(world.fake.calls_to("views.open")) == 1  # opened while the trigger was fresh
    (stored,) = command_rows(world)
    assert stored.status == DONE and stored.body is None  # before any work ran
    assert held.run() == [False]  # its replay finds nothing to claim
    assert len(world.fake.calls_to("views.open")) == 1


def test_a_replica_that_only_answers_stores_the_work_for_a_worker_to_take_at_once(world):
    inbox_worker(world.runtime).answer_only()  # `serve --ack-only`
    response, _ = world.slack.message(HELP, APP_DEV, "Deploys fail", event_id="Ev0ACKONLY")
    assert response.status_code == 200
    stored = row(world, "event:Ev0ACKONLY")
    assert stored.status == PENDING and stored.attempts == 0 and tickets(world) == []
    assert stored.lease_until is not None and stored.lease_until <= world.clock.now()
    # A form still opens in the ack, while its trigger is fresh.
    world.slack.command("/oncall", "cover", "U0ENG00001")
    assert len(world.fake.calls_to("views.open")) == 1
    # `opsbot worker`: another process's worker over the same database takes the work at once.
    worker = InboxWorker(world.db, world.clock, world.bolt.dispatch, executor=InlineExecutor())
    assert worker.sweep() == 1
    world.settle()
    assert len(tickets(world)) == 1 and row(world, "event:Ev0ACKONLY").status == DONE
    assert worker.sweep() == 0


def test_a_command_whose_text_says_payload_is_answered(world):
    # Bolt's own body parser takes such a form for an interaction's payload and loses it.
    response = world.slack.command("/oncall", "help payload", "U0ENG00001")
    assert response.status_code == 200
    assert "/oncall schedule" in world.last_response()["text"]
    assert [r.status for r in command_rows(world)] == [DONE]


def test_the_work_phase_of_an_interaction_is_not_logged_as_unhandled(world, caplog):
    with caplog.at_level(logging.WARNING):
        world.slack.command("/oncall", "help", "U0ENG00001")
    assert "/oncall schedule" in world.last_response()["text"]
    assert not [r for r in caplog.records if "Unhandled request" in r.getMessage()]


def test_a_replay_hands_its_lazy_function_the_parsed_request_without_a_deep_copy(
    world, monkeypatch
):
    """The work of a stored request gets its own context and `ack` but shares the parsed body
    and the context's client and respond (copy_replays_lightly); Bolt builds each lazy
    function's request through `_build_lazy_request`, which that replaces."""
    runner = world.bolt.listener_runner
    light = runner._build_lazy_request
    built: list[tuple[Any, Any]] = []

    def spy(request: Any, name: str) -> Any:
        copied = light(request, name)
        built.append((request, copied))
        return copied

    monkeypatch.setattr(runner, "_build_lazy_request", spy)
    world.slack.command("/oncall", "schedule infra-oncall 1", user=PRIMARY)
    assert "Upcoming infra-oncall shifts" in world.last_response()["text"]
    assert len(built) == 1, "Bolt no longer builds lazy requests through _build_lazy_request"
    original, copied = built[0]
    assert copied.body is original.body and copied.body["command"] == "/oncall"
    assert copied.context is not original.context
    assert copied.context["ack"] is not original.context["ack"]
    assert copied.context["client"] is original.context["client"]
    assert copied.context.get(REPLAY) and copied.lazy_only
    assert copied.context["listener_runner"] is runner


def test_the_work_of_a_stored_request_ends_at_the_listener_that_does_it(world, monkeypatch):
    """Bolt would go on asking every later listener after a lazy-only request's work, and end in
    its unhandled-request warning (end_replays_at_their_listener)."""
    from slack_bolt import App
    from slack_bolt.listener.listener import Listener

    send(world, "alertmanager", alertmanager_body())
    post = copy.deepcopy(pages_in(world, INFRA)[0])  # as a second reader still sees it
    world.slack.press(post, "page.acknowledge", PRIMARY)
    asked: list[Any] = []
    unhandled: list[Any] = []
    matches = Listener.matches

    def counted(self: Listener, **kwargs: Any) -> bool:
        asked.append(self)
        return matches(self, **kwargs)

    monkeypatch.setattr(Listener, "matches", counted)
    monkeypatch.setattr(
        App, "_handle_unmatched_requests", lambda _, req, resp: unhandled.append(req)
    )
    world.slack.press(post, "page.acknowledge", "U0ENG00004")
    assert "already acknowledged" in world.last_response()["text"]
    # The answer was made without Bolt (a plain ack); the work asked the listeners in order up
    # to the one that took the request, and no further.
    listeners = world.bolt._listeners
    position = listeners.index(asked[-1])
    assert asked == listeners[: position + 1]
    assert position < len(listeners) - 1  # there are later listeners, and they were not asked
    assert unhandled == []
