"""docker-compose.yml is valid and wired together.

No Docker engine runs on our machines, so the file is checked offline: against the
Compose specification's JSON schema (bundled with check-jsonschema), and by reading it
with PyYAML. These tests need no database.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
APP_SERVICES = {"migrate", "web", "worker", "beat"}


def check_jsonschema() -> str:
    """The check-jsonschema of this virtualenv (a dev dependency): never skipped."""
    beside_python = Path(sys.executable).parent / "check-jsonschema"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("check-jsonschema")
    assert found, "check-jsonschema is not installed: run `make install`"
    return found


def validate_against_compose_spec(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def load(path: Path = COMPOSE_FILE) -> dict:
    with path.open() as f:
        return yaml.safe_load(f)


def depends_on_targets(service: dict) -> set[str]:
    """depends_on in either form: a list of names or a mapping of name to condition."""
    depends_on = service.get("depends_on") or []
    return set(depends_on) if isinstance(depends_on, list | dict) else {depends_on}


def missing_dependencies(compose: dict) -> dict[str, set[str]]:
    services = compose["services"]
    missing = {
        name: depends_on_targets(service) - services.keys() for name, service in services.items()
    }
    return {name: targets for name, targets in missing.items() if targets}


def environment(service: dict) -> dict[str, str]:
    """The environment in either form: a mapping or a list of KEY=value."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def command_words(service: dict) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(word) for word in command]


@pytest.fixture(scope="module")
def compose() -> dict:
    return load()


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


def test_compose_file_matches_the_compose_specification():
    result = validate_against_compose_spec(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_an_invalid_compose_file(tmp_path):
    broken = load()
    broken["services"]["web"]["depends_on"] = 42
    broken["servces"] = {}
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))

    result = validate_against_compose_spec(path)

    assert result.returncode != 0, result.stdout + result.stderr


def test_the_expected_services_are_defined(services):
    assert {"postgres", "redis", "migrate", "web", "worker", "beat"} <= services.keys()


def test_every_depends_on_target_is_a_defined_service(compose):
    assert missing_dependencies(compose) == {}


def test_a_depends_on_target_that_is_not_defined_is_reported():
    compose = {
        "services": {
            "web": {"depends_on": {"db": {"condition": "service_healthy"}, "redis": {}}},
            "worker": {"depends_on": ["redis", "broker"]},
            "redis": {},
        }
    }
    assert missing_dependencies(compose) == {"web": {"db"}, "worker": {"broker"}}


def test_the_app_services_run_the_app_image(services):
    web = services["web"]
    app_image = (web.get("image"), str(web.get("build")))
    using_app_image = {
        name
        for name, service in services.items()
        if (service.get("image"), str(service.get("build"))) == app_image
    }
    assert "build" in web, "web must be built from the Dockerfile"
    assert using_app_image == APP_SERVICES


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_every_app_service_has_the_shared_environment(services, name):
    env = environment(services[name])
    assert env.get("DATABASE_URL", "").startswith("postgres://"), env
    assert env.get("DATABASE_URL", "").endswith("@postgres:5432/vsm"), env
    assert env.get("CELERY_BROKER_URL", "").startswith("redis://redis:6379/"), env
    assert env.get("CACHE_URL", "").startswith("redis://redis:6379/"), env
    assert env.get("DJANGO_DEBUG") == "false", env
    # Interpolation is left to Compose: the secret key must be required, never defaulted.
    assert env.get("DJANGO_SECRET_KEY", "").startswith("${DJANGO_SECRET_KEY:?"), env
    assert env.get("DJANGO_ALLOWED_HOSTS"), env


@pytest.mark.parametrize("name", ["web", "worker", "postgres", "redis"])
def test_long_running_services_have_a_healthcheck(services, name):
    healthcheck = services[name].get("healthcheck") or {}
    assert not healthcheck.get("disable"), f"{name}: healthcheck disabled"
    test = healthcheck.get("test")
    assert test and test != ["NONE"], f"{name}: no healthcheck test"


def test_web_runs_gunicorn_on_port_8000(services):
    web = services["web"]
    words = command_words(web)
    assert words[:2] == ["gunicorn", "vsm.wsgi:application"], words
    assert "0.0.0.0:8000" in words, words
    assert any(str(port).endswith(":8000") for port in web.get("ports", [])), web.get("ports")


def test_web_healthcheck_asks_healthz(services):
    test = " ".join(services["web"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/healthz" in test


def test_web_and_workers_wait_for_migrations(services):
    for name in ("web", "worker", "beat"):
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # A restart policy would rerun a migration that finished.
    assert services["migrate"].get("restart", "no") == "no"
