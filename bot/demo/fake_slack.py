"""A fake Slack Web API on loopback: records every call and answers the way Slack does.

The demo uses it so opsbot runs with no network; the tests use it (through tests/harness.py)
to see exactly what the bot sent, and to make Slack fail on purpose (429, 500, ok:false).
Response shapes follow Slack's published Web API spec (checked by tests/test_fake_slack.py).

It can also behave like Slack under load and in trouble: `enforce(limits)` answers 429 with
`Retry-After` whenever a call exceeds Slack's per-method or per-channel rate limits (the same
table the sender paces itself with), and `outage(seconds)` answers 5xx for a window of time.
Both read time from `monotonic`, which tests replace with their injected clock. It listens on
127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from bot.outbox.limits import RateLimiter, SlackLimits

TEAM_ID = "T0OPSBOT01"
BOT_USER_ID = "U0OPSBOT01"
BOT_ID = "B0OPSBOT01"


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    response: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    at: float = 0.0  # when it arrived, on the fake's monotonic clock


@dataclass
class Failure:
    method: str
    status: int = 200
    error: str | None = None
    retry_after: int | None = None
    times: int = 1


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None = None
    user: str = BOT_USER_ID
    updates: int = 0
    ephemeral_to: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass
class Outage:
    start: float
    end: float
    status: int
    error: str
    methods: frozenset[str] | None


class FakeSlack:
    """Start with `start()`; point SLACK_API_URL (or a WebClient's base_url) at `api_url`."""

    def __init__(
        self,
        users: dict[str, dict[str, Any]] | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.monotonic = monotonic
        self.limiter: RateLimiter | None = None
        self._outages: list[Outage] = []
        self.calls: list[Call] = []
        self.responses: list[Call] = []  # posts to response_url
        self.messages: list[Message] = []
        self.usergroups: dict[str, list[str]] = {}
        self.topics: dict[str, str] = {}
        self.home_views: dict[str, dict[str, Any]] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = dict(users or {})
        # What `opsbot doctor` checks, settable by tests: the scopes the token was granted (None:
        # every scope the manifest asks for), per-channel answers of conversations.info (None:
        # channel_not_found; else overrides such as {"is_member": False}), user groups that exist.
        self.scopes: list[str] | None = None
        self.channels: dict[str, dict[str, Any] | None] = {}
        self.existing_usergroups: set[str] = set()
        self.files: dict[str, dict[str, Any]] = {}  # file id -> name, bytes, where shared
        self._failures: list[Failure] = []
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._base_ts = int(time.time())

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake._handle(self)

            def do_GET(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval: stop() waits for the loop to notice, 0.5 s per world by default.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "FakeSlack is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return self.base_url + "/api/"

    def response_url(self, name: str = "r") -> str:
        return f"{self.base_url}/response/{name}-{next(self._ids)}"

    # -- test controls --------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        *,
        status: int = 200,
        error: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls of `method` fail: HTTP status, Slack error, or both."""
        if status == 200 and error is None:
            error = "internal_error"
        with self._lock:
            self._failures.append(Failure(method, status, error, retry_after, times))

    def enforce(self, limits: SlackLimits | None = None) -> None:
        """Answer 429 with Retry-After to calls beyond `limits` (Slack's published ones)."""
        self.limiter = RateLimiter(limits or SlackLimits.published(), monotonic=self.monotonic)

    def outage(
        self,
        seconds: float,
        *,
        status: int = 500,
        error: str = "internal_error",
        methods: list[str] | None = None,
        after: float = 0.0,
    ) -> None:
        """From `after` seconds from now, answer every call (or `methods`) with `status`."""
        start = self.monotonic() + after
        with self._lock:
            self._outages.append(
                Outage(
                    start,
                    start + seconds,
                    status,
                    error,
                    frozenset(methods) if methods else None,
                )
            )

    def rate_limited(self, method: str | None = None) -> list[Call]:
        """Calls answered 429 (all of them, or of one method)."""
        with self._lock:
            return [
                c for c in self.calls if c.status == 429 and (method is None or c.method == method)
            ]

    def add_user(
        self, user_id: str, name: str, email: str | None = None, tz: str = "America/New_York"
    ) -> None:
        self.users[user_id] = {
            "id": user_id,
            "name": name,
            "real_name": name,
            "email": email,
            "tz": tz,
        }

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
            self.responses.clear()

    def posts(self, channel: str | None = None) -> list[Message]:
        """Messages as they stand now (after any updates), optionally in one channel or DM."""
        with self._lock:
            return [
                m
                for m in self.messages
                if channel is None or m.channel == self._dm(channel) or m.channel == channel
            ]

    def dms(self, user_id: str) -> list[Message]:
        return self.posts(self._dm(user_id))

    def message(self, channel: str, ts: str) -> Message | None:
        with self._lock:
            for m in self.messages:
                if m.channel == channel and m.ts == ts:
                    return m
        return None

    # -- the HTTP side --------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        data = request.rfile.read(length) if length else b""
        url = urlparse(request.path)
        if url.path.startswith("/upload/"):  # the URL files.getUploadURLExternal hands out
            self._receive_upload(request, url.path.rsplit("/", 1)[-1], data)
            return
        raw = data.decode("utf-8")
        content_type = request.headers.get("Content-Type", "")
        if "json" in content_type:
            args = json.loads(raw or "{}")
        else:
            args = {k: v[0] for k, v in parse_qs(raw).items()}
            args.update({k: v[0] for k, v in parse_qs(url.query).items()})
            for key in ("blocks", "view", "attachments"):
                if isinstance(args.get(key), str):
                    with contextlib.suppress(ValueError):
                        args[key] = json.loads(args[key])
        headers = {k.lower(): v for k, v in request.headers.items()}
        if url.path.startswith("/response/"):
            with self._lock:
                self.responses.append(Call(url.path, args, headers, {"ok": True}))
            self._reply(request, 200, {"ok": True})
            return
        method = url.path.rsplit("/", 1)[-1]
        arrived = self.monotonic()
        status, body, extra_headers = self._answer(method, args, headers)
        with self._lock:
            self.calls.append(Call(method, args, headers, body, status, arrived))
        self._reply(request, status, body, extra_headers)

    def _receive_upload(self, request: BaseHTTPRequestHandler, file_id: str, data: bytes) -> None:
        with self._lock:
            found = self.files.get(file_id)
            if found is not None:
                found["content"] = data
        body = f"OK - {len(data)}" if found is not None else "file not found"
        raw = body.encode()
        request.send_response(200 if found is not None else 404)
        request.send_header("Content-Type", "text/plain")
        request.send_header("Content-Length", str(len(raw)))
        request.end_headers()
        request.wfile.write(raw)

    @staticmethod
    def _reply(
        request: BaseHTTPRequestHandler,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)

    def _answer(
        self, method: str, args: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            for failure in self._failures:
                if failure.method == method and failure.times > 0:
                    failure.times -= 1
                    extra = {}
                    if failure.retry_after is not None:
                        extra["Retry-After"] = str(failure.retry_after)
                    if failure.status == 429:
                        return 429, {"ok": False, "error": "ratelimited"}, extra
                    return (
                        failure.status,
                        {"ok": False, "error": failure.error or "fatal_error"},
                        extra,
                    )
        now = self.monotonic()
        with self._lock:
            for outage in self._outages:
                if outage.start <= now < outage.end and (
                    outage.methods is None or method in outage.methods
                ):
                    return outage.status, {"ok": False, "error": outage.error}, {}
        if self.limiter is not None:
            channel = args.get("channel") if isinstance(args.get("channel"), str) else None
            wait = self.limiter.take(method, channel)
            if wait > 0:
                # Slack's Retry-After is whole seconds.
                retry = str(max(1, math.ceil(wait)))
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": retry}
        if not headers.get("authorization", "").startswith("Bearer ") and method not in (
            "api.test",
            "oauth.v2.access",
        ):
            return 200, {"ok": False, "error": "not_authed"}, {}
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        with self._lock:
            extra = (
                {"x-oauth-scopes": ",".join(self.granted_scopes())} if method == "auth.test" else {}
            )
            return 200, handler(args), extra

    def granted_scopes(self) -> list[str]:
        if self.scopes is not None:
            return list(self.scopes)
        from bot.manifest import build_manifest

        return list(build_manifest()["oauth_config"]["scopes"]["bot"])

    # -- helpers for answers --------------------------------------------------------------------

    def _next_ts(self) -> str:
        return f"{self._base_ts + next(self._ts)}.{next(self._ids):06d}"

    @staticmethod
    def _dm(channel: str) -> str:
        return "D" + channel[1:] if channel[:1] in ("U", "W") else channel

    def _message_json(self, m: Message, metadata: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "message",
            "user": m.user,
            "bot_id": BOT_ID,
            "text": m.text,
            "ts": m.ts,
            "team": TEAM_ID,
        }
        if m.blocks is not None:
            out["blocks"] = m.blocks
        if m.thread_ts:
            out["thread_ts"] = m.thread_ts
        if metadata and m.metadata:
            out["metadata"] = m.metadata
        return out

    def _view(self, view: Any, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        if isinstance(view, str):
            view = json.loads(view)
        view_id = (extra or {}).get("id") or f"V{next(self._ids):09d}"
        result = {
            **view,
            "id": view_id,
            "team_id": TEAM_ID,
            "hash": f"{next(self._ids)}.abc",
            "app_id": "A0OPSBOT01",
            "bot_id": BOT_ID,
            "state": {"values": {}},
        }
        self.views[view_id] = result
        return result

    # -- the methods opsbot uses ----------------------------------------------------------------

    def _m_api_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "args": args}

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://opsbot-demo.slack.com/",
            "team": "Demo Org",
            "user": "opsbot",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("text") and not args.get("blocks") and not args.get("attachments"):
            return {"ok": False, "error": "no_text"}
        metadata = args.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        m = Message(
            self._dm(channel),
            self._next_ts(),
            args.get("text", ""),
            args.get("blocks"),
            args.get("thread_ts"),
            metadata=metadata,
        )
        self.messages.append(m)
        return {"ok": True, "channel": m.channel, "ts": m.ts, "message": self._message_json(m)}

    def _m_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._dm(str(args.get("channel", "")))
        oldest = float(args.get("oldest") or 0)
        limit = int(args.get("limit") or 100)
        metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        found = [
            self._message_json(m, metadata)
            for m in reversed(self.messages)
            if m.channel == channel
            and not m.ephemeral_to
            and (not m.thread_ts or m.thread_ts == m.ts)
            and float(m.ts) > oldest
        ][:limit]
        return {
            "ok": True,
            "messages": found,
            "has_more": False,
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
        }

    def _m_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._dm(str(args.get("channel", "")))
        parent = self.message(channel, str(args.get("ts", "")))
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        oldest = float(args.get("oldest") or 0)
        metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        replies = [
            m
            for m in self.messages
            if m.channel == channel and m.thread_ts == parent.ts and m is not parent
        ]
        head = {
            **self._message_json(parent),
            "thread_ts": parent.ts,
            "reply_count": len(replies),
            "subscribed": False,
        }
        head.pop("bot_id", None)
        head.pop("blocks", None)
        return {
            "ok": True,
            "messages": [
                head,
                *(
                    {**self._message_json(m, metadata), "parent_user_id": parent.user}
                    for m in replies
                    if float(m.ts) > oldest
                ),
            ],
            "has_more": False,
        }

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel") or not args.get("user"):
            return {"ok": False, "error": "channel_not_found"}
        m = Message(
            self._dm(args["channel"]),
            self._next_ts(),
            args.get("text", ""),
            args.get("blocks"),
            args.get("thread_ts"),
            ephemeral_to=args["user"],
        )
        self.messages.append(m)
        return {"ok": True, "message_ts": m.ts}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        m = self.message(self._dm(args.get("channel", "")), args.get("ts", ""))
        if m is None:
            return {"ok": False, "error": "message_not_found"}
        m.text = args.get("text", m.text)
        if "blocks" in args:
            m.blocks = args["blocks"]
        m.updates += 1
        return {
            "ok": True,
            "channel": m.channel,
            "ts": m.ts,
            "text": m.text,
            "message": self._message_json(m),
        }

    def _m_chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        m = self.message(self._dm(args.get("channel", "")), args.get("ts", ""))
        if m is None:
            return {"ok": False, "error": "message_not_found"}
        self.messages.remove(m)
        return {"ok": True, "channel": m.channel, "ts": m.ts}

    def _m_chat_getPermalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = args.get("channel", ""), str(args.get("message_ts", ""))
        return {
            "ok": True,
            "channel": channel,
            "permalink": f"https://opsbot-demo.slack.com/archives/{channel}/p{ts.replace('.', '')}",
        }

    def _m_conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        users = str(args.get("users", "")).split(",")
        return {"ok": True, "channel": {"id": self._dm(users[0])}}

    def _m_conversations_setTopic(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel", "")
        self.topics[channel] = args.get("topic", "")
        return {"ok": True, "channel": {"id": channel, "topic": {"value": self.topics[channel]}}}

    def _m_conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel", "")
        overrides = self.channels.get(channel, {})
        if overrides is None:
            return {"ok": False, "error": "channel_not_found"}
        return {
            "ok": True,
            "channel": {
                "id": channel,
                "name": channel.lower(),
                "is_member": True,
                "is_archived": False,
                "topic": {"value": self.topics.get(channel, "")},
                **overrides,
            },
        }

    def _m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(args.get("user", ""))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": self._user_json(user)}

    def _m_users_lookupByEmail(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email", "")).lower()
        for user in self.users.values():
            if (user.get("email") or "").lower() == email:
                return {"ok": True, "user": self._user_json(user)}
        return {"ok": False, "error": "users_not_found"}

    @staticmethod
    def _user_json(user: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": user["id"],
            "team_id": TEAM_ID,
            "name": user["name"],
            "real_name": user.get("real_name", user["name"]),
            "tz": user.get("tz"),
            "deleted": bool(user.get("deleted", False)),
            "is_bot": bool(user.get("is_bot", False)),
            "profile": {
                "email": user.get("email"),
                "real_name": user.get("real_name"),
                "display_name": user["name"],
            },
        }

    def _m_usergroups_users_update(self, args: dict[str, Any]) -> dict[str, Any]:
        group = args.get("usergroup", "")
        users = args.get("users", "")
        members = users if isinstance(users, list) else [u for u in users.split(",") if u]
        self.usergroups[group] = members
        return {"ok": True, "usergroup": self._subteam(group, members)}

    def _m_usergroups_list(self, args: dict[str, Any]) -> dict[str, Any]:
        groups = sorted(self.existing_usergroups | set(self.usergroups))
        return {
            "ok": True,
            "usergroups": [self._subteam(g, self.usergroups.get(g, [])) for g in groups],
        }

    def _subteam(self, group: str, members: list[str]) -> dict[str, Any]:
        created = self._base_ts
        return {
            "id": group,
            "team_id": TEAM_ID,
            "is_usergroup": True,
            "is_subteam": True,
            "name": group.lower(),
            "description": "",
            "handle": group.lower(),
            "is_external": False,
            "date_create": created,
            "date_update": created,
            "date_delete": 0,
            "auto_type": None,
            "auto_provision": False,
            "enterprise_subteam_id": "",
            "created_by": BOT_USER_ID,
            "updated_by": BOT_USER_ID,
            "deleted_by": None,
            "prefs": {"channels": [], "groups": []},
            "users": members,
            "user_count": len(members),
        }

    def _m_usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "users": self.usergroups.get(args.get("usergroup", ""), [])}

    def _m_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        return {"ok": True, "view": self._view(args.get("view", {}))}

    def _m_views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._m_views_open(args)

    def _m_views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id = args.get("view_id") or "V-unknown"
        return {"ok": True, "view": self._view(args.get("view", {}), {"id": view_id})}

    def _m_views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user = args.get("user_id", "")
        view = self._view(args.get("view", {}))
        self.home_views[user] = view
        return {"ok": True, "view": view}

    def _m_files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("filename") or not str(args.get("length", "")).isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ids):09d}"
        self.files[file_id] = {"name": args["filename"], "content": None, "channels": []}
        return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        files = args.get("files")
        if isinstance(files, str):
            files = json.loads(files)
        done = []
        for item in files or []:
            found = self.files.get(item.get("id", ""))
            if found is None or found["content"] is None:
                return {"ok": False, "error": "file_not_found"}
            channel = args.get("channel_id")
            found["title"] = item.get("title") or found["name"]
            if channel:
                found["channels"].append(channel)
                if args.get("initial_comment"):
                    self.messages.append(
                        Message(self._dm(channel), self._next_ts(), args["initial_comment"], None)
                    )
            done.append({"id": item["id"], "title": found["title"], "name": found["name"]})
        return {"ok": True, "files": done}

    def _m_reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True}

    def _m_team_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "team": {
                "id": TEAM_ID,
                "name": "Demo Org",
                "domain": "opsbot-demo",
                "email_domain": "example.com",
                "icon": {"image_default": True},
            },
        }
