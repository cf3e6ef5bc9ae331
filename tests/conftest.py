"""Fixtures: a database per test (SQLite by default, PostgreSQL when OPSBOT_TEST_DATABASE_URL is
set), worlds wired to the fake Slack, and orgs built from YAML strings."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime
from typing import Any

import pytest

from bot.config import OrgConfig, parse_org
from bot.db import Database
from bot.demo.story import START, sample_org_text
from tests.harness import TestDatabases, TestWorld, make_world


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Commands under test configure logging for the process; put the root logger back after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def pytest_report_header(config: pytest.Config) -> str:
    import os

    from tests.harness import PG_ENV

    return f"opsbot database backend: {'postgresql' if os.environ.get(PG_ENV) else 'sqlite'}"


@pytest.fixture(scope="session")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabases]:
    databases = TestDatabases(tmp_path_factory.mktemp("db"))
    yield databases
    databases.drop()


@pytest.fixture
def db(dbs: TestDatabases) -> Iterator[Database]:
    database = Database(dbs.fresh())
    yield database
    database.dispose()


@pytest.fixture
def sample_org() -> OrgConfig:
    return parse_org(sample_org_text())


@pytest.fixture
def world_factory(dbs: TestDatabases) -> Iterator[Callable[..., TestWorld]]:
    """make(org_yaml=None, start=None, **kwargs) -> a TestWorld, closed (and checked) after the test."""
    with ExitStack() as stack:

        def make(
            org_yaml: str | None = None, start: datetime | None = None, **kwargs: Any
        ) -> TestWorld:
            return stack.enter_context(
                make_world(dbs, org_yaml or sample_org_text(), start or START, **kwargs)
            )

        yield make


@pytest.fixture
def world(world_factory: Callable[..., TestWorld]) -> TestWorld:
    """The sample org at the demo's start time (Mon 16 Nov 2026, 09:30 New York)."""
    return world_factory()
