"""Alert intake under size and length: a body cap before reading, long batches committed in
parts so Slack's requests never wait for them, and a resent batch that pages nobody twice."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from bot.demo.world import ALERT_TOKEN
from bot.paging import intake
from bot.paging.models import Page
from bot.support.models import Ticket
from handlers.alerts import MAX_ALERT_BODY_BYTES
from tests.paging_samples import alertmanager_alert, alertmanager_body
from tests.test_intake import message_envelope, signed_headers
from tests.test_paging import PRIMARY, dms, send

AUTH = {"Authorization": f"Bearer {ALERT_TOKEN}"}


def prometheus_alert(n: int) -> dict[str, Any]:
    """An alert as Prometheus and Alertmanager send it, with the long generatorURL (the rule's
    whole expression, URL-encoded) that is normal for Prometheus."""
    alert = alertmanager_alert(
        f"KubePodCrashLooping{n}",
        fingerprint=f"{n:016x}",
        labels={"pod": f"api-{n}", "instance": f"10.0.{n // 250}.{n % 250}:8080", "job": "kube"},
    )
    alert["annotations"]["runbook_url"] = "https://runbooks.example.com/KubePodCrashLooping"
    alert["generatorURL"] = "http://prometheus.example.com/graph?g0.expr=" + "x" * 1000
    return alert


def pages(world) -> list[Page]:
    with world.db.session() as session:
        return list(session.exec(select(Page)).all())


# ---- the body cap -------------------------------------------------------------------------------


def test_a_realistic_5000_alert_batch_fits_under_the_body_cap():
    body = json.dumps(alertmanager_body(*(prometheus_alert(n) for n in range(5000))))
    assert 5_000_000 < len(body) < MAX_ALERT_BODY_BYTES


def test_an_alert_body_over_the_cap_is_refused_with_413_before_it_is_read(world):
    body = b"x" * (MAX_ALERT_BODY_BYTES + 1)
    response = world.http.post("/alerts/alertmanager", content=body, headers=AUTH)
    assert response.status_code == 413
    assert response.json() == {
        "error": "the body is larger than 16 MiB: send fewer alerts per request",
        "limit_bytes": MAX_ALERT_BODY_BYTES,
    }

    def chunks():  # no Content-Length: refused once the cap is passed
        for _ in range(MAX_ALERT_BODY_BYTES // 65536 + 2):
            yield b"y" * 65536

    response = world.http.post("/alerts/alertmanager", content=chunks(), headers=AUTH)
    assert response.status_code == 413
    assert pages(world) == []


def test_the_bearer_token_is_checked_before_the_body_is_read(world):
    response = world.http.post(
        "/alerts/alertmanager", content=b"x" * (MAX_ALERT_BODY_BYTES + 1), headers={}
    )
    assert response.status_code == 401


# ---- long batches -------------------------------------------------------------------------------


class PagesPerCommit:
    """Counts the pages each committed transaction wrote: how long a batch holds SQLite's write
    lock, measured in alerts rather than seconds."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.commits: list[int] = []
        self.first = threading.Event()
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO PAGES "):
            conn.info["pages"] = conn.info.get("pages", 0) + 1

    def _commit(self, conn: Any) -> None:
        written = conn.info.pop("pages", 0)
        if written:
            self.commits.append(written)
            self.first.set()

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)


def test_a_long_batch_is_committed_in_parts_and_a_slack_message_is_acknowledged_meanwhile(world):
    total = intake.ALERTS_PER_COMMIT * 6
    body = alertmanager_body(*(prometheus_alert(n) for n in range(total)))
    counter = PagesPerCommit(world.db.engine)
    try:
        with ThreadPoolExecutor(1) as pool:
            batch = pool.submit(world.http.post, "/alerts/alertmanager", json=body, headers=AUTH)
            assert counter.first.wait(timeout=60)  # the batch's first part is committed
            message = message_envelope(world, "Ev0DURING1", "Deploys fail during the storm")
            acked = world.http.post(
                "/slack/events", content=message, headers=signed_headers(message)
            )
            acknowledged_before_the_batch_ended = not batch.done()
            response = batch.result()
    finally:
        counter.close()
    assert acked.status_code == 200
    assert acknowledged_before_the_batch_ended
    assert response.status_code == 202
    assert [a["action"] for a in response.json()["alerts"]] == ["opened"] * total
    # No write transaction of the batch held more than one part's alerts.
    assert max(counter.commits) <= intake.ALERTS_PER_COMMIT
    assert sum(counter.commits) == total
    with world.db.session() as session:
        assert [t.summary for t in session.exec(select(Ticket)).all()] == [
            "Deploys fail during the storm"
        ]


def test_a_batch_resent_after_failing_part_way_pages_each_alert_once(world, monkeypatch):
    total = intake.ALERTS_PER_COMMIT * 3
    body = alertmanager_body(*(prometheus_alert(n) for n in range(total)))
    real = intake.trigger_page
    calls = {"n": 0}

    def database_lost_in_the_second_part(*args: Any, **kwargs: Any) -> Page:
        calls["n"] += 1
        if calls["n"] == intake.ALERTS_PER_COMMIT + 3:
            raise OperationalError("INSERT INTO pages", {}, ConnectionError("server closed"))
        return real(*args, **kwargs)

    monkeypatch.setattr(intake, "trigger_page", database_lost_in_the_second_part)
    failed = send(world, "alertmanager", body)
    assert failed.status_code == 503
    assert "resend" in failed.json()["error"]
    kept = len(pages(world))  # the parts committed before the failure stay
    assert 0 < kept < intake.ALERTS_PER_COMMIT + 3

    resent = send(world, "alertmanager", body)  # Alertmanager retries the whole batch
    assert resent.status_code == 202
    actions = [a["action"] for a in resent.json()["alerts"]]
    assert actions == ["repeated"] * kept + ["opened"] * (total - kept)
    assert len(pages(world)) == total
    assert len(dms(world, PRIMARY)) == total  # one DM per alert: nobody paged twice


@pytest.mark.parametrize("position", [0, 40])
def test_an_unroutable_alert_anywhere_in_a_long_batch_stores_nothing(world, position):
    alerts = [prometheus_alert(n) for n in range(intake.ALERTS_PER_COMMIT * 2)]
    alerts[position]["labels"]["team"] = "nobody"
    response = send(world, "alertmanager", alertmanager_body(*alerts))
    assert response.status_code == 422
    assert pages(world) == []
