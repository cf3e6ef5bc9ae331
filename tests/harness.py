"""Test harness: databases per test (SQLite or PostgreSQL), worlds wired to the fake Slack, and a
Block Kit check applied to every payload the bot sends.

The fake Slack Web API and the signed-request driver live in bot/demo/ (the demo needs them too);
this module adds what only tests need.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import bot.models  # noqa: F401  (every table on the metadata)
from bot.db import upgrade
from bot.demo.fake_slack import FakeSlack
from bot.demo.story import fake_users
from bot.demo.world import World

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PG_ENV = "OPSBOT_TEST_DATABASE_URL"


def terminate_connections(db: Any) -> int:
    """End every server connection to `db`'s PostgreSQL database (as a restart would); returns
    how many were ended."""
    name = make_url(db.url).database
    admin = create_engine(
        os.environ[PG_ENV].replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
    )
    others = "FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"
    try:
        with admin.connect() as connection:
            ended = connection.execute(
                text(f"SELECT count(pg_terminate_backend(pid)) {others}"), {"name": name}
            ).scalar()
            # The backends end a moment later; a statement sent before then would still run.
            for _ in range(500):
                if not connection.execute(
                    text(f"SELECT count(*) {others}"), {"name": name}
                ).scalar():
                    break
                time.sleep(0.01)
            return ended
    finally:
        admin.dispose()


@contextmanager
def statements_run(db: Any) -> Iterator[dict[str, list[str]]]:
    """The SQL `db` runs inside the block, by pool: "sessions" (units of work) and "alone"
    (statements and reads of their own)."""
    seen: dict[str, list[str]] = {"sessions": [], "alone": []}
    listeners = [
        (engine, lambda *a, pool=pool: seen[pool].append(a[2]))
        for engine, pool in ((db.engine, "sessions"), (db._alone_engine(), "alone"))
    ]
    for engine, listener in listeners:
        event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        for engine, listener in listeners:
            event.remove(engine, "before_cursor_execute", listener)


# ---- Block Kit --------------------------------------------------------------------------------


class BlockKitError(AssertionError):
    pass


def _unknown_keys(given: Any, parsed: Any, path: str) -> list[str]:
    """Keys (and element types) the bot sent that slack_sdk's model dropped: typos Slack would
    reject or ignore."""
    problems = []
    if isinstance(given, dict) and not isinstance(parsed, dict):
        problems.append(f"{path} (type {given.get('type')!r})")
    elif isinstance(given, dict) and isinstance(parsed, dict):
        for key, value in given.items():
            if key not in parsed:
                problems.append(f"{path}.{key}")
            else:
                problems += _unknown_keys(value, parsed[key], f"{path}.{key}")
    elif isinstance(given, list) and isinstance(parsed, list):
        for index, (g, p) in enumerate(zip(given, parsed, strict=False)):
            problems += _unknown_keys(g, p, f"{path}[{index}]")
    return problems


# Text objects Slack accepts only as plain_text (slack_sdk does not check all of them).
_PLAIN_TEXT_KEYS = {"title", "label", "placeholder", "submit", "close"}


def _mrkdwn_where_plain_text_is_required(node: Any, path: str) -> list[str]:
    problems = []
    if isinstance(node, dict):
        for key, value in node.items():
            plain_only = key in _PLAIN_TEXT_KEYS or (
                key == "text" and node.get("type") in ("header", "button")
            )
            if plain_only and isinstance(value, dict) and value.get("type") == "mrkdwn":
                problems.append(f"{path}.{key}")
            problems += _mrkdwn_where_plain_text_is_required(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            problems += _mrkdwn_where_plain_text_is_required(item, f"{path}[{index}]")
    return problems


def _duplicate_ids(blocks: list[Any], where: str) -> list[str]:
    """Slack rejects a block_id repeated in one message or view, and an action_id repeated in
    one block."""
    problems = []
    block_ids = [b.get("block_id") for b in blocks if isinstance(b, dict) and b.get("block_id")]
    problems += [
        f"{where}: block_id {i!r} repeated"
        for i in sorted(set(block_ids))
        if block_ids.count(i) > 1
    ]
    for index, block in enumerate(blocks):
        if not isinstance(block, dict):
            continue
        elements = list(block.get("elements") or [])
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                elements.append(block[key])
        action_ids = [
            e.get("action_id") for e in elements if isinstance(e, dict) and e.get("action_id")
        ]
        problems += [
            f"{where}[{index}]: action_id {i!r} repeated"
            for i in sorted(set(action_ids))
            if action_ids.count(i) > 1
        ]
    return problems


def check_blocks(blocks: Any, where: str = "blocks", limit: int = 50) -> None:
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    if not isinstance(blocks, list):
        raise BlockKitError(f"{where}: blocks must be a list")
    if len(blocks) > limit:
        raise BlockKitError(f"{where}: {len(blocks)} blocks (at most {limit} allowed)")
    for index, block in enumerate(blocks):
        try:
            parsed = Block.parse(block)
            if parsed is None:
                raise BlockKitError(f"{where}[{index}]: unknown block type {block.get('type')!r}")
            as_dict = parsed.to_dict()  # validates recursively
        except BlockKitError:
            raise
        except Exception as exc:  # slack_sdk raises TypeError for missing or unexpected fields
            raise BlockKitError(f"{where}[{index}] ({block.get('type')}): {exc}") from None
        unknown = _unknown_keys(block, as_dict, f"{where}[{index}]")
        if unknown:
            raise BlockKitError(f"unknown Block Kit keys: {', '.join(unknown)}")
        mrkdwn = _mrkdwn_where_plain_text_is_required(block, f"{where}[{index}]")
        if mrkdwn:
            raise BlockKitError(f"mrkdwn where Slack needs plain_text: {', '.join(mrkdwn)}")
    duplicates = _duplicate_ids(blocks, where)
    if duplicates:
        raise BlockKitError("; ".join(duplicates))


def check_view(view: Any, where: str = "view") -> None:
    if isinstance(view, str):
        view = json.loads(view)
    allowed = {
        "id",
        "team_id",
        "hash",
        "app_id",
        "bot_id",
        "state",
        "root_view_id",
        "previous_view_id",
        "app_installed_team_id",
    }
    if view.get("type") == "modal" and not view.get("title"):
        raise BlockKitError(f"{where}: a modal needs a title")
    check_blocks(view.get("blocks") or [], f"{where}.blocks", limit=100)
    try:
        parsed = View(**{k: v for k, v in view.items() if k not in allowed or k == "id"})
        as_dict = parsed.to_dict()
    except Exception as exc:
        raise BlockKitError(f"{where}: {exc}") from None
    unknown = [
        k for k in _unknown_keys(view, as_dict, where) if k.rsplit(".", 1)[-1] not in allowed
    ]
    if unknown:
        raise BlockKitError(f"unknown Block Kit keys: {', '.join(unknown)}")
    mrkdwn = _mrkdwn_where_plain_text_is_required(
        {k: v for k, v in view.items() if k != "blocks"}, where
    )
    if mrkdwn:
        raise BlockKitError(f"mrkdwn where Slack needs plain_text: {', '.join(mrkdwn)}")


def check_payload(method: str, args: dict[str, Any]) -> None:
    if args.get("blocks") is not None:
        check_blocks(args["blocks"], f"{method}.blocks")
    if args.get("view") is not None:
        check_view(args["view"], f"{method}.view")
    for key in ("text",):
        if isinstance(args.get(key), str) and len(args[key]) > 40000:
            raise BlockKitError(f"{method}.{key} longer than Slack allows")


def check_all_payloads(fake: FakeSlack, extra: list[dict[str, Any]] | None = None) -> None:
    for call in fake.calls:
        check_payload(call.method, call.args)
    for response in fake.responses:
        check_payload("response_url", response.args)
    for body in extra or []:
        check_payload("ack", body)


# ---- databases --------------------------------------------------------------------------------


class TestDatabases:
    """One migrated database per test run; each test gets it empty.

    SQLite: a migrated template file copied per test. PostgreSQL: a fresh database created for
    the run (so runs never see each other's rows), migrated once, tables truncated per test.
    """

    __test__ = False

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.pg_base = os.environ.get(PG_ENV)
        self.pg_url: str | None = None
        self.template: Path | None = None
        if self.pg_base:
            self._create_pg()
        else:
            self.template = tmp / "template.db"
            upgrade(f"sqlite:///{self.template}")

    @property
    def backend(self) -> str:
        return "postgresql" if self.pg_base else "sqlite"

    def _create_pg(self) -> None:
        assert self.pg_base is not None
        base = make_url(self.pg_base.replace("postgresql://", "postgresql+psycopg://", 1))
        name = f"opsbot_test_{uuid.uuid4().hex[:12]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self.pg_name = name
        self.pg_url = base.set(database=name).render_as_string(hide_password=False)
        upgrade(self.pg_url)

    def fresh(self) -> str:
        if self.pg_url:
            engine = create_engine(self.pg_url)
            # The tables the migrations made (a model without its revision yet is test_schema's
            # failure to report, not every test's).
            existing = set(inspect(engine).get_table_names()) - {"alembic_version"}
            names = [t.name for t in SQLModel.metadata.sorted_tables if t.name in existing]
            names += sorted(existing - set(names))
            tables = ", ".join(f'"{name}"' for name in names)
            with engine.begin() as connection:
                connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            engine.dispose()
            return self.pg_url
        assert self.template is not None
        path = self.tmp / f"test-{uuid.uuid4().hex[:8]}.db"
        shutil.copy(self.template, path)
        return f"sqlite:///{path}"

    def drop(self) -> None:
        if not self.pg_url or not self.pg_base:
            return
        base = make_url(self.pg_base.replace("postgresql://", "postgresql+psycopg://", 1))
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)'))
        admin.dispose()


# ---- worlds -----------------------------------------------------------------------------------


class TestWorld(World):
    """A World that checks every Block Kit payload it sees and keeps ack bodies for assertions."""

    __test__ = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acks: list[dict[str, Any]] = []
        original_after = self.slack.after

        def after() -> None:
            response = self.slack.last_response
            if response is not None and response.content:
                try:
                    body = response.json()
                except ValueError:
                    body = None
                if isinstance(body, dict):
                    self.acks.append(body)
            if original_after is not None:
                original_after()

        self.slack.after = after

    def check_payloads(self) -> None:
        check_all_payloads(self.fake, self.acks)

    # Conveniences for reading what people saw -------------------------------------------------

    def last_response(self) -> dict[str, Any]:
        """The last thing the bot said through a response_url (an ephemeral reply, usually)."""
        assert self.fake.responses, "the bot sent nothing to a response_url"
        return self.fake.responses[-1].args

    def last_ack(self) -> dict[str, Any]:
        assert self.acks, "no ack carried a body"
        return self.acks[-1]

    def opened_view(self) -> dict[str, Any]:
        calls = self.fake.calls_to("views.open") + self.fake.calls_to("views.push")
        assert calls, "no modal was opened"
        view = calls[-1].args["view"]
        return json.loads(view) if isinstance(view, str) else view


@contextmanager
def make_world(
    dbs: TestDatabases, org_yaml: str, start: datetime, **kwargs: Any
) -> Iterator[TestWorld]:
    world = TestWorld(
        org_yaml,
        dbs.fresh(),
        start,
        users=kwargs.pop("users", fake_users()),
        upgrade=False,
        **kwargs,
    )
    try:
        yield world
        world.check_payloads()
    finally:
        world.close()


def form(body: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body).items()}
