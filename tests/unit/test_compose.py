"""docker-compose.yml is valid Compose and agrees with the code it deploys.

The gateway's settings ignore unknown GENNAKER_* variables, so a variable renamed in the code but not
here would silently fall back to a default (SQLite instead of the shared PostgreSQL, 127.0.0.1 instead
of the Temporal service). These tests read the compose file and the settings classes side by side.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings
from sqlalchemy.engine import make_url

from api.settings import GatewaySettings
from workers.config import WorkerConfig
from workflows.search import ALL_KEYS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"

REQUIRED_SERVICES = {"postgres", "temporal", "temporal-ui", "gateway", "worker"}
TEMPORAL_FRONTEND_PORT = 7233
# Read by load_worker_config (the YAML file's path), not a WorkerConfig field.
WORKER_EXTRA_ENV = {"GENNAKER_CONFIG"}
# `temporal operator search-attribute create --type` spelling of temporalio's indexed value types.
CLI_TYPE_NAMES = {
    "TEXT": "Text",
    "KEYWORD": "Keyword",
    "INT": "Int",
    "DOUBLE": "Double",
    "BOOL": "Bool",
    "DATETIME": "Datetime",
    "KEYWORD_LIST": "KeywordList",
}


def env_names(settings_cls: type[BaseSettings]) -> set[str]:
    return {"GENNAKER_" + name.upper() for name in settings_cls.model_fields}


def interpolate(value: str) -> str:
    """What Compose makes of a value when no variable is set: ${X:-default} → default, $$ → $."""
    value = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", value)
    return value.replace("$$", "$")


def environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {key: interpolate(str(value)) for key, value in raw.items()}


def command_words(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(word) for word in command]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict) and isinstance(loaded.get("services"), dict), "no services in compose file"
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def gennaker_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Services run from the project's Dockerfile."""
    return {name: svc for name, svc in services.items() if "build" in svc}


def gateways(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in gennaker_services(services).items() if command_words(s)[:2] == ["gennaker", "api"]}


def workers(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in gennaker_services(services).items() if command_words(s)[:2] == ["gennaker", "worker"]}


def test_compose_config_is_valid() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("the docker-compose binary is missing; `bash scripts/setup-system.sh` installs Debian's")
    result = subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    # Compose, not just YAML, must see the replicas (older Compose dropped `deploy` outside Swarm).
    normalized = yaml.safe_load(result.stdout)
    assert normalized["services"]["gateway"]["deploy"]["replicas"] >= 2, result.stdout


def test_required_services_exist(services: dict[str, dict[str, Any]]) -> None:
    missing = REQUIRED_SERVICES - services.keys()
    assert not missing, f"docker-compose.yml lacks services {sorted(missing)}"


def test_gateway_and_worker_run_the_gennaker_commands(services: dict[str, dict[str, Any]]) -> None:
    assert "gateway" in gateways(services), f"gateway must run `gennaker api`: {services['gateway']}"
    assert "worker" in workers(services), f"worker must run `gennaker worker`: {services['worker']}"


def test_gateway_env_names_are_gateway_settings_fields(services: dict[str, dict[str, Any]]) -> None:
    known = env_names(GatewaySettings)
    for name, svc in gateways(services).items():
        env = {k: v for k, v in environment(svc).items() if k.startswith("GENNAKER_")}
        unknown = set(env) - known
        assert not unknown, f"{name}: {sorted(unknown)} are not GatewaySettings fields ({sorted(known)})"
        # The values must also be valid for their fields (e.g. a port that is a number).
        GatewaySettings(**{k.removeprefix("GENNAKER_").lower(): v for k, v in env.items()})


def test_worker_env_names_are_worker_config_fields(services: dict[str, dict[str, Any]]) -> None:
    known = env_names(WorkerConfig) | WORKER_EXTRA_ENV
    for name, svc in workers(services).items():
        env = {k: v for k, v in environment(svc).items() if k.startswith("GENNAKER_")}
        unknown = set(env) - known
        assert not unknown, f"{name}: {sorted(unknown)} are not WorkerConfig fields ({sorted(known)})"
        fields = {k: v for k, v in env.items() if k not in WORKER_EXTRA_ENV}
        WorkerConfig(**{k.removeprefix("GENNAKER_").lower(): v for k, v in fields.items()})


def test_other_gennaker_services_use_known_env_names(services: dict[str, dict[str, Any]]) -> None:
    known = env_names(GatewaySettings) | env_names(WorkerConfig) | WORKER_EXTRA_ENV
    others = gennaker_services(services).keys() - gateways(services).keys() - workers(services).keys()
    for name in others:
        unknown = {k for k in environment(services[name]) if k.startswith("GENNAKER_")} - known
        assert not unknown, f"{name}: {sorted(unknown)} are read by no Gennaker settings class"


def test_gateway_port_matches_its_api_port(services: dict[str, dict[str, Any]]) -> None:
    default_port = GatewaySettings.model_fields["api_port"].default
    proxy = next(
        (s for s in services.values() if environment(s).get("GATEWAY_HOST") == "gateway"),
        None,
    )
    assert proxy is not None, "no reverse proxy in front of the gateway replicas (GATEWAY_HOST=gateway)"
    for name, svc in gateways(services).items():
        api_port = str(environment(svc).get("GENNAKER_API_PORT", default_port))
        exposed = [str(p) for p in svc.get("expose", [])]
        assert api_port in exposed, f"{name} listens on {api_port} but exposes {exposed}"
        assert not svc.get("ports"), f"{name} is replicated: it cannot publish a fixed host port"
    gateway_port = str(environment(services["gateway"]).get("GENNAKER_API_PORT", default_port))
    proxy_env = environment(proxy)
    assert proxy_env.get("GATEWAY_PORT") == gateway_port, (
        f"the proxy forwards to port {proxy_env.get('GATEWAY_PORT')}, the gateway listens on {gateway_port}"
    )
    published = [str(p) for p in proxy.get("ports", [])]
    assert any(p.endswith(f":{proxy_env.get('LISTEN_PORT')}") for p in published), (
        f"the proxy listens on {proxy_env.get('LISTEN_PORT')} but publishes {published}"
    )


def test_gateways_and_workers_share_temporal_and_store(services: dict[str, dict[str, Any]]) -> None:
    processes = {**gateways(services), **workers(services)}
    addresses = {n: environment(s).get("GENNAKER_TEMPORAL_ADDRESS") for n, s in processes.items()}
    assert set(addresses.values()) == {f"temporal:{TEMPORAL_FRONTEND_PORT}"}, (
        f"every gateway and worker must reach the `temporal` service on {TEMPORAL_FRONTEND_PORT}: {addresses}"
    )
    namespaces = {n: environment(s).get("GENNAKER_TEMPORAL_NAMESPACE") for n, s in processes.items()}
    assert len(set(namespaces.values())) == 1, f"one namespace for all: {namespaces}"
    assert environment(services["temporal"]).get("DEFAULT_NAMESPACE") in namespaces.values(), (
        "Temporal must create the namespace the gateways and workers use"
    )

    users_of_store = {n: s for n, s in gennaker_services(services).items() if "GENNAKER_DATABASE_URL" in environment(s)}
    urls = {n: environment(s).get("GENNAKER_DATABASE_URL") for n, s in {**processes, **users_of_store}.items()}
    assert len(set(urls.values())) == 1, f"gateways and workers must share one store: {urls}"
    url = make_url(next(iter(urls.values())) or "")
    assert url.drivername == "postgresql+psycopg", f"the shared store is PostgreSQL via psycopg 3, not {url}"
    assert url.host == "postgres" and url.port == 5432, f"the store must be the `postgres` service: {url}"
    assert url.database == environment(services["postgres"]).get("POSTGRES_DB"), (
        f"database {url.database} is not the one the postgres service creates"
    )


def test_gateway_is_replicated(services: dict[str, dict[str, Any]]) -> None:
    replicas = (services["gateway"].get("deploy") or {}).get("replicas", 1)
    assert int(replicas) >= 2, f"gateway deploy.replicas is {replicas}; the stack shows it replicated"


def test_execution_links_point_at_the_published_ui(services: dict[str, dict[str, Any]]) -> None:
    ui_ports = [str(p) for p in services["temporal-ui"].get("ports", [])]
    for name, svc in gateways(services).items():
        url = environment(svc).get("GENNAKER_TEMPORAL_UI_URL", GatewaySettings.model_fields["temporal_ui_url"].default)
        port = url.rstrip("/").rsplit(":", 1)[-1]
        assert any(p.startswith(f"{port}:") for p in ui_ports), f"{name} links to {url}; the UI publishes {ui_ports}"


def test_search_attribute_registration_matches_code(services: dict[str, dict[str, Any]]) -> None:
    registrars = {n: s for n, s in services.items() if "search-attribute create" in " ".join(command_words(s))}
    assert list(registrars) == ["temporal-search-attributes"], f"one registration service expected: {registrars}"
    registrar = registrars["temporal-search-attributes"]
    script = " ".join(command_words(registrar))
    assert "$$SEARCH_ATTRIBUTES" in script, "the registration script must iterate over SEARCH_ATTRIBUTES"

    declared = dict(pair.split("=", 1) for pair in environment(registrar)["SEARCH_ATTRIBUTES"].split())
    expected = {key.name: CLI_TYPE_NAMES[key.indexed_value_type.name] for key in ALL_KEYS}
    assert declared == expected, f"SEARCH_ATTRIBUTES {declared} != workflows/search.py ALL_KEYS {expected}"

    env = environment(registrar)
    gateway_env = environment(services["gateway"])
    assert env.get("TEMPORAL_ADDRESS") == gateway_env.get("GENNAKER_TEMPORAL_ADDRESS")
    assert env.get("TEMPORAL_NAMESPACE") == gateway_env.get("GENNAKER_TEMPORAL_NAMESPACE"), (
        "attributes must be registered in the namespace the gateways and workers use"
    )
    for name, svc in {**gateways(services), **workers(services)}.items():
        condition = (svc.get("depends_on") or {}).get("temporal-search-attributes", {}).get("condition")
        assert condition == "service_completed_successfully", (
            f"{name} must wait for the search attributes (starting a workflow with unknown ones fails)"
        )


def test_replicas_migrate_the_store_at_start_under_the_database_lock(services: dict[str, dict[str, Any]]) -> None:
    """Gateways and workers migrate when they start (core/store/migrate.py); on PostgreSQL the
    replicas take turns on an advisory lock (tests/integration/test_store.py races two processes),
    so no one-shot table-creating job has to run before them, and none may be needed."""
    from core.store.database import make_engine

    for name, svc in {**gateways(services), **workers(services)}.items():
        url = environment(svc).get("GENNAKER_DATABASE_URL", "")
        engine = make_engine(url)
        try:
            assert engine.dialect.name == "postgresql", f"{name}: replicas need the shared PostgreSQL store, not {url}"
        finally:
            engine.dispose()
        needs = svc.get("depends_on") or {}
        jobs = [dep for dep in needs if services.get(dep, {}).get("restart", "").startswith("on-failure")]
        assert all(dep == "temporal-search-attributes" for dep in jobs), f"{name} waits for one-shot jobs {jobs}"
