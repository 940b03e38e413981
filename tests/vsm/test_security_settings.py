"""The production settings' security baseline: DEBUG off unless asked for, the secret key,
cookie names, HSTS, the CSP, and `check --deploy`.

The test run itself uses the development settings (vsm/settings_test.py), so the
production branch of vsm/settings.py is read in subprocesses, from an environment with
no DJANGO_* or VSM_* variable but those a test names.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

ROOT = Path(__file__).resolve().parent.parent.parent
# What production sets (README.md, docker-compose.yml).
PRODUCTION = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
    "DJANGO_ALLOWED_HOSTS": "example.org",
}


def clean_environment(**variables: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "VSM_"))
    }
    return {**env, "DJANGO_SETTINGS_MODULE": "vsm.settings", **variables}


def run(args: list[str], **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=clean_environment(**variables),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def settings_with(**variables: str) -> dict:
    """Django's settings (defaults included) as vsm.settings makes them from ``variables``."""
    script = (
        "import json; from django.conf import settings; "
        "print(json.dumps({name: getattr(settings, name) for name in dir(settings) "
        "if name.isupper()}, default=str))"
    )
    result = run(["-c", script], **variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def production() -> dict:
    """The settings production gets from what it sets, defaults for the rest."""
    return settings_with(**PRODUCTION)


def test_debug_is_off_when_not_asked_for(production):
    assert production["DEBUG"] is False


def test_debug_is_on_only_when_asked_for():
    assert settings_with(DJANGO_DEBUG="true")["DEBUG"] is True


@pytest.mark.parametrize(
    "secret_key",
    [None, "", "short", "x" * 49, "django-insecure-vsm-development-only-never-use-in-production"],
    ids=["unset", "empty", "short", "49 characters", "development key"],
)
def test_production_refuses_to_start_without_a_real_secret_key(secret_key):
    variables = {"DJANGO_ALLOWED_HOSTS": "example.org"}
    if secret_key is not None:
        variables["DJANGO_SECRET_KEY"] = secret_key

    result = run(["-c", "import vsm.settings"], **variables)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_production_cookies_are_host_only_and_https_only(production):
    # The front end must not look the CSRF cookie up by a name that production changes:
    # the token reaches htmx through the hx-headers of base.html.
    scripts = {path: path.read_text() for path in (ROOT / "static" / "js").rglob("*.js")}
    cookie_readers = [path for path, text in scripts.items() if re.search(r"cookie", text, re.I)]

    for kind in ("SESSION", "CSRF"):
        # The __Host- prefix is honoured only with Secure, Path=/ and no Domain.
        assert production[f"{kind}_COOKIE_NAME"].startswith("__Host-"), kind
        assert production[f"{kind}_COOKIE_SECURE"] is True, kind
        assert production[f"{kind}_COOKIE_PATH"] == "/", kind
        assert production[f"{kind}_COOKIE_DOMAIN"] is None, kind
    assert scripts
    assert cookie_readers == []
    assert "X-CSRFToken" in (ROOT / "templates" / "base.html").read_text()


def test_development_cookies_keep_their_plain_names():
    # http://127.0.0.1 cannot keep a Secure cookie in every browser.
    settings = settings_with(DJANGO_DEBUG="true")

    assert settings["SESSION_COOKIE_NAME"] == "sessionid"
    assert settings["CSRF_COOKIE_NAME"] == "csrftoken"


def test_hsts_is_on_in_production_and_preload_is_opt_in(production):
    default = production
    preloaded = settings_with(**PRODUCTION, DJANGO_SECURE_HSTS_PRELOAD="true")

    assert default["SECURE_HSTS_SECONDS"] == 365 * 24 * 3600
    assert default["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert default["SECURE_HSTS_PRELOAD"] is False
    assert preloaded["SECURE_HSTS_PRELOAD"] is True
    # Only the "preload is off" warning is silenced, and only while it is off.
    assert default["SILENCED_SYSTEM_CHECKS"] == ["security.W021"]
    assert preloaded["SILENCED_SYSTEM_CHECKS"] == []


def test_session_and_login_limits_come_from_the_environment(production):
    default = production
    configured = settings_with(
        **PRODUCTION,
        VSM_SESSION_IDLE_MINUTES="30",
        VSM_SESSION_MAX_MINUTES="600",
        VSM_LOGIN_FAILURE_LIMIT="8",
        VSM_LOGIN_COOLOFF_MINUTES="2",
        VSM_TRUSTED_PROXY_COUNT="1",
    )

    assert default["SESSION_COOKIE_AGE"] == 12 * 3600
    assert default["VSM_SESSION_MAX_AGE"] == 7 * 24 * 3600
    assert default["AXES_FAILURE_LIMIT"] == 5
    assert default["AXES_COOLOFF_TIME"] == "0:15:00"
    assert default["VSM_TRUSTED_PROXY_COUNT"] == 0
    assert configured["SESSION_COOKIE_AGE"] == 30 * 60
    assert configured["VSM_SESSION_MAX_AGE"] == 600 * 60
    assert configured["AXES_FAILURE_LIMIT"] == 8
    assert configured["AXES_COOLOFF_TIME"] == "0:02:00"
    assert configured["VSM_TRUSTED_PROXY_COUNT"] == 1


def test_deploy_check_is_clean_with_production_settings():
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        **PRODUCTION,
        DJANGO_DEBUG="false",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.django_db
def test_the_csp_forbids_plugins(client):
    response = client.get(reverse("login"))

    assert "object-src 'none'" in response["Content-Security-Policy"]


def test_make_run_asks_for_debug_and_the_image_never_does():
    dry_run = subprocess.run(
        ["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    manage_lines = [line for line in dry_run.stdout.splitlines() if "manage.py" in line]
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env_lines = [line for line in dockerfile.splitlines() if line.strip().startswith("ENV")]

    assert len(manage_lines) == 3, dry_run.stdout  # migrate, seed_demo, runserver
    assert all(line.startswith("DJANGO_DEBUG=true ") for line in manage_lines), manage_lines
    assert not [line for line in env_lines if "DJANGO_DEBUG" in line]
    assert "DJANGO_DEBUG=true" not in dockerfile
