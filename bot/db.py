"""Database access: the engine from DATABASE_URL, sessions, a UTC datetime column type, and Alembic upgrades."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import DateTime, create_engine, event, text
from sqlalchemy.engine import Engine, Row, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.sql import Executable
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session

T = TypeVar("T")


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite forgets the zone; this puts it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def after_commit(session: OrmSession, action: Callable[[], None], *, once: str = "") -> None:
    """Run `action` once the session's transaction commits, never if it rolls back: for what
    must only tell of changes that happened (log lines, metrics). With `once`, an action under
    that name is registered at most once per transaction."""
    if once:
        named = session.info.setdefault("opsbot.after_commit_once", set())
        if once in named:
            return
        named.add(once)
    session.info.setdefault("opsbot.after_commit", []).append(action)


@event.listens_for(OrmSession, "after_commit")
def _run_after_commit(session: OrmSession) -> None:
    if session.in_nested_transaction():  # a savepoint released; the outer one may still fail
        return
    session.info.pop("opsbot.after_commit_once", None)
    for action in session.info.pop("opsbot.after_commit", []):
        action()


@event.listens_for(OrmSession, "after_rollback")
def _drop_after_commit(session: OrmSession) -> None:
    session.info.pop("opsbot.after_commit", None)
    session.info.pop("opsbot.after_commit_once", None)


def make_engine(url: str, *, statements_alone: bool = False) -> Engine:
    """The engine for `url`. `statements_alone`: each statement commits by itself and a pooled
    connection is not pinged first (the caller retries once when it turns out stale)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"} if statements_alone else {}
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **options
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=not statements_alone, **options)


class Database:
    """One engine and the sessions made from it; passed explicitly to whatever needs storage."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._alone: Engine | None = None
        self._alone_lock = threading.Lock()
        self._hooks: list[Callable[[Engine], None]] = []

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends normally, rolled back otherwise."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def watch_engines(self, hook: Callable[[Engine], None]) -> None:
        """Apply `hook` (event listeners) to every engine of this database: the main one now,
        the one for statements alone when it is made."""
        self._hooks.append(hook)
        hook(self.engine)
        if self._alone is not None:
            hook(self._alone)

    def _alone_engine(self) -> Engine:
        if self._alone is None:
            with self._alone_lock:
                if self._alone is None:
                    engine = make_engine(self.url, statements_alone=True)
                    for hook in self._hooks:
                        hook(engine)
                    self._alone = engine
        return self._alone

    @staticmethod
    def _once_more_if_dropped(work: Callable[[], T]) -> T:
        """`work` on the pool of statements alone, which is not pinged before use: when its
        connection turns out dead (the database restarted), it is replaced and `work` run once
        more."""
        for attempt in (1, 2):
            try:
                return work()
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    def _alone_run(
        self, statement: Executable, parameters: dict[str, Any] | None, read: Callable[[Any], Any]
    ) -> Any:
        def run() -> Any:
            with self._alone_engine().connect() as connection:
                # An INSERT's rowcount is only kept when asked for (psycopg).
                options = {"preserve_rowcount": True}
                return read(connection.execute(statement, parameters, execution_options=options))

        return self._once_more_if_dropped(run)

    def execute_alone(self, statement: Executable, parameters: dict[str, Any] | None = None) -> int:
        """One write statement in a transaction of its own, in a single round trip (the ack
        path's insert); returns how many rows it changed. Its own small pool skips the ping
        before each use (a round trip, and a wait for the GIL, on every request); a connection
        found dead (the database restarted) is replaced and the statement tried once more."""
        return self._alone_run(statement, parameters, lambda result: result.rowcount)

    def returning_alone(
        self, statement: Executable, parameters: dict[str, Any] | None = None
    ) -> Row | None:
        """`execute_alone` for a write with RETURNING: the first row it returned, or None."""
        return self._alone_run(statement, parameters, lambda result: result.first())

    def read(self, work: Callable[[Session], T]) -> T:
        """Run `work` in a session on the pool of statements alone, for an answer made in the
        ack: each statement commits by itself, so a query is one round trip with no ping,
        BEGIN or COMMIT around it. Meant for work that reads (and at most keeps what it
        learned, such as a resolved address). A connection found dead is replaced and `work`
        run once more."""

        def run() -> T:
            with Session(self._alone_engine(), expire_on_commit=False) as session:
                result = work(session)
                session.commit()
                return result

        return self._once_more_if_dropped(run)

    def ping(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except Exception:  # any driver error means "not healthy"
            return False

    def upgrade(self) -> None:
        upgrade(self.url, self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
        if self._alone is not None:
            self._alone.dispose()


def migrations_dir() -> Path:
    """The Alembic environment: inside the installed package (a wheel ships the checkout's
    migrations/ as bot/_migrations), else migrations/ beside the package in a checkout."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "_migrations", package.parent / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise FileNotFoundError(f"no Alembic environment (env.py) in {package / '_migrations'}")


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


# Any constant shared by every opsbot process on the database ("opsbot" in ASCII).
SCHEMA_LOCK = 0x6F7073626F74


def upgrade(url: str, engine: Engine | None = None) -> None:
    """Bring the schema to the newest Alembic revision (idempotent). On PostgreSQL the upgrade
    holds an advisory lock for its transaction (SQLite: its write lock), so replicas starting
    together on an empty database take turns: the first upgrades, the others find the schema at
    head."""
    from alembic import command

    config = alembic_config(url)
    sqlite_file = url.startswith("sqlite") and make_url(url).database not in (None, "", ":memory:")
    own = engine is None or sqlite_file
    engine = _sqlite_upgrade_engine(url) if sqlite_file else engine or make_engine(url)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        if own:
            engine.dispose()


def _sqlite_upgrade_engine(url: str) -> Engine:
    """An engine whose transactions hold SQLite's write lock from their start and include DDL
    (the driver otherwise runs CREATE TABLE outside any transaction), so processes upgrading
    one file together take turns like PostgreSQL's advisory lock makes them."""
    engine = make_engine(url)

    @event.listens_for(engine, "connect")
    def _own_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _write_lock(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@dataclass(frozen=True)
class SchemaStatus:
    """Where the database's schema stands against the newest Alembic revision."""

    current_revisions: tuple[str, ...]
    head: str

    @property
    def current(self) -> bool:
        return self.current_revisions == (self.head,)

    def describe(self) -> str:
        if self.current:
            return f"the schema is at the newest revision ({self.head})"
        if not self.current_revisions:
            return f"the database has no schema yet (newest revision {self.head})"
        at = ", ".join(self.current_revisions)
        return f"the schema is at {at}, the newest revision is {self.head}"


def schema_status(db: Database) -> SchemaStatus:
    """Read the database's Alembic revision (raises SQLAlchemy's error when it does not answer)."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(db.url)).get_current_head() or ""
    with db.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    return SchemaStatus(tuple(current), head)
