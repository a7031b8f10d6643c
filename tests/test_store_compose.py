"""compose.yaml: PostgreSQL and two Preflight instances behind a proxy. Docker cannot run in the
test environment, so the file is checked by parsing it: services, wiring, healthchecks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
INSTANCES = ("preflight-1", "preflight-2")
DB_URL = r"postgresql://(\w+):(\$\{[^}]+\})@postgres:5432/(\w+)"


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def test_services_present_with_healthchecks() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", *INSTANCES, "proxy"}
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]


def test_instances_share_one_postgres_database_over_http() -> None:
    compose = _compose()
    postgres = compose["services"]["postgres"]["environment"]
    for name in INSTANCES:
        service = compose["services"][name]
        assert service["build"] == "."
        assert service["command"][:2] == ["serve", "--http"]
        env = service["environment"]
        url = re.fullmatch(DB_URL, env["PREFLIGHT_DB"])
        assert url, env["PREFLIGHT_DB"]
        assert (url[1], url[3]) == (postgres["POSTGRES_USER"], postgres["POSTGRES_DB"])
        assert url[2] == postgres["POSTGRES_PASSWORD"]  # the same variable, never a literal
        assert set(env) >= {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"}
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["healthcheck"]["test"][1:] == ["preflight", "status", "--cached", "--json"]


def test_proxy_round_robins_over_both_instances() -> None:
    compose = _compose()
    proxy = compose["services"]["proxy"]
    assert {c for c in proxy["depends_on"]} == set(INSTANCES)
    (mount,) = proxy["configs"]
    config = compose["configs"][mount["source"]]["content"]
    upstream = config[config.index("upstream") : config.index("}")]
    assert [line.split()[1] for line in upstream.splitlines() if "server " in line] == [
        f"{name}:3000" for name in INSTANCES
    ]
    assert "proxy_pass http://preflight;" in config


def test_no_secret_is_written_into_the_file() -> None:
    compose = _compose()
    for service in compose["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "TOKEN", "SECRET")):
                assert str(value).startswith("${"), key
