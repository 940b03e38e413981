"""docker-compose.yml is valid and wired together.

No Docker engine runs on our machines, so the file is checked offline: against the
Compose specification's JSON schema (bundled with check-jsonschema), and by reading it
with PyYAML. These tests need no database.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
APP_SERVICES = {"migrate", "web", "worker", "beat"}
# The app services that connect through PgBouncer, and to which of its databases.
POOLED_SERVICES = {"web": "vsm_web", "worker": "vsm"}


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
    assert {"postgres", "pgbouncer", "redis", "migrate", "web", "worker", "beat"} <= (
        services.keys()
    )


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
    if name in POOLED_SERVICES:
        assert env["DATABASE_URL"].endswith(f"@pgbouncer:6432/{POOLED_SERVICES[name]}"), env
    else:
        assert env.get("DATABASE_URL", "").endswith("@postgres:5432/vsm"), env
    assert env.get("CELERY_BROKER_URL", "").startswith("redis://redis:6379/"), env
    assert env.get("CACHE_URL", "").startswith("redis://redis:6379/"), env
    assert env.get("DJANGO_DEBUG") == "false", env
    # Interpolation is left to Compose: the secret key must be required, never defaulted.
    assert env.get("DJANGO_SECRET_KEY", "").startswith("${DJANGO_SECRET_KEY:?"), env
    assert env.get("DJANGO_ALLOWED_HOSTS"), env


@pytest.mark.parametrize("name", ["web", "worker", "postgres", "pgbouncer", "redis"])
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


def interpolated(value: str) -> str:
    """A Compose value as Compose would read it with none of its variables set: the
    default of ``${VAR:-default}``, and a stand-in for a required ``${VAR:?message}``."""

    def resolve(match: re.Match[str]) -> str:
        name, kind, default = match.group(1), match.group(2), match.group(3) or ""
        if kind == "?":
            return "x" * 64 if name == "DJANGO_SECRET_KEY" else "vsm.example.com"
        return default

    return re.sub(r"\$\{(\w+)(?::([-?])([^}]*))?\}", resolve, value)


def mounted_config(compose: dict, service: str, target: str) -> str:
    """The content of the config mounted at ``target`` in ``service``, interpolated."""
    (mounted,) = [c for c in compose["services"][service]["configs"] if c["target"] == target]
    return interpolated(compose["configs"][mounted["source"]]["content"])


def pgbouncer_ini(compose: dict) -> configparser.ConfigParser:
    """The configuration the pgbouncer service runs with, as PgBouncer reads it."""
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(mounted_config(compose, "pgbouncer", "/etc/pgbouncer/pgbouncer.ini"))
    return ini


def pooler_databases(ini: configparser.ConfigParser) -> dict[str, dict[str, str]]:
    """[databases]: each name's connection string as a dict (quotes removed)."""
    pairs = re.compile(r"(\w+)=('(?:[^']*)'|\S+)")
    return {
        name: {key: value.strip("'") for key, value in pairs.findall(line)}
        for name, line in ini["databases"].items()
    }


def test_pgbouncer_pools_by_transaction_in_front_of_postgres(compose, services):
    pgbouncer = services["pgbouncer"]
    ini = pgbouncer_ini(compose)

    assert ini["pgbouncer"]["pool_mode"] == "transaction"
    assert ini["pgbouncer"]["listen_port"] == "6432"
    # PostgreSQL 16 stores SCRAM secrets: PgBouncer must speak SCRAM to it.
    assert ini["pgbouncer"]["auth_type"] == "scram-sha-256"
    assert pgbouncer["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert not str(pgbouncer["image"]).endswith(":latest"), "pin PgBouncer's image"
    for name, database in pooler_databases(ini).items():
        assert (database["host"], database["port"], database["dbname"]) == (
            "postgres",
            "5432",
            "vsm",
        ), name


def test_pgbouncer_authenticates_the_apps_database_user(compose, services):
    auth_file = pgbouncer_ini(compose)["pgbouncer"]["auth_file"]
    users = mounted_config(compose, "pgbouncer", auth_file)
    postgres_env = environment(services["postgres"])
    user = postgres_env["POSTGRES_USER"]
    password = interpolated(postgres_env["POSTGRES_PASSWORD"])

    assert f'"{user}" "{password}"' in users.splitlines()


@pytest.mark.parametrize("name", sorted(POOLED_SERVICES))
def test_web_and_worker_go_through_pgbouncer_told_it_pools_transactions(compose, services, name):
    service = services[name]
    env = environment(service)
    database = env["DATABASE_URL"].rsplit("/", 1)[1]

    assert env["DATABASE_POOLER"] == "transaction"
    assert database in pooler_databases(pgbouncer_ini(compose))
    assert service["depends_on"]["pgbouncer"]["condition"] == "service_healthy"


def test_the_web_database_of_pgbouncer_bounds_statements_as_gunicorn_conf_does(compose):
    """PgBouncer refuses startup options, so the web's statement timeout (set by
    vsm/gunicorn_conf.py, applied by vsm/settings.py without a pooler) comes from the
    pooler's web database; the worker's statements stay unbounded."""
    gunicorn_conf = (ROOT / "vsm" / "gunicorn_conf.py").read_text()
    seconds = re.search(r'setdefault\("DATABASE_STATEMENT_TIMEOUT", "(\d+)"\)', gunicorn_conf)
    assert seconds, "vsm/gunicorn_conf.py no longer sets DATABASE_STATEMENT_TIMEOUT"
    databases = pooler_databases(pgbouncer_ini(compose))

    web_query = databases[POOLED_SERVICES["web"]].get("connect_query", "")
    assert web_query == f"SET statement_timeout = {int(seconds.group(1)) * 1000}"
    assert "connect_query" not in databases[POOLED_SERVICES["worker"]]


def database_settings(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """vsm.settings' DATABASES, read in a process of its own with exactly ``env``."""
    code = "import json, vsm.settings as s; print(json.dumps(s.DATABASES['default'], default=str))"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("name", sorted(POOLED_SERVICES))
def test_the_pooled_services_settings_keep_nothing_beyond_a_transaction(services, name):
    env = {key: interpolated(value) for key, value in environment(services[name]).items()}
    # gunicorn_conf.py sets it for the web server: through the pooler it must not
    # become a startup option, which PgBouncer refuses.
    env["DATABASE_STATEMENT_TIMEOUT"] = "10"

    result = database_settings(env)

    assert result.returncode == 0, result.stderr
    database = json.loads(result.stdout)
    assert database["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert "prepare_threshold" in database["OPTIONS"]
    assert database["OPTIONS"]["prepare_threshold"] is None
    assert "options" not in database["OPTIONS"]


def test_without_a_pooler_the_statement_timeout_is_a_startup_option(services):
    env = {key: interpolated(value) for key, value in environment(services["migrate"]).items()}
    env["DATABASE_STATEMENT_TIMEOUT"] = "10"

    result = database_settings(env)

    assert result.returncode == 0, result.stderr
    database = json.loads(result.stdout)
    assert database["OPTIONS"]["options"] == "-c statement_timeout=10000"
    assert not database.get("DISABLE_SERVER_SIDE_CURSORS")


def test_an_unknown_pooler_mode_is_refused_at_startup(services):
    env = {key: interpolated(value) for key, value in environment(services["web"]).items()}
    env["DATABASE_POOLER"] = "statement"

    result = database_settings(env)

    assert result.returncode != 0
    assert "DATABASE_POOLER must be empty or 'transaction', not 'statement'" in result.stderr
