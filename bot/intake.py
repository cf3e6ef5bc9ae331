"""The Slack ack path and the work done from the inbox afterwards.

Ack path (on the request): cap the body, verify the signature, parse, one insert into the inbox,
answer. Events are answered 200 at once; interactions also run their listener's ack function
(Bolt, `process_before_response=True`), which opens a modal or validates a view while the
trigger is fresh. Work (after the answer, from the stored row): the request is dispatched again
through the same Bolt app with a no-op ack; an interaction only runs its lazy functions. Whoever
holds the row's lease does it: the receiving process at once, else any replica or the worker
once the lease has run out.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

from slack_bolt import Ack, BoltRequest, BoltResponse
from slack_bolt.kwargs_injection import build_required_kwargs
from slack_bolt.lazy_listener import LazyListenerRunner
from slack_bolt.listener.thread_runner import ThreadListenerRunner
from slack_bolt.request.internals import build_context
from slack_bolt.util.utils import get_arg_names_of_callable
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bot import inbox
from bot.clock import Clock
from bot.db import Database
from bot.forms import parse_form

log = logging.getLogger(__name__)
T = TypeVar("T")

# Slack's payloads are a few kilobytes; a message shortcut on a long message with blocks stays far
# below this. Anything larger is refused before it is read.
MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 48
# How much lower the work of stored requests runs than the answers to Slack (nice levels).
BACKGROUND_NICE = 10
REPLAY = "opsbot_replay"  # context key: this dispatch is the work phase of a stored request


class RefusedRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def verify_signature(secret: str, raw: bytes, headers: dict[str, str]) -> None:
    """Slack's v0 signature over the raw bytes, and a timestamp within five minutes (401)."""
    timestamp = headers.get("x-slack-request-timestamp", "")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise RefusedRequest(401, "invalid request: missing or malformed timestamp")
    if not SignatureVerifier(secret).is_valid(
        raw, timestamp, headers.get("x-slack-signature") or None
    ):
        raise RefusedRequest(401, "invalid request")


def retry_number(header: str | None) -> int:
    """Slack's X-Slack-Retry-Num (0 on a first try, or when it is not a number)."""
    return int(header) if header and header.isdigit() else 0


def _depth(value: Any) -> int:
    """How deep `value` nests (a scalar is 1), counted up to one past MAX_JSON_DEPTH. Level by
    level, containers' children gathered in C: a page button's payload in 10 us, not 37 us."""
    level, frontier = 1, [value]
    while level <= MAX_JSON_DEPTH:
        children: list[Any] = []
        for node in frontier:
            if isinstance(node, dict):
                children.extend(node.values())
            elif isinstance(node, list):
                children.extend(node)
        if not children:
            return level
        frontier = children
        level += 1
    return level


def _json(text: str) -> Any:
    try:
        value = json.loads(text)
    except RecursionError:
        raise RefusedRequest(400, "the JSON is nested too deeply") from None
    except ValueError:
        raise RefusedRequest(400, "the body is neither JSON nor form data") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise RefusedRequest(400, "the JSON is nested too deeply")
    return value


def parse_body(raw: bytes, content_type: str) -> dict[str, Any]:
    """The request as Bolt will see it (400 when it is neither JSON nor form data)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RefusedRequest(400, "the body is not UTF-8") from None
    if content_type.startswith("application/json") or text.startswith("{"):
        body = _json(text)
        if not isinstance(body, dict):
            raise RefusedRequest(400, "the JSON body is not an object")
        return body
    form = dict(parse_form(text))
    if "payload" in form:
        body = _json(form["payload"])
        if not isinstance(body, dict):
            raise RefusedRequest(400, "the payload is not an object")
        return body
    if not form:
        raise RefusedRequest(400, "the body is neither JSON nor form data")
    return form


class ParsedRequest(BoltRequest):
    """A BoltRequest for a body `parse_body` has parsed, kept parsed when Bolt copies it for a
    lazy function: Bolt would parse it again, and its own parser loses a slash command whose
    text has the word "payload" in it (it takes the form for an interaction's payload field,
    finds none, and the command goes unanswered)."""

    def __init__(
        self, raw: str, body: dict[str, Any], headers: dict[str, Any], **options: Any
    ) -> None:
        super().__init__(body="", headers=headers, **options)
        self.raw_body = raw
        self.body = body
        self.context = build_context(self.context, body)

    def to_copyable(self) -> BoltRequest:
        return ParsedRequest(
            self.raw_body,
            self.body,
            self.headers,  # type: ignore[arg-type]
            query=self.query,
            context=self.context.to_copyable(),
            mode=self.mode,
        )


class InboxLazyRunner(LazyListenerRunner):
    """Bolt's lazy functions, made durable: nothing is started on the ack path (the stored inbox
    row is the work to do); in the work phase they run in the calling thread, and an exception
    reaches the dispatcher so the row is retried."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def start(self, function: Callable[..., None], request: BoltRequest) -> None:
        if not request.context.get(REPLAY):
            return
        function(
            **build_required_kwargs(
                logger=self.logger,
                required_arg_names=get_arg_names_of_callable(function),
                request=request,
                response=None,
                this_func=function,
            )
        )


def copy_replays_lightly(runner: ThreadListenerRunner) -> None:
    """Bolt hands each lazy function a deep copy of the request (`create_copy`): the body, and
    the context's WebClient, respond and say, copied for every stored request's work (a
    quarter of the Python calls of a second page press's work in the worker). A replayed `ParsedRequest` runs its lazy function at
    once in the same thread (InboxLazyRunner) and is dropped after, so its copy shares the
    parsed body and those helpers; it gets its own context and its own `ack`, as a deep copy
    would. Other requests keep Bolt's copy. Bolt has no hook for this: its private
    `_build_lazy_request` is replaced (tests/test_intake.py fails if Bolt stops calling it)."""
    deep = runner._build_lazy_request

    def build_lazy_request(request: BoltRequest, lazy_func_name: str) -> BoltRequest:
        if not (isinstance(request, ParsedRequest) and request.context.get(REPLAY)):
            return deep(request, lazy_func_name)
        copied = request.to_copyable()
        copied.context["ack"] = Ack()
        copied.lazy_only = True
        copied.lazy_function_name = lazy_func_name
        copied.context["listener_runner"] = runner
        for name in ("get_thread_context", "save_thread_context"):  # not copyable, as in Bolt's
            if request.context.get(name) is not None:
                copied.context[name] = request.context[name]
        return copied

    runner._build_lazy_request = build_lazy_request  # type: ignore[method-assign]


def end_replays_at_their_listener(runner: ThreadListenerRunner) -> None:
    """Bolt runs a lazy-only request's lazy functions and then answers nothing (no ack ran), so
    its dispatch goes on asking every later listener and ends in "Unhandled request": for a
    stored request's work, about sixty listeners asked after the one that did it, and the
    warning built with the body, on every second page press. The work of a stored request ends
    at the listener that did it, as its answer did: a 200 once the lazy functions have run (an
    exception in one still reaches the dispatcher, and the row is retried)."""
    run = runner.run

    def run_to_the_end(
        request: BoltRequest,
        response: BoltResponse,
        listener_name: str,
        listener: Any,
        starting_time: float | None = None,
    ) -> BoltResponse | None:
        answered = run(request, response, listener_name, listener, starting_time)
        if answered is None and request.lazy_only and request.context.get(REPLAY):
            return BoltResponse(status=200, body="")
        return answered

    runner.run = run_to_the_end  # type: ignore[method-assign]


def lower_this_thread(by: int = BACKGROUND_NICE) -> None:
    """Run the calling thread `by` nice levels below where it runs now (at most 19). On Linux a
    thread has its own nice value: when an answer's thread wakes (a request, the database's
    reply), the kernel gives it a core before the work of stored requests of the same process.
    Elsewhere nothing changes (setpriority would name a process, not a thread)."""
    if not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    try:
        now = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, now + by))
    except OSError as exc:  # a sandbox that forbids it: the work runs as before
        log.info("could not lower the priority of %s: %s", threading.current_thread().name, exc)


_ack_path = threading.local()  # the stored request the thread is answering: (worker, key)
_replay = threading.local()  # set while the thread dispatches a stored request's work


class QuietReplays(logging.Filter):
    """Bolt logs "Unhandled request" (with a listener it suggests writing) when it works a
    stored event that no listener takes: every event is stored and answered before a listener
    is asked, so the ack path never logs it for such an event, and neither does its work. (The
    work of an interaction ends at its listener: `end_replays_at_their_listener`.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            getattr(_replay, "active", False) and str(record.msg).startswith("Unhandled request")
        )


def answered_at_once() -> None:
    """Said by a listener that did all of its request's work before the answer: the stored row
    is marked done now (one statement), so the replay submitted for it finds nothing to claim
    instead of dispatching the request again for nothing."""
    current = getattr(_ack_path, "request", None)
    _ack_path.request = None
    if current is not None:
        worker, key = current
        worker.mark_done_at_once(key)


class InlineExecutor(Executor):
    """Runs submitted work in the calling thread: deterministic for tests and the demo."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        from concurrent.futures import Future

        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def seconds_from_env(name: str, default: float) -> timedelta:
    try:
        return timedelta(seconds=float(os.environ.get(name, default)))
    except ValueError:
        return timedelta(seconds=default)


class AckPriority:
    """Answers to Slack before background work, inside one process.

    The ack path counts itself in and out (`answering`, around the whole request, and
    `answering_here`, in the thread that dispatches it). Background threads of the same process
    (the work of stored requests, the outbox sender, the scheduler) wait, before each SQL
    statement and before they start a stored request, until no answer is being made and none
    was made in the last `quiet` seconds: the GIL, the CPU and the database then go to the
    answers Slack waits for (a burst of requests is answered before work resumes), instead of
    each ack queueing behind CPU-bound work. Each wait is bounded (`max_wait` plus `quiet`), so
    background work still gets done under a steady stream of requests. On SQLite a thread that
    holds the write lock is never held back (the ack's insert may be waiting for that lock).
    """

    def __init__(self, max_wait: float = 0.1, quiet: float = 0.004) -> None:
        self.max_wait = max_wait
        self.quiet = quiet
        self._answering = 0
        self._last_answer = -math.inf  # time.monotonic() when the last answer was made
        self._idle = threading.Condition()
        self._local = threading.local()
        self.monotonic: Callable[[], float] = time.monotonic  # replaceable in tests
        self.sleep: Callable[[float], None] = time.sleep

    @contextmanager
    def answering(self) -> Iterator[None]:
        with self._idle:
            self._answering += 1
        try:
            yield
        finally:
            with self._idle:
                self._answering -= 1
                self._last_answer = self.monotonic()
                if not self._answering:
                    self._idle.notify_all()

    def answering_here(self, answer: Callable[..., T]) -> Callable[..., T]:
        """`answer`, marked as the ack path in the thread that runs it (never held back)."""

        def marked(*args: Any) -> T:
            self._local.answering = True
            try:
                return answer(*args)
            finally:
                self._local.answering = False

        return marked

    def let_answers_go_first(self) -> None:
        if getattr(self._local, "answering", False):
            return
        if self._answering:
            with self._idle:
                self._idle.wait_for(lambda: not self._answering, self.max_wait)
        since = self.monotonic() - self._last_answer
        if since < self.quiet:
            self.sleep(self.quiet - since)

    def install(self, engine: Engine) -> None:
        """Hold background statements on `engine` back while answers are being made."""

        def before_statement(conn: Any, cursor: Any, *_: Any) -> None:
            if conn.dialect.name == "sqlite" and cursor.connection.in_transaction:
                return  # it may hold the write lock the ack's insert waits for
            self.let_answers_go_first()

        event.listen(engine, "before_cursor_execute", before_statement)


class InboxWorker:
    """Does the work of stored requests: right after the answer in the process that received
    them, and, by sweeping, whatever a crashed or failed attempt left pending."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        dispatch: Callable[[BoltRequest], BoltResponse],
        *,
        executor: Executor | None = None,
        max_attempts: int = 10,
        priority: AckPriority | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.dispatch = dispatch
        # How long a claim lasts: longer than any listener takes, so a slow one is not doubled.
        self.lease = seconds_from_env("OPSBOT_INBOX_LEASE_SECONDS", 60)
        self.poll = seconds_from_env("OPSBOT_INBOX_POLL_SECONDS", 2)
        self.max_attempts = max_attempts
        self.priority = priority or AckPriority()
        db.watch_engines(self.priority.install)
        # Work is CPU-bound Python: more threads than two only contend for the GIL (and with the
        # answers to Slack), they do not finish sooner.
        self.executor = executor or ThreadPoolExecutor(
            2, thread_name_prefix="opsbot-inbox", initializer=lower_this_thread
        )
        self.after_work: list[Callable[[], None]] = []
        # `serve --ack-only`: this process answers and stores; `opsbot worker` processes do the
        # work (no head start, nothing submitted here, no sweep).
        self.answers_only = False
        self._unstored: list[Callable[[dict[str, Any]], bool]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the ack path ---------------------------------------------------------------------------

    def answer_unstored(self, read_only: Callable[[dict[str, Any]], bool]) -> None:
        """Requests for which `read_only(body)` holds change nothing and are answered in full in
        the ack (`/oncall now`): nothing is stored for them, so a lost answer loses nothing and
        Slack's retry simply asks again."""
        self._unstored.append(read_only)

    def unstored(self, body: dict[str, Any]) -> bool:
        return any(read_only(body) for read_only in self._unstored)

    def answer_only(self) -> None:
        """Leave every stored request's work to the workers (`serve --ack-only`): the row is
        theirs to claim at once, and this process spends its CPU on answers alone."""
        self.answers_only = True

    def accept(
        self, kind: str, key: str, raw: str, headers: dict[str, str], retry_num: int
    ) -> inbox.Accepted:
        return inbox.accept(
            self.db,
            kind,
            key,
            self.clock.now(),
            body=raw,
            headers=headers,
            retry_num=retry_num,
            head_start=self.head_start,
        )

    @property
    def head_start(self) -> timedelta:
        """How long a stored row stays its receiver's: none when the workers take it at once."""
        return timedelta(0) if self.answers_only else self.lease

    def accepted(self, key: str, accepted: inbox.Accepted, retry_num: int) -> None:
        """After the ack path's insert: work a new row soon, and take over a row seen before
        (Slack's retry, or another replica's copy) whose first try never finished, rather than
        wait for its lease."""
        if not accepted.new:
            log.info("%s seen before (%s, retry %s)", key, accepted.status, retry_num)
            if accepted.status != inbox.PENDING:
                return
        self.submit(key)

    def store(
        self, kind: str, key: str, raw: str, headers: dict[str, str], retry_num: int
    ) -> inbox.Accepted:
        """Store a request and see to its work (the ack path of a request answered plainly)."""
        accepted = self.accept(kind, key, raw, headers, retry_num)
        self.accepted(key, accepted, retry_num)
        return accepted

    def submit(self, key: str) -> None:
        """Do the stored request's work soon, in this process (it holds the head start)."""
        if self.answers_only:
            return  # a worker's sweep takes it
        try:
            self.executor.submit(self._safely, key, True)
        except RuntimeError:  # shutting down: the row stays pending for the next sweep
            log.warning("inbox %s left for the next sweep (shutting down)", key)

    def answering(self, key: str | None) -> None:
        """The ack path of this thread is answering the stored request `key` (None: none)."""
        _ack_path.request = (self, key) if key is not None else None

    def mark_done_at_once(self, key: str) -> None:
        try:
            inbox.done_at_once(self.db, key, self.clock.now())
        except Exception:  # the row stays pending; its replay (a no-op) finishes it
            log.exception("inbox %s: could not be marked done now; it stays pending", key)

    # -- the work -------------------------------------------------------------------------------

    def _safely(self, key: str, mine: bool) -> bool:
        self.priority.let_answers_go_first()
        try:
            return self.process(key, mine=mine)
        except Exception:  # the database went away mid-way: the lease runs out, a sweep retries
            log.exception("inbox %s: could not be processed now; it stays pending", key)
            return False

    def process(self, key: str, *, mine: bool = False) -> bool:
        """Claim the row and dispatch it again through Bolt; True when its work is done."""
        claimed = inbox.claim(self.db, key, self.clock.now(), self.lease, mine=mine)
        if claimed is None:
            return False
        token, row = claimed
        error: str | None = None
        try:
            raw = row.body or ""
            request = ParsedRequest(
                raw,
                parse_body(raw.encode(), row.headers.get("content-type", "")),
                {k: [v] for k, v in row.headers.items()},
                context={REPLAY: True},
            )
            request.lazy_only = row.kind != "event"  # an interaction's ack function already ran
            _replay.active = True
            try:
                response = self.dispatch(request)
            finally:
                _replay.active = False
            if response.status >= 500:
                error = (
                    request.context.get("opsbot_error") or f"listener answered {response.status}"
                )
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        now = self.clock.now()
        if error is None:
            inbox.finish(self.db, key, token, now)
        else:
            status = inbox.retry_later(
                self.db, key, token, now, error, max_attempts=self.max_attempts
            )
            level = logging.ERROR if status == inbox.FAILED else logging.WARNING
            log.log(level, "inbox %s attempt %s failed (%s): %s", key, row.attempts, status, error)
        for hook in self.after_work:
            hook()
        return error is None

    def sweep(self, limit: int = 100) -> int:
        """Process every pending row nobody holds; returns how many were done."""
        done = 0
        for key in inbox.due(self.db, self.clock.now(), limit):
            if self._safely(key, False):
                done += 1
        return done

    # -- the loop -------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="opsbot-inbox-sweep", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        lower_this_thread()
        failures = 0
        while not self._stop.is_set():
            done = 0
            try:
                done = self.sweep()
                failures = 0
            except Exception:  # the database is away: keep trying, a little slower each time
                failures += 1
                log.exception("inbox sweep failed (%s in a row); retrying", failures)
            if done:
                continue  # more may be waiting: look again at once
            wait = self.poll.total_seconds() * min(2**failures, 15)
            self._stop.wait(wait)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if isinstance(self.executor, ThreadPoolExecutor):
            self.executor.shutdown(wait=True, cancel_futures=False)
