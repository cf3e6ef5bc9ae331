"""Webhook bodies as Alertmanager (v4) and Grafana alerting send them, for the paging tests."""

from __future__ import annotations

from typing import Any


def alertmanager_alert(
    name: str = "KubePodCrashLooping",
    *,
    status: str = "firing",
    fingerprint: str | None = "c3b1f4a9e2d01a77",
    labels: dict[str, str] | None = None,
    summary: str | None = "Pod payments/api-7d9 is crash looping",
) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "status": status,
        "labels": {
            "alertname": name,
            "namespace": "payments",
            "pod": "api-7d9",
            "severity": "critical",
            "team": "infra",
            **(labels or {}),
        },
        "annotations": {"description": "Pod payments/api-7d9 restarted 6 times in 10 minutes."},
        "startsAt": "2026-11-16T14:25:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-16T15:00:00Z",
        "generatorURL": "http://prometheus.example.com/graph?g0.expr=kube_pod_restarts",
    }
    if summary is not None:
        alert["annotations"]["summary"] = summary
    if fingerprint is not None:
        alert["fingerprint"] = fingerprint
    return alert


def alertmanager_body(*alerts: dict[str, Any]) -> dict[str, Any]:
    alerts = alerts or (alertmanager_alert(),)
    return {
        "receiver": "opsbot",
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "alerts": list(alerts),
        "groupLabels": {"alertname": alerts[0]["labels"]["alertname"]},
        "commonLabels": {"team": "infra"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.com",
        "version": "4",
        "groupKey": '{}:{alertname="KubePodCrashLooping"}',
        "truncatedAlerts": 0,
    }


def grafana_body(status: str = "firing") -> dict[str, Any]:
    return {
        "receiver": "opsbot",
        "status": status,
        "orgId": 1,
        "alerts": [
            {
                "status": status,
                "labels": {
                    "alertname": "IngressHigh5xxRate",
                    "grafana_folder": "Platform",
                    "service": "checkout",
                },
                "annotations": {
                    "summary": "Checkout ingress 5xx rate is 12%",
                    "description": "5xx share above 5% for 5 minutes",
                },
                "startsAt": "2026-11-16T14:20:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "https://grafana.example.com/alerting/grafana/abc/view",
                "fingerprint": "57c6d9296de2ad39",
                "silenceURL": "https://grafana.example.com/alerting/silence/new",
                "dashboardURL": "https://grafana.example.com/d/ingress",
                "panelURL": "https://grafana.example.com/d/ingress?viewPanel=2",
                "values": {"B": 0.12},
                "valueString": "[ var='B' labels={} value=0.12 ]",
            }
        ],
        "groupLabels": {"alertname": "IngressHigh5xxRate"},
        "commonLabels": {"alertname": "IngressHigh5xxRate", "service": "checkout"},
        "commonAnnotations": {},
        "externalURL": "https://grafana.example.com/",
        "version": "1",
        "groupKey": '{}:{alertname="IngressHigh5xxRate"}',
        "truncatedAlerts": 0,
        "title": "[FIRING:1] IngressHigh5xxRate Platform (checkout)",
        "state": "alerting",
        "message": "**Firing**\n\nValue: B=0.12",
    }
