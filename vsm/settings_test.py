"""Settings for the test suite: ``vsm.settings`` plus what every test run needs, so a
developer's run and CI's run alike (pytest reads it through DJANGO_SETTINGS_MODULE in
pyproject.toml's [tool.pytest.ini_options]).

- Celery tasks run in the calling process, unless the run names a real broker in
  CELERY_BROKER_URL (CI does, to test against Redis): then tasks are published, the
  tests of what a task does ask for the ``eager_tasks`` fixture, and
  tests/metrics/test_worker.py starts real workers. A CELERY_TASK_ALWAYS_EAGER left in
  a developer's environment does not change this.
- The cache is in memory unless the run names one in CACHE_URL (CI's Redis, which the
  metrics tasks' coalescing marks are tested against).
- Passwords are hashed with MD5: the production hasher costs most of a second per
  user, and the tests make many users.
- E-mail goes to ``django.core.mail.outbox``, whatever EMAIL_URL says.
- The development configuration (DJANGO_DEBUG=true) unless the run sets DJANGO_DEBUG:
  set in the environment, so that the processes the tests start (Celery workers,
  ``manage.py``) get it too. The production branch of the settings is tested in
  subprocesses (tests/vsm/test_security_settings.py).
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_DEBUG", "true")

from vsm.settings import *  # noqa: E402, F403
from vsm.settings import CELERY_BROKER_URL  # noqa: E402

CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL.startswith("memory://")

if "CACHE_URL" not in os.environ:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "vsm-tests",
        }
    }

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}

# Each poll takes the board's version anew: tests of live updates poll right after a
# change. tests/boards/test_live_delta.py sets it to test viewers sharing a version.
VSM_BOARD_PUBLISH_SECONDS = 0.0
