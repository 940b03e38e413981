"""Requests per token (settings.VSM_API_RATE): 429 in the API's error shape with
Retry-After beyond the rate, per token, over a sliding window, counted in the shared
cache so that several processes hold one limit (tested on a Redis of its own)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.core.cache import cache
from django.urls import reverse

from api.models import ApiToken
from api.throttling import TokenRateThrottle, parse_rate
from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db


def test_beyond_the_rate_a_token_is_refused_with_429(api, issued, other_issued, settings):
    settings.VSM_API_RATE = "3/min"
    url = reverse("api:token")

    answers = [api.get(url) for _ in range(4)]

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    body = refused.json()
    assert body["code"] == "throttled"
    assert set(body) == {"code", "message", "data"}
    wait = int(refused["Retry-After"])
    # The rest of this minute, then until its 3 weigh little enough (at most 20 s).
    assert 1 <= wait <= 80
    assert body["data"] == {"wait_seconds": wait}
    # Another token has its own count.
    assert bearer(other_issued.secret).get(url).status_code == 200


class _Request:
    def __init__(self, token: ApiToken) -> None:
        self.auth = token


def _throttle_at(moment: float) -> TokenRateThrottle:
    throttle = TokenRateThrottle()
    throttle.timer = lambda: moment  # type: ignore[method-assign]
    return throttle


def test_the_window_slides_and_retry_after_is_when_it_lets_in_again(issued, settings):
    settings.VSM_API_RATE = "3/min"
    request = _Request(issued.token)
    start = 600.0 * 10**6  # the start of a minute
    for second in (10, 20, 30):
        assert _throttle_at(start + second).allow_request(request, None)
    # One second into the next minute, the last minute's 3 still weigh 59/60 of 3.
    early = _throttle_at(start + 61)
    assert not early.allow_request(request, None)
    # 3 * (60 - e) / 60 + 1 <= 3 once e >= 20: 19 s after this request.
    assert early.wait() == 19
    assert not _throttle_at(start + 79).allow_request(request, None)
    assert _throttle_at(start + 80).allow_request(request, None)
    # Refused requests were not counted: this minute holds the one let in.
    key = f"vsm:api-rate:{issued.token.pk}:{issued.token.prefix}:{int((start + 80) // 60)}"
    assert cache.get(key) == 1


def test_a_full_window_waits_into_the_next(issued, settings):
    settings.VSM_API_RATE = "2/min"
    request = _Request(issued.token)
    start = 600.0 * 10**6
    assert _throttle_at(start + 50).allow_request(request, None)
    assert _throttle_at(start + 50).allow_request(request, None)
    refused = _throttle_at(start + 50)

    assert not refused.allow_request(request, None)
    # 10 s to the next minute, then until 2 * (60 - e) / 60 + 1 <= 2, e = 30.
    assert refused.wait() == 40
    assert not _throttle_at(start + 89).allow_request(request, None)
    assert _throttle_at(start + 90).allow_request(request, None)


def test_a_cache_that_fails_lets_requests_through(api, settings):
    settings.VSM_API_RATE = "1/min"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {"socket_connect_timeout": 0.1, "socket_timeout": 0.1},
        }
    }
    url = reverse("api:token")

    assert [api.get(url).status_code for _ in range(3)] == [200, 200, 200]


@pytest.mark.parametrize("rate", ["", "0/min", "ten/min", "5/fortnight", "5", "-1/s", "²/s"])
def test_a_rate_that_is_not_one_is_refused(rate):
    with pytest.raises(ValueError):
        parse_rate(rate)


def test_rates_read_as_drf_reads_them():
    assert parse_rate("120/min") == (120, 60)
    assert parse_rate("5/s") == (5, 1)
    assert parse_rate("1000/hour") == (1000, 3600)
    assert parse_rate("9/day") == (9, 86400)


def _spare_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def own_redis() -> Iterator[str]:
    """A redis-server of this test's own on a spare loopback port; stopped after."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is installed on every machine we build on (STACK.md)"
    port = _spare_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


# Each process: its requests with one token, at one moment (the same window), begun at
# the same instant; prints how many were let in.
_WORKER = """
import os, sys, time
import django
django.setup()
from django.conf import settings
# The test's Redis is local but the machine may be loaded: wait longer than production.
settings.CACHES["default"]["OPTIONS"].update(socket_timeout=5, socket_connect_timeout=5)
from api.models import ApiToken
from api.throttling import TokenRateThrottle

class Request:
    auth = ApiToken(pk=int(os.environ["TOKEN_ID"]), prefix="0123abcd")

throttle = TokenRateThrottle()
throttle.timer = lambda: 600.0 * 10**6 + 30
while time.time() < float(os.environ["START_AT"]):
    time.sleep(0.001)
print(sum(throttle.allow_request(Request, None) for _ in range(int(os.environ["REQUESTS"]))))
"""


def test_processes_share_one_limit(own_redis):
    """Two processes, 40 requests each, against a limit of 50: 50 let in, no more (the
    count is one atomic counter in Redis), and the refusals leave the count at 50."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vsm.settings_test",
        "CACHE_URL": own_redis,
        "VSM_API_RATE": "50/min",
        "TOKEN_ID": "424242",
        "REQUESTS": "40",
        "START_AT": str(time.time() + 3),
    }
    root = Path(django_settings.BASE_DIR)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER], env=env, cwd=root, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    let_in = [int(worker.communicate(timeout=60)[0].strip().splitlines()[-1]) for worker in workers]

    assert sum(let_in) == 50, let_in
    # Django's Redis cache keeps whole numbers as plain Redis integers.
    counter = redis.Redis.from_url(own_redis).get(":1:vsm:api-rate:424242:0123abcd:10000000")
    assert int(counter) == 50


@pytest.mark.parametrize(("rate", "starts"), [("120/min", True), ("lots", False), ("0/s", False)])
def test_the_settings_refuse_a_rate_that_is_not_one(rate, starts):
    """Checked when the settings load: a bad rate stops the process from starting
    rather than failing every API request."""
    env = {**os.environ, "DJANGO_DEBUG": "true", "VSM_API_RATE": rate}
    loaded = subprocess.run(
        [sys.executable, "-c", "import vsm.settings"],
        env=env,
        cwd=Path(django_settings.BASE_DIR),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert (loaded.returncode == 0) is starts, loaded.stderr
    if not starts:
        assert "VSM_API_RATE" in loaded.stderr
