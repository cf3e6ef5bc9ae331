"""Sends signed Slack requests (events, commands, actions, view submissions, shortcuts) into the app.

Shapes follow Slack's Events API and interactivity payloads; each request is signed with the
signing secret exactly as Slack signs it, so it passes through Bolt's real verification.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

from bot.demo.fake_slack import BOT_USER_ID, TEAM_ID, FakeSlack

API_APP_ID = "A0OPSBOT01"


def sign(secret: str, timestamp: str, body: str) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class SlackDriver:
    """Plays Slack's side of the conversation against an ASGI/WSGI test client."""

    def __init__(self, http: Any, signing_secret: str, fake: FakeSlack, after: Any = None) -> None:
        self.http = http
        self.after = after
        self.secret = signing_secret
        self.fake = fake
        self._ids = itertools.count(1)
        self.last_response: Any = None

    # -- transport ------------------------------------------------------------------------------

    def post(
        self,
        body: str,
        content_type: str,
        *,
        retry_num: int | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> Any:
        ts = str(timestamp if timestamp is not None else int(time.time()))
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature or sign(self.secret, ts, body),
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        self.last_response = self.http.post("/slack/events", content=body, headers=headers)
        if self.after is not None:
            self.after()
        return self.last_response

    def _trigger(self) -> str:
        return f"{next(self._ids)}.{int(time.time())}.{hashlib.md5(str(time.time_ns()).encode()).hexdigest()}"

    def _ts(self) -> str:
        # People's messages take the upper half of the fraction, the fake Slack's posts the lower,
        # so a person's reply can never get the same ts as the bot message it answers.
        return f"{int(time.time())}.{500000 + next(self._ids):06d}"

    # -- Events API -----------------------------------------------------------------------------

    def event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry_num: int | None = None
    ) -> Any:
        event_id = event_id or f"Ev{next(self._ids):010d}"
        envelope = {
            "token": "verification-token-unused",
            "team_id": TEAM_ID,
            "api_app_id": API_APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authed_users": [BOT_USER_ID],  # deprecated by Slack, still required by its schema
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{event_id}",
        }
        return self.post(json.dumps(envelope), "application/json", retry_num=retry_num)

    def message(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        ts: str | None = None,
        event_id: str | None = None,
        retry_num: int | None = None,
        **extra: Any,
    ) -> tuple[Any, str]:
        """A person posts a message; returns (HTTP response, the message ts)."""
        ts = ts or self._ts()
        event: dict[str, Any] = {
            "type": "message",
            "channel": channel,
            "user": user,
            "text": text,
            "ts": ts,
            "event_ts": ts,
            "channel_type": "im" if channel.startswith("D") else "channel",
            "team": TEAM_ID,
            **extra,
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        return self.event(event, event_id=event_id, retry_num=retry_num), ts

    def reaction(
        self, user: str, reaction: str, channel: str, ts: str, item_user: str | None = None
    ) -> Any:
        return self.event(
            {
                "type": "reaction_added",
                "user": user,
                "reaction": reaction,
                "item_user": item_user or user,
                "item": {"type": "message", "channel": channel, "ts": ts},
                "event_ts": self._ts(),
            }
        )

    def home_opened(self, user: str) -> Any:
        return self.event(
            {
                "type": "app_home_opened",
                "user": user,
                "channel": "D" + user[1:],
                "tab": "home",
                "event_ts": self._ts(),
            }
        )

    # -- slash commands -------------------------------------------------------------------------

    def command(
        self,
        command: str,
        text: str,
        user: str,
        channel: str = "C0GENERAL01",
        *,
        trigger_id: str | None = None,
        retry_num: int | None = None,
    ) -> Any:
        form = {
            "token": "verification-token-unused",
            "team_id": TEAM_ID,
            "team_domain": "opsbot-demo",
            "channel_id": channel,
            "channel_name": channel.lower(),
            "user_id": user,
            "user_name": self.fake.users.get(user, {}).get("name", user.lower()),
            "command": command,
            "text": text,
            "api_app_id": API_APP_ID,
            "is_enterprise_install": "false",
            "response_url": self.fake.response_url("command"),
            "trigger_id": trigger_id or self._trigger(),
        }
        return self.post(urlencode(form), "application/x-www-form-urlencoded", retry_num=retry_num)

    # -- interactivity --------------------------------------------------------------------------

    def _interactive(self, payload: dict[str, Any]) -> Any:
        body = urlencode({"payload": json.dumps(payload)})
        return self.post(body, "application/x-www-form-urlencoded")

    def _user(self, user: str) -> dict[str, Any]:
        name = self.fake.users.get(user, {}).get("name", user.lower())
        return {"id": user, "username": name, "name": name, "team_id": TEAM_ID}

    def action(
        self,
        action_id: str,
        user: str,
        *,
        value: str | None = None,
        block_id: str = "actions",
        channel: str | None = None,
        message: dict[str, Any] | None = None,
        selected_option: str | None = None,
        trigger_id: str | None = None,
        view: dict[str, Any] | None = None,
    ) -> Any:
        """A person presses a button (or picks an option) in a message, DM or App Home."""
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block_id,
            "action_ts": self._ts(),
        }
        if selected_option is not None:
            action.update(
                {
                    "type": "static_select",
                    "selected_option": {
                        "text": {"type": "plain_text", "text": selected_option},
                        "value": selected_option,
                    },
                }
            )
        else:
            action.update(
                {
                    "type": "button",
                    "value": value or "",
                    "text": {"type": "plain_text", "text": action_id},
                }
            )
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": TEAM_ID, "domain": "opsbot-demo"},
            "user": self._user(user),
            "api_app_id": API_APP_ID,
            "token": "verification-token-unused",
            "trigger_id": trigger_id or self._trigger(),
            "actions": [action],
        }
        if view is not None:
            payload["container"] = {"type": "view", "view_id": view.get("id", "V0")}
            payload["view"] = view
        else:
            ts = (message or {}).get("ts") or self._ts()
            channel = channel or "C0GENERAL01"
            payload["container"] = {
                "type": "message",
                "message_ts": ts,
                "channel_id": channel,
                "is_ephemeral": False,
            }
            payload["channel"] = {"id": channel, "name": channel.lower()}
            payload["message"] = message or {"type": "message", "ts": ts, "text": ""}
            payload["response_url"] = self.fake.response_url("action")
        return self._interactive(payload)

    def press(self, message: Any, action_id: str, user: str) -> Any:
        """Press the button with `action_id` on a message the bot posted (a FakeSlack Message)."""
        value = None
        block_id = "actions"
        for block in message.blocks or []:
            for element in block.get("elements", []) + (
                [block["accessory"]] if "accessory" in block else []
            ):
                if element.get("action_id") == action_id:
                    value = element.get("value")
                    block_id = block.get("block_id", block_id)
        if value is None and not any(
            e.get("action_id") == action_id
            for b in message.blocks or []
            for e in b.get("elements", [])
        ):
            raise AssertionError(f"no button {action_id!r} on message {message.text!r}")
        msg = {
            "type": "message",
            "ts": message.ts,
            "text": message.text,
            "blocks": message.blocks or [],
            "user": BOT_USER_ID,
        }
        if message.thread_ts:
            msg["thread_ts"] = message.thread_ts
        return self.action(
            action_id, user, value=value, block_id=block_id, channel=message.channel, message=msg
        )

    def submit_view(
        self, view: dict[str, Any], user: str, values: dict[str, dict[str, Any]]
    ) -> Any:
        """Submit a modal the bot opened; `values` maps block_id -> {action_id: state value}.

        A state value may be a plain string (plain_text_input), or a dict as Slack sends it.
        """
        state: dict[str, dict[str, Any]] = {}
        for block_id, actions in values.items():
            state[block_id] = {}
            for action_id, value in actions.items():
                if isinstance(value, dict):
                    state[block_id][action_id] = value
                else:
                    state[block_id][action_id] = {"type": "plain_text_input", "value": value}
        submitted = {**view, "state": {"values": state}}
        submitted.setdefault("id", f"V{next(self._ids):09d}")
        submitted.setdefault("hash", f"{next(self._ids)}.abc")
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM_ID, "domain": "opsbot-demo"},
            "user": self._user(user),
            "api_app_id": API_APP_ID,
            "token": "verification-token-unused",
            "trigger_id": self._trigger(),
            "view": submitted,
            "response_urls": [],
        }
        return self._interactive(payload)

    def message_shortcut(
        self, callback_id: str, user: str, channel: str, message: dict[str, Any]
    ) -> Any:
        payload = {
            "type": "message_action",
            "callback_id": callback_id,
            "trigger_id": self._trigger(),
            "message_ts": message["ts"],
            "team": {"id": TEAM_ID, "domain": "opsbot-demo"},
            "user": self._user(user),
            "channel": {"id": channel, "name": channel.lower()},
            "message": message,
            "response_url": self.fake.response_url("shortcut"),
            "token": "verification-token-unused",
        }
        return self._interactive(payload)

    def global_shortcut(self, callback_id: str, user: str) -> Any:
        payload = {
            "type": "shortcut",
            "callback_id": callback_id,
            "trigger_id": self._trigger(),
            "team": {"id": TEAM_ID, "domain": "opsbot-demo"},
            "user": self._user(user),
            "token": "verification-token-unused",
        }
        return self._interactive(payload)
