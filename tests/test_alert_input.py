"""Alert fields no column can hold as sent (on PostgreSQL above all) are stored normalised, with
a warning, and never turn the whole batch into a 500 that Alertmanager would resend forever."""

from __future__ import annotations

import logging

from sqlmodel import select

from bot.paging.models import Page
from tests.paging_samples import alertmanager_alert, alertmanager_body
from tests.test_paging import send


def pages(world) -> list[Page]:
    with world.db.session() as session:
        return list(session.exec(select(Page).order_by(Page.id)).all())


def test_a_batch_with_overlong_and_nul_fields_is_stored_whole_with_warnings(world, caplog):
    long_url = "http://prometheus.example.com/graph?g0.expr=" + "x" * 1200
    long_print = "f" * 300
    batch = alertmanager_body(
        {**alertmanager_alert("LongLink", fingerprint="aa01"), "generatorURL": long_url},
        alertmanager_alert("Nul\x00Name", fingerprint="aa02", summary="disk\x00 full"),
        alertmanager_alert("LongPrint", fingerprint=long_print),
        alertmanager_alert("LongPrintToo", fingerprint=long_print[:-1] + "e"),
    )
    with caplog.at_level(logging.WARNING, logger="bot.paging.alerts"):
        response = send(world, "alertmanager", batch)
    assert response.status_code == 202, response.text
    outcomes = response.json()["alerts"]
    assert [o["action"] for o in outcomes] == ["opened"] * 4
    stored = pages(world)
    assert len(stored) == 4
    assert stored[0].link_url is None
    assert "\x00" not in stored[1].summary and "disk full" in stored[1].summary
    assert stored[1].alert_name == "NulName"
    assert stored[2].dedup_key != stored[3].dedup_key  # distinct fingerprints stay distinct
    assert all(len(p.dedup_key or "") <= 255 for p in stored)
    warnings = " ".join(r.getMessage() for r in caplog.records)
    assert "generator_url of 1244 characters" in warnings
    assert "NUL characters removed" in warnings and "SHA-256" in warnings
    again = send(world, "alertmanager", batch)
    assert [o["action"] for o in again.json()["alerts"]] == ["repeated"] * 4
