"""Logs: one format for opsbot and its HTTP server, a level, JSON on request, ids as fields."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.cli import main
from bot.logs import QUIET_AT_INFO, configure, event

WATCHED = ("", "uvicorn", "uvicorn.error", "uvicorn.access", *QUIET_AT_INFO)


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """What opsbot's handler writes, with every logger it touches put back afterwards."""
    saved = {
        name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers))
        for name in WATCHED
    }
    propagate = {name: logging.getLogger(name).propagate for name in WATCHED}
    yield io.StringIO()
    for name, (level, handlers) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate[name]


def test_a_state_change_is_one_text_line_with_its_ids(stream):
    configure("INFO", "text", stream)
    event(logging.getLogger("bot.paging"), "page acknowledged", page_id=12, by="U0ENG00001")
    (line,) = stream.getvalue().splitlines()
    assert line.endswith(" INFO bot.paging page acknowledged page_id=12 by=U0ENG00001")
    assert line[:24].endswith("Z")  # UTC, ISO 8601


def test_field_values_with_spaces_or_quotes_stay_one_parseable_line(stream):
    configure("INFO", "text", stream)
    event(logging.getLogger("bot"), "page opened", summary='disk "full"\non db-1', page_id=3)
    (line,) = stream.getvalue().splitlines()
    assert line.endswith(' page opened summary="disk \\"full\\"\\non db-1" page_id=3')


def test_json_format_gives_one_object_per_line_with_the_ids_as_keys(stream):
    configure("INFO", "json", stream)
    event(logging.getLogger("bot.support"), "SLA breached", ticket_id=7, target="first_response")
    record = json.loads(stream.getvalue())
    assert record["level"] == "INFO"
    assert record["logger"] == "bot.support"
    assert record["message"] == "SLA breached"
    assert (record["ticket_id"], record["target"]) == (7, "first_response")
    assert record["time"].endswith("Z")


def test_a_failure_logs_its_real_error_in_json(stream):
    configure("INFO", "json", stream)
    try:
        raise ConnectionError("connection refused by db:5432")
    except ConnectionError:
        logging.getLogger("bot.scheduler").exception("timer 3 failed")
    record = json.loads(stream.getvalue())
    assert record["message"] == "timer 3 failed"
    assert "ConnectionError: connection refused by db:5432" in record["exc_info"]


def test_the_http_servers_lines_share_the_format(stream):
    configure("INFO", "json", stream)
    access = logging.getLogger("uvicorn.access")
    access.addHandler(logging.StreamHandler(io.StringIO()))  # what uvicorn's own config does
    configure("INFO", "json", stream)
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1", "GET", "/healthz", "1.1", 200)
    record = json.loads(stream.getvalue())
    assert record["logger"] == "uvicorn.access"
    assert record["message"] == '127.0.0.1 - "GET /healthz HTTP/1.1" 200'


def test_scheduler_chatter_is_quiet_at_info_and_shown_at_debug(stream):
    configure("INFO", "text", stream)
    logging.getLogger("apscheduler.scheduler").info("Added job opsbot-wake")
    logging.getLogger("bot.scheduler").info("shown")
    assert "Added job" not in stream.getvalue() and "shown" in stream.getvalue()
    configure("DEBUG", "text", stream)
    logging.getLogger("apscheduler.scheduler").info("Added job opsbot-wake")
    assert "Added job opsbot-wake" in stream.getvalue()


def test_the_level_hides_what_is_below_it(stream):
    configure("WARNING", "text", stream)
    event(logging.getLogger("bot.paging"), "page opened", page_id=1)
    logging.getLogger("bot.outbox").warning("giving up")
    assert stream.getvalue().splitlines()[-1].endswith("WARNING bot.outbox giving up")
    assert "page opened" not in stream.getvalue()


def test_a_bad_log_setting_is_one_clear_line(monkeypatch, tmp_path, capsys, stream):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("OPSBOT_LOG_FORMAT", "xml")
    assert main(["db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("opsbot: invalid environment variable(s): OPSBOT_LOG_FORMAT:")
    assert "'text' or 'json'" in err and "Traceback" not in err


def test_the_commands_read_level_and_format_from_the_environment(monkeypatch, tmp_path, stream):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("OPSBOT_LOG_FORMAT", "JSON")
    monkeypatch.setenv("OPSBOT_LOG_LEVEL", "warning")
    assert main(["db", "upgrade"]) == 0
    root = logging.getLogger()
    (ours,) = [h for h in root.handlers if type(h).__name__ == "_Handler"]
    assert root.level == logging.WARNING
    assert type(ours.formatter).__name__ == "JsonFormatter"


def test_uvicorns_coloured_copy_of_a_message_is_left_out(stream):
    configure("INFO", "json", stream)
    logging.getLogger("uvicorn.error").info(
        "Started server process [%d]", 7, extra={"color_message": "Started \x1b[36m%d\x1b[0m"}
    )
    record = json.loads(stream.getvalue())
    assert record["message"] == "Started server process [7]" and "color_message" not in record
    configure("INFO", "text", stream)
    logging.getLogger("uvicorn.error").info("x", extra={"color_message": "y"})
    assert stream.getvalue().splitlines()[-1].endswith("INFO uvicorn.error x")
