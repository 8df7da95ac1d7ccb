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


def test_deploy_compose_runs_postgres_two_replicas_and_a_proxy_from_official_images() -> None:
    import yaml

    from tests.bot.test_settings_documented import names

    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "migrate", "helpline-a", "helpline-b", "proxy"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["proxy"]["image"].startswith("caddy:")
    replicas = [services["helpline-a"], services["helpline-b"]]
    for replica in replicas:
        assert replica["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY.parent / replica["build"]["dockerfile"]).exists()
        url = replica["environment"]["HELPLINE_DATABASE_URL"]
        assert url.startswith("postgresql+asyncpg://") and "@postgres:5432/helpline" in url
        assert replica["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert replica["env_file"] == "helpline.env"
    assert services["migrate"]["command"] == ["helpline", "db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # Every setting the file gives is one the service reads.
    fields = set(names())
    for replica in replicas:
        assert set(replica["environment"]) <= fields
    # The proxy sends to both replicas and checks them; /metrics stays inside.
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    assert "reverse_proxy helpline-a:8080 helpline-b:8080" in caddyfile
    assert "health_uri /livez" in caddyfile and "handle /metrics" in caddyfile
    mounted = services["proxy"]["volumes"][0].split(":")[0]
    assert (DEPLOY / mounted).resolve() == (DEPLOY / "Caddyfile").resolve()
    # The backup directory the README's commands use is the one mounted in postgres.
    assert "./backups:/backups" in services["postgres"]["volumes"]
    assert "/backups/" in (DEPLOY / "README.md").read_text()
