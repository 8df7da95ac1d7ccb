"""What ``deploy/`` ships is consistent with the service: the dashboard reads only figures
``GET /metrics`` exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bot.http.metrics import Metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def exposed() -> set[str]:
    """Every sample name the service's metrics can have (with _total, _bucket…)."""
    names = set()
    for family in Metrics().registry.collect():
        names.add(family.name)
        names.update(f"{family.name}{suffix}" for suffix in ("_total", "_bucket", "_count", "_sum"))
    return names


def test_deploy_grafana_dashboard_reads_only_metrics_the_service_exposes() -> None:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for expr in exprs for name in re.findall(r"helpline_[a-z_]+", expr)}
    assert used and used <= exposed(), used - exposed()
    for wanted in (
        "helpline_cases",
        "helpline_oldest_unclaimed_seconds",
        "helpline_overdue_cases",
        "helpline_outbox_pending",
        "helpline_outbox_oldest_seconds",
        "helpline_send_failures_total",
        "helpline_updates_handled_total",
        "helpline_intake_seconds_bucket",
        "helpline_web_chats_open",
    ):
        assert wanted in used, wanted
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
