"""The `opsbot` command line: serve, worker, socket, demo, db upgrade, config check, manifest,
wins export, catalog import, migration load and status."""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from pydantic import ValidationError
from sqlalchemy.exc import ArgumentError, InterfaceError, NoSuchModuleError, OperationalError

from bot.config import ConfigError
from bot.errors import OpsbotError
from bot.settings import MissingSetting, Settings

log = logging.getLogger("opsbot")

SWITCH_INTERVAL = 0.001  # seconds; see cmd_serve
WORKER_POLL_SECONDS = 0.25  # how often `opsbot worker` looks for stored requests to work


def _configure_logging() -> None:
    from bot.logs import configure

    settings = Settings()
    configure(settings.log_level, settings.log_format)


def _runtime(settings: Settings):
    """Config, then the schema, then everything that reads tables (capabilities sync rosters and
    schedule work while the runtime is built), so a fresh database starts in one go."""
    from bot.config import load_org
    from bot.db import Database
    from handlers import build_runtime, org_checks

    org = load_org(settings.config_path, checks=org_checks())
    db = Database(settings.database_url)
    db.upgrade()
    return build_runtime(settings, org=org, db=db)


def cmd_config_check(args: argparse.Namespace) -> int:
    path = args.path or Settings().config_path
    from handlers import check_config

    report = check_config(path)
    for issue in report.issues:
        print(issue, file=sys.stderr if issue.severity == "error" else sys.stdout)
    if not report.ok:
        return 1
    print("ok")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from bot.db import upgrade

    settings = Settings()
    upgrade(settings.database_url)
    print(f"database at head ({_safe_url(settings.database_url)})")
    return 0


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported by the driver anyway
        return "<database>"


def cmd_manifest(args: argparse.Namespace) -> int:
    from bot.manifest import manifest_yaml

    sys.stdout.write(manifest_yaml(Settings().public_url))
    return 0


def _start_workers(runtime) -> None:
    from bot.health import watch_workers

    watch_workers(runtime)  # /healthz turns 503 when one of them stops beating
    runtime.outbox.start()
    runtime.scheduler.start()
    for loop in runtime.loops:
        loop.start()


def _stop_workers(runtime) -> None:
    for loop in runtime.loops:
        loop.stop()
    runtime.scheduler.stop()
    runtime.outbox.stop()


def server_options(host: str, port: int, log_level: str) -> dict:
    """uvicorn's options for `opsbot serve` (the ack-latency benchmark serves its bare Bolt app
    with the same)."""
    return {
        "host": host,
        "port": port,
        # log_config=None: uvicorn's own loggers go through opsbot's handler and format.
        "log_config": None,
        "log_level": log_level.lower(),
        "proxy_headers": True,
        # No line per request: /metrics counts and times them by route, request kind and status,
        # and a log line per ack costs the ack path time under load.
        "access_log": False,
    }


def settle_heap() -> None:
    """Move what start-up made (modules, the config, the Bolt app) out of the garbage
    collector's reach: it lives as long as the process, and a full collection no longer walks it
    in the middle of an answer to Slack."""
    gc.collect()
    gc.freeze()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from bot.app import build_bolt_app, build_http_app, inbox_worker

    settings = Settings()
    settings.require("slack_bot_token", "slack_signing_secret")
    runtime = _runtime(settings)
    bolt = build_bolt_app(runtime)
    asgi = build_http_app(runtime, bolt)
    # Background work (stored requests, the outbox, the scheduler) is CPU-bound Python in this
    # process: a waiting ack gets the GIL back after 1 ms instead of the default 5 ms.
    sys.setswitchinterval(SWITCH_INTERVAL)
    settle_heap()
    in_process = not (args.no_worker or args.ack_only)
    if args.ack_only:  # answers only: `opsbot worker` processes do the work of stored requests
        inbox_worker(runtime).answer_only()
        if runtime.db.engine.dialect.name == "sqlite":
            log.warning(
                "serve --ack-only on SQLite: the worker's writes hold the database's only write "
                "lock while answers wait for it; use PostgreSQL, or serve without --ack-only"
            )
    else:  # every replica sweeps the inbox: work whose receiver died is taken over
        inbox_worker(runtime).start()
    if in_process:
        _start_workers(runtime)
    try:
        uvicorn.run(asgi, **server_options(args.host, args.port, settings.log_level))
    finally:
        if in_process:
            _stop_workers(runtime)
        inbox_worker(runtime).stop()
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = Settings()
    settings.require("slack_bot_token")
    runtime = _runtime(settings)
    from bot.app import build_bolt_app, inbox_worker
    from bot.intake import seconds_from_env

    build_bolt_app(runtime)  # the worker does the work of stored requests (see serve --ack-only)
    # Replicas that only answer leave all the work to the workers: pick it up promptly.
    inbox_worker(runtime).poll = seconds_from_env("OPSBOT_INBOX_POLL_SECONDS", WORKER_POLL_SECONDS)
    inbox_worker(runtime).start()
    _start_workers(runtime)
    if args.port is not None:
        # /healthz, /readyz and /metrics for this process: its counters (timer lag, outbox
        # deliveries, Slack errors) are only here.
        import uvicorn

        from bot.health import worker_http_app

        log.info("worker running: scheduler and outbox; health and metrics on port %s", args.port)
        try:
            uvicorn.run(
                worker_http_app(runtime),
                host=args.host,
                port=args.port,
                log_config=None,
                log_level=settings.log_level.lower(),
            )
        finally:
            _stop_workers(runtime)
            inbox_worker(runtime).stop()
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.info("worker running: scheduler and outbox")
    stop.wait()
    _stop_workers(runtime)
    inbox_worker(runtime).stop()
    return 0


def cmd_socket(args: argparse.Namespace) -> int:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.app import build_bolt_app, inbox_worker

    settings = Settings()
    settings.require("slack_bot_token", "slack_app_token")
    runtime = _runtime(settings)
    bolt = build_bolt_app(runtime)
    inbox_worker(runtime).start()
    _start_workers(runtime)
    try:
        SocketModeHandler(bolt, settings.slack_app_token).start()
    finally:
        _stop_workers(runtime)
        inbox_worker(runtime).stop()
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from bot.config import load_org
    from bot.db import Database
    from bot.doctor import check
    from bot.runtime import make_slack_client
    from handlers import org_checks

    settings = Settings()
    settings.require("slack_bot_token")
    org = load_org(settings.config_path, checks=org_checks())
    db = Database(settings.database_url)
    try:
        findings = check(org, make_slack_client(settings), db)
    finally:
        db.dispose()
    for finding in findings:
        print(finding)
    problems = sum(not f.ok for f in findings)
    if problems:
        print(f"{problems} problem(s) found")
        return 1
    print("all checks passed")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo.story import run_demo

    return run_demo(sys.stdout, color=args.color)


def cmd_wins_export(args: argparse.Namespace) -> int:
    from bot.config import load_org
    from bot.db import Database
    from bot.errors import UnknownTeam
    from bot.wins.cycles import quarter_days
    from bot.wins.reports import export_markdown
    from handlers import org_checks

    settings = Settings()
    org = load_org(settings.config_path, checks=org_checks())
    try:
        quarter_days(args.quarter)
        if args.team:
            org.team(args.team)
    except (ValueError, UnknownTeam) as exc:
        print(f"opsbot: {exc}", file=sys.stderr)
        return 2
    if org.wins is None:
        print(
            "opsbot: Wins and Challenges is not configured (no `wins:` in the org config)",
            file=sys.stderr,
        )
        return 2
    db = Database(settings.database_url)
    try:
        with db.session() as session:
            sys.stdout.write(export_markdown(session, org, args.quarter, args.team))
    finally:
        db.dispose()
    return 0


def _store():
    """Org config, database and clock: enough for commands that only record (the running worker
    talks to Slack: it announces and notifies from what these commands store)."""
    from bot.clock import SystemClock
    from bot.config import load_org
    from bot.db import Database
    from handlers import org_checks

    settings = Settings()
    org = load_org(settings.config_path, checks=org_checks())
    return org, Database(settings.database_url), SystemClock()


def cmd_catalog_import(args: argparse.Namespace) -> int:
    from bot.platform_migrations import catalog, flows

    _org, db, clock = _store()
    try:
        entities, notes = catalog.read_entities(args.paths)
    except catalog.CatalogFileError as exc:
        print(f"opsbot: {exc}\nnothing was imported", file=sys.stderr)
        return 1
    now = clock.now()
    with db.session() as session:
        result = catalog.import_catalog(session, entities, now)
        for migration in flows.live_migrations(session):
            flows.request_sync(session, migration.id, now)
    result.notes = notes
    print(result.summary())
    return 0


def cmd_migration_load(args: argparse.Namespace) -> int:
    from bot.platform_migrations import flows, loading

    org, db, clock = _store()
    try:
        spec = loading.read_migration_file(args.path, org)
    except loading.MigrationFileError as exc:
        print(f"opsbot: the migration file has errors:\n{exc}", file=sys.stderr)
        return 1
    now = clock.now()
    with db.session() as session:
        saved = loading.save_spec(session, spec, now)
        flows.request_sync(session, spec.id, now)
    verb = "created" if saved.created else ("updated" if saved.changed else "unchanged")
    print(f"migration {spec.id} {verb} (stage {saved.migration.stage})")
    if spec.stage == saved.migration.stage:
        return 0
    confirmed = args.yes
    while True:
        try:
            with db.session() as session:
                migration = loading.get_migration(session, spec.id)
                accepted = flows.change_stage(
                    session, org, migration, spec.stage, now, confirmed=confirmed
                )
            break
        except flows.NeedsConfirmation as exc:
            print(exc)
            if not sys.stdin.isatty():
                print("opsbot: not changed; run again with --yes to confirm", file=sys.stderr)
                return 1
            if input("Activate anyway? [y/N] ").strip().lower() not in ("y", "yes"):
                print("not changed")
                return 1
            confirmed = True
        except OpsbotError as exc:
            print(f"opsbot: {exc}", file=sys.stderr)
            return 1
    for warning in accepted:
        print(f"accepted: {warning}")
    print(f"stage is now {spec.stage}; the opsbot worker announces it and tells the owners")
    return 0


def cmd_migration_status(args: argparse.Namespace) -> int:
    from bot.platform_migrations import loading, reports

    _org, db, clock = _store()
    try:
        with db.session() as session:
            found = reports.status(session, loading.get_migration(session, args.id), clock.now())
    except OpsbotError as exc:
        print(f"opsbot: {exc}", file=sys.stderr)
        return 1
    print(reports.status_text(found, detailed=True))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opsbot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="HTTP mode (Events API, commands, interactivity)")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument(
        "--no-worker",
        action="store_true",
        help="do not run the scheduler and outbox in this process",
    )
    serve.add_argument(
        "--ack-only",
        action="store_true",
        help="only answer Slack and store each request; `opsbot worker` processes do the work "
        "(implies --no-worker)",
    )
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="scheduler and outbox only")
    worker.add_argument(
        "--port",
        type=int,
        default=None,
        help="also serve /healthz, /readyz and /metrics for this process on this port",
    )
    worker.add_argument("--host", default="0.0.0.0")
    worker.set_defaults(func=cmd_worker)
    sub.add_parser("socket", help="Socket Mode (needs SLACK_APP_TOKEN)").set_defaults(
        func=cmd_socket
    )

    demo = sub.add_parser("demo", help="offline walkthrough with a fake Slack and a sample org")
    demo.add_argument(
        "--color",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="colour the output (default: when writing to a terminal)",
    )
    demo.set_defaults(func=cmd_demo)

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="SUBCOMMAND")
    db_sub.add_parser("upgrade", help="upgrade the schema to the newest revision").set_defaults(
        func=cmd_db_upgrade
    )

    config = sub.add_parser("config", help="org config")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    check = config_sub.add_parser("check", help="validate the org config file")
    check.add_argument("path", nargs="?", help="config file (default: $OPSBOT_CONFIG)")
    check.set_defaults(func=cmd_config_check)

    sub.add_parser("manifest", help="print the Slack app manifest").set_defaults(func=cmd_manifest)

    wins = sub.add_parser("wins", help="Wins and Challenges records")
    wins_sub = wins.add_subparsers(dest="wins_command", required=True, metavar="SUBCOMMAND")
    export = wins_sub.add_parser(
        "export", help="the quarter's entries as Markdown, grouped by team and cycle"
    )
    export.add_argument("--quarter", required=True, help="e.g. 2026Q4")
    export.add_argument("--team", help="one team's entries only (a team id)")
    export.set_defaults(func=cmd_wins_export)
    sub.add_parser(
        "doctor",
        help="check the Slack app, channels, user groups, e-mails and schema against the config",
    ).set_defaults(func=cmd_doctor)

    cat = sub.add_parser("catalog", help="the ownership catalog (Backstage entities)")
    cat_sub = cat.add_subparsers(dest="catalog_command", required=True, metavar="SUBCOMMAND")
    imp = cat_sub.add_parser("import", help="import catalog-info.yaml files or directories")
    imp.add_argument("paths", nargs="+", metavar="PATH")
    imp.set_defaults(func=cmd_catalog_import)

    mig = sub.add_parser("migration", help="platform migrations")
    mig_sub = mig.add_subparsers(dest="migration_command", required=True, metavar="SUBCOMMAND")
    load = mig_sub.add_parser("load", help="create or update a migration from a YAML file")
    load.add_argument("path", metavar="PATH")
    load.add_argument("--yes", action="store_true", help="confirm activation without a pilot")
    load.set_defaults(func=cmd_migration_load)
    status = mig_sub.add_parser("status", help="a migration's progress as text")
    status.add_argument("id", metavar="ID")
    status.set_defaults(func=cmd_migration_status)
    return parser


def _settings_problems(exc: ValidationError) -> str:
    aliases = {name: f.alias or name for name, f in Settings.model_fields.items()}
    problems = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "environment"
        problems.append(f"{aliases.get(name, name)}: {error['msg']} (got {error.get('input')!r})")
    return "invalid environment variable(s): " + "; ".join(problems)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command not in ("config", "manifest", "demo", "wins", "doctor"):
            _configure_logging()
        return int(args.func(args) or 0)
    except ValidationError as exc:  # a malformed environment variable, e.g. OPSBOT_LOG_LEVEL
        print(f"opsbot: {_settings_problems(exc)}", file=sys.stderr)
        return 2
    except MissingSetting as exc:
        print(f"opsbot: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"opsbot: the org config has errors:\n{exc}", file=sys.stderr)
        return 1
    except (OperationalError, InterfaceError, ArgumentError, NoSuchModuleError) as exc:
        print(f"opsbot: {_database_problem(exc)}", file=sys.stderr)
        return 1


def _database_problem(exc: Exception) -> str:
    """One line for a database that is unreachable or misnamed, instead of a traceback."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    url = _safe_url(Settings().database_url)
    return (
        f"cannot use the database at {url}: {reason[0] if reason else type(exc).__name__} "
        "(check DATABASE_URL and that the server is up and reachable)"
    )


if __name__ == "__main__":
    sys.exit(main())
