"""`opsbot doctor`: checks the Slack app, the channels, user groups and people in the org config,
and the database schema, and says how to fix each problem it finds."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy.exc import SQLAlchemyError

from bot import config as config_module
from bot.config import OrgConfig
from bot.db import Database, schema_status
from bot.manifest import build_manifest


@dataclass(frozen=True)
class Finding:
    area: str  # slack, scopes, channels, usergroups, people, database
    ok: bool
    message: str
    fix: str = ""

    def __str__(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        line = f"{mark} {self.area}: {self.message}"
        return f"{line}\n     fix: {self.fix}" if self.fix and not self.ok else line


def check(org: OrgConfig, client: WebClient, db: Database) -> list[Finding]:
    """Every check, in the order an operator would fix things; Slack checks stop at a bad token."""
    findings = list(_auth_and_scopes(client))
    if findings and findings[0].ok:
        findings += _channels(org, client)
        findings += _usergroups(org, client)
        findings += _people(org, client)
    findings += _webhook_secrets(org, os.environ)
    findings.append(_database(db))
    return findings


# ---- Slack ---------------------------------------------------------------------------------------


def _slack_error(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
    return f"cannot reach Slack ({exc})"


def _auth_and_scopes(client: WebClient) -> Iterator[Finding]:
    try:
        response = client.auth_test()
    except (SlackApiError, SlackClientError, OSError) as exc:
        yield Finding(
            "slack",
            False,
            f"auth.test failed: {_slack_error(exc)}",
            "set SLACK_BOT_TOKEN to the app's Bot User OAuth Token (xoxb-...) from "
            "OAuth & Permissions, and SLACK_API_URL only when testing",
        )
        return
    yield Finding(
        "slack",
        True,
        f"token works: bot @{response.get('user')} ({response.get('user_id')}) "
        f"in {response.get('team')} ({response.get('team_id')})",
    )
    header = _header(response.headers, "x-oauth-scopes")
    wanted = set(build_manifest()["oauth_config"]["scopes"]["bot"])
    if header is None:
        yield Finding(
            "scopes",
            False,
            "Slack did not say which scopes the token has (no x-oauth-scopes header)",
            "check that SLACK_BOT_TOKEN is a bot token (xoxb-...), not a user or app token",
        )
        return
    granted = {s.strip() for s in header.split(",") if s.strip()}
    missing = sorted(wanted - granted)
    if missing:
        yield Finding(
            "scopes",
            False,
            f"the token lacks {len(missing)} scope(s) the manifest asks for: {', '.join(missing)}",
            "add them under OAuth & Permissions (or update the app from `opsbot manifest`) "
            "and reinstall the app to the workspace",
        )
    else:
        yield Finding("scopes", True, f"all {len(wanted)} scopes of the manifest are granted")


def _header(headers: Any, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value[0] if isinstance(value, list) else value
    return None


def _channels(org: OrgConfig, client: WebClient) -> Iterator[Finding]:
    channels = _references(org, config_module._channel)
    bad = 0
    for channel, where in channels.items():
        try:
            info = client.conversations_info(channel=channel)["channel"]
        except (SlackApiError, SlackClientError, OSError) as exc:
            bad += 1
            error = _slack_error(exc)
            fix = "check the channel id (right-click the channel > Copy link)"
            if error == "missing_scope":
                fix = "grant channels:read and groups:read and reinstall the app"
            yield Finding("channels", False, f"{channel} ({where}): {error}", fix)
            continue
        name = f"#{info.get('name', channel)}"
        if info.get("is_archived"):
            bad += 1
            yield Finding(
                "channels",
                False,
                f"{name} {channel} ({where}) is archived",
                "unarchive it, or name a live channel in the config",
            )
        elif not info.get("is_member"):
            bad += 1
            yield Finding(
                "channels",
                False,
                f"the bot is not a member of {name} {channel} ({where})",
                f"invite it: type `/invite @opsbot` in {name}",
            )
    if not bad:
        yield Finding("channels", True, f"the bot is a member of all {len(channels)} channel(s)")


def _usergroups(org: OrgConfig, client: WebClient) -> Iterator[Finding]:
    wanted = _references(org, config_module._usergroup)
    if not wanted:
        return
    try:
        listed = client.usergroups_list(include_disabled=True)["usergroups"]
    except (SlackApiError, SlackClientError, OSError) as exc:
        yield Finding(
            "usergroups",
            False,
            f"usergroups.list failed: {_slack_error(exc)}",
            "grant usergroups:read and reinstall the app (user groups need a paid plan)",
        )
        return
    existing = {g["id"]: g for g in listed}
    bad = 0
    for group, where in wanted.items():
        if group not in existing:
            bad += 1
            yield Finding(
                "usergroups",
                False,
                f"user group {group} ({where}) does not exist",
                "create it in Slack (People > User groups) and put its id in the config",
            )
        elif existing[group].get("date_delete"):
            bad += 1
            yield Finding(
                "usergroups",
                False,
                f"user group @{existing[group].get('handle')} {group} ({where}) is disabled",
                "enable it again in Slack, or remove `usergroup` from the rotation",
            )
    if not bad:
        yield Finding("usergroups", True, f"all {len(wanted)} user group(s) exist")


def _people(org: OrgConfig, client: WebClient) -> Iterator[Finding]:
    """Every person the config names can be reached: an e-mail resolves to a Slack user, and a
    Slack id is a user who exists and is active (a typo would otherwise surface at 3 a.m., as a
    page DM Slack refuses)."""
    refs = dict(_references(org, config_module._person).items())
    for number, policy in enumerate(org.escalation_policies):
        for index, step in enumerate(policy.steps):
            if step.target_kind == "user":
                where = f"escalation_policies[{number}].steps[{index}].notify"
                refs.setdefault(step.target_ref, where)
    emails = {ref: where for ref, where in refs.items() if "@" in ref}
    ids = {ref: where for ref, where in refs.items() if "@" not in ref}
    bad = 0
    for email, where in emails.items():
        try:
            client.users_lookupByEmail(email=email)
        except (SlackApiError, SlackClientError, OSError) as exc:
            bad += 1
            error = _slack_error(exc)
            fix = "correct the address, or name the person by Slack id (U...)"
            if error == "missing_scope":
                fix = "grant users:read.email and reinstall the app"
            yield Finding("people", False, f"{email} ({where}): {error}", fix)
    for user_id, where in ids.items():
        fix = "correct the id (in Slack: the person's profile, ⋮, Copy member ID)"
        try:
            user = client.users_info(user=user_id)["user"]
        except (SlackApiError, SlackClientError, OSError) as exc:
            bad += 1
            yield Finding("people", False, f"{user_id} ({where}): {_slack_error(exc)}", fix)
            continue
        if user.get("deleted"):
            bad += 1
            who = f"{user_id} ({user.get('name', '?')}, {where})"
            yield Finding(
                "people", False, f"{who} is deactivated", "replace them with someone active"
            )
        elif user.get("is_bot"):
            bad += 1
            yield Finding("people", False, f"{user_id} ({where}) is a bot", "name a person instead")
    if not bad:
        yield Finding(
            "people",
            True,
            f"all {len(emails)} e-mail address(es) and {len(ids)} Slack id(s) are active users",
        )


# ---- webhooks ------------------------------------------------------------------------------------


def _webhook_secrets(org: OrgConfig, environ: Mapping[str, str]) -> Iterator[Finding]:
    """A webhook's secret lives in the environment variable the config names: is it set here?"""
    hooks = list(getattr(org, "webhooks", []))
    if not hooks:
        return
    bad = 0
    for hook in hooks:
        for key in ("routing_key_env", "token_env"):
            variable = getattr(hook, key, None)
            if variable and not environ.get(variable):
                bad += 1
                yield Finding(
                    "webhooks",
                    False,
                    f"webhook {hook.id}: {variable} ({key}) is not set in this environment",
                    f"set {variable} where opsbot runs (the secret stays out of the config file)",
                )
    if not bad:
        yield Finding("webhooks", True, f"the secrets of all {len(hooks)} webhook(s) are set")


# ---- database ------------------------------------------------------------------------------------


def _database(db: Database) -> Finding:
    try:
        status = schema_status(db)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return Finding(
            "database",
            False,
            f"the database does not answer: {reason}",
            "check DATABASE_URL and that the server is up and reachable",
        )
    if status.current:
        return Finding("database", True, status.describe())
    return Finding("database", False, status.describe(), "run `opsbot db upgrade`")


# ---- what the config refers to -------------------------------------------------------------------


def _references(org: OrgConfig, validator: Any) -> dict[str, str]:
    """Every value in the config whose type uses `validator` (a channel, a person...), with
    where it first appears (`teams[1].channel`). New keys are found without changing this."""
    found: dict[str, str] = {}
    _walk(org, "", validator, found)
    return found


def _walk(value: Any, where: str, validator: Any, found: dict[str, str]) -> None:
    if isinstance(value, BaseModel):
        for name, field in type(value).model_fields.items():
            path = f"{where}.{name}" if where else name
            item = getattr(value, name)
            if _uses(field.annotation, field.metadata, validator):
                for ref in item if isinstance(item, list) else [item]:
                    if isinstance(ref, str):
                        found.setdefault(ref, path)
            else:
                _walk(item, path, validator, found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{where}[{index}]", validator, found)
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk(item, f"{where}.{key}", validator, found)


def _uses(annotation: Any, metadata: list[Any], validator: Any) -> bool:
    if any(getattr(m, "func", None) is validator for m in metadata):
        return True
    extra = getattr(annotation, "__metadata__", ())
    if any(getattr(m, "func", None) is validator for m in extra):
        return True
    origin = get_origin(annotation)
    if origin is None:
        return False
    return any(_uses(arg, [], validator) for arg in get_args(annotation) if arg is not type(None))
