"""VSM settings, read from the environment.

DEBUG is off unless DJANGO_DEBUG=true (`make run` sets it). With that and nothing else
set, VSM runs embedded: SQLite, an in-memory cache, and Celery tasks run in-process, so
a newcomer needs no service. Production sets DATABASE_URL, CELERY_BROKER_URL,
CACHE_URL, DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS (see README.md).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# Off unless asked for: a deployment that forgets the variable must not serve debug pages.
# `make run` and the test settings ask for it.
DEBUG = env.bool("DJANGO_DEBUG", default=False)

_INSECURE_DEV_KEY = "django-insecure-vsm-development-only-never-use-in-production"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=_INSECURE_DEV_KEY if DEBUG else "")
if not DEBUG and (len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure")):
    raise environ.ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set to a random value of 50 or more characters when "
        "DJANGO_DEBUG is off (for development, set DJANGO_DEBUG=true, as `make run` does)"
    )

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "vsm",
    "pdca",
    "boards",
    "metrics",
    "intake",
    "webhooks",
    "exports",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outside the others, so that it sees every answer (refusals and redirects too).
    "vsm.privacy.NoStoreMiddleware",
    # Refuses a NUL in the URL (400) before anything reads the query string.
    "vsm.middleware.NulRefusedMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "vsm.accounts.SessionLifetimeMiddleware",
    # Django's LoginRequiredMiddleware, answering htmx requests with 401 + HX-Redirect.
    "vsm.accounts.HtmxLoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "vsm.http.DomainErrorMiddleware",
    # Last, as django-axes asks: turns a login refused for too many failures into the
    # lockout page.
    "axes.middleware.AxesMiddleware",
]

if not DEBUG:
    # Serves the collected, hashed static files; in development runserver does.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "vsm.urls"
WSGI_APPLICATION = "vsm.wsgi.application"
ASGI_APPLICATION = "vsm.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, in-process tasks, seed) share the file: wait for the
    # write lock instead of failing at once, and take it at BEGIN to avoid upgrade deadlocks.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
# Seconds any one statement may run (0: no bound). vsm/gunicorn_conf.py sets it for the
# web server: a query that hangs answers "busy, try again" (vsm.http) instead of holding
# a web thread. Workers, migrations and commands run longer statements: unbounded.
_statement_timeout = env.int("DATABASE_STATEMENT_TIMEOUT", default=0)
# Behind PgBouncer in transaction pooling (DATABASE_POOLER=transaction: web and worker
# in docker-compose.yml), a server connection serves one transaction, then another
# client's: nothing may outlive a transaction on it. So no cursors WITH HOLD
# (.iterator() outside a transaction), no prepared statements, and no startup options,
# which PgBouncer refuses ("unsupported startup parameter"): the pooler's web database
# sets the statement timeout above on every server connection it opens (connect_query).
# SET LOCAL (vsm.transactions) ends with its transaction: safe. Nothing here LISTENs or
# takes advisory locks; Celery's broker and the cache are Redis.
DATABASE_POOLER = env.str("DATABASE_POOLER", default="")
if DATABASE_POOLER not in ("", "transaction"):
    raise environ.ImproperlyConfigured(
        f"DATABASE_POOLER must be empty or 'transaction', not {DATABASE_POOLER!r}"
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    if DATABASE_POOLER == "transaction":
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = None
    elif _statement_timeout:
        DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
            f"-c statement_timeout={_statement_timeout * 1000}"
        )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# How long a request waits on Redis (the cache or the broker) per command before it
# gives up: the cache only coalesces announcements and keeps derived values, and a lost
# announcement is caught up by the sweeper, so a Redis that hangs costs a move about
# this much once (vsm.events), never a failure. Redis answers in under a millisecond;
# on a loaded 2-core machine its slowest answer in 20,000 was 40 ms.
VSM_REDIS_TIMEOUT_SECONDS = 0.1

# An open board polls every 2 s; viewers are told a board version at most this many
# seconds old, so that they fall into step and share each rendered delta (the cost of
# 50 viewers is that of a few). A change reaches them within the poll plus this. The
# poll's own interval: viewers then mostly hold the version before the one they are
# told, so one delta serves nearly all of them; with 1 s they held one of two or three,
# and a poll cost 29.6 ms of server CPU against 17.8 (docs/performance.md, run U).
VSM_BOARD_PUBLISH_SECONDS = env.float("VSM_BOARD_PUBLISH_SECONDS", default=2.0)
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://vsm")}
if "redis" in CACHES["default"]["BACKEND"].lower():
    CACHES["default"].setdefault("OPTIONS", {}).update(
        socket_connect_timeout=VSM_REDIS_TIMEOUT_SECONDS, socket_timeout=VSM_REDIS_TIMEOUT_SECONDS
    )
    # Sessions are read from the cache every process shares (vsm.sessions): one query
    # less on every request, each board poll included.
    SESSION_ENGINE = "vsm.sessions"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# django-axes counts failed logins (both login forms: the site's and the admin's) by
# username and, separately, by client address; either reaching the limit refuses
# logins for the cool-off, counted from the last failure. Attempts are rows in the
# database; `manage.py axes_reset_username NAME` lifts a lockout early.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = env.int("VSM_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("VSM_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_CALLABLE = "vsm.accounts.lockout_response"
AXES_CLIENT_IP_CALLABLE = "vsm.accounts.client_ip_address"
AXES_USERNAME_CALLABLE = "vsm.accounts.login_username"
# Proxies in front of the app that append the client's address to X-Forwarded-For
# (Compose: the reverse proxy, 1). With 0, the client is the peer address: behind a
# proxy that would count every user's failures against the proxy's address.
VSM_TRUSTED_PROXY_COUNT = env.int("VSM_TRUSTED_PROXY_COUNT", default=0)
# Throttling needs the failures only: no log of every successful login, and the
# lockouts are not admin pages (the cool-off ends them).
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ADMIN = False

# A session ends after VSM_SESSION_IDLE_MINUTES without a request, and at the latest
# VSM_SESSION_MAX_MINUTES after its login (vsm.accounts.SessionLifetimeMiddleware).
SESSION_COOKIE_AGE = 60 * env.int("VSM_SESSION_IDLE_MINUTES", default=12 * 60)
VSM_SESSION_MAX_AGE = 60 * env.int("VSM_SESSION_MAX_MINUTES", default=7 * 24 * 60)

LOGIN_URL = "login"
CSRF_FAILURE_VIEW = "vsm.http.csrf_failure"
LOGIN_REDIRECT_URL = "boards:stream-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/sortablejs", BASE_DIR / "node_modules" / "sortablejs"),
    ("vendor/chartjs", BASE_DIR / "node_modules" / "chart.js" / "dist"),
    (
        "vendor/chartjs-plugin-annotation",
        BASE_DIR / "node_modules" / "chartjs-plugin-annotation" / "dist",
    ),
    (
        "vendor/chartjs-adapter-date-fns",
        BASE_DIR / "node_modules" / "chartjs-adapter-date-fns" / "dist",
    ),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "connect-src": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.SELF],
}

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Preloading is a promise browsers ship in their binaries and slow to undo: opt-in.
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]  # "preload is not set": chosen
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # __Host-: the browser keeps these cookies only if Secure, with Path=/ and no Domain,
    # so neither a sibling subdomain nor plain HTTP can plant or overwrite them.
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"

# E-mail (the weekly digest), as Django 6.1's MAILERS (the EMAIL_* settings are
# deprecated, and refused beside it). One variable, EMAIL_URL, read by django-environ:
# consolemail:// (the embedded default, with DJANGO_DEBUG on: messages printed to the
# console) or e.g. smtp+tls://user:password@smtp.example.com:587 (also smtp://,
# smtp+ssl://, filemail://, memorymail://, dummymail://). With debug off the default
# is the host's own mail server, smtp://localhost:25, as Django's own default.
_email = env.email_url("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25")
_email_options: dict = {}
if _email["EMAIL_BACKEND"].endswith(".smtp.EmailBackend"):
    _email_options = {
        "host": _email["EMAIL_HOST"] or "localhost",
        "port": _email["EMAIL_PORT"],  # None: 465 with SSL, 587 with TLS, else 25
        "username": _email["EMAIL_HOST_USER"],
        "password": _email["EMAIL_HOST_PASSWORD"],
        "use_tls": _email.get("EMAIL_USE_TLS", False),
        "use_ssl": _email.get("EMAIL_USE_SSL", False),
        # A mail server that hangs must not hold a worker forever (?timeout= seconds).
        "timeout": _email.get("OPTIONS", {}).get("TIMEOUT", 30),
    }
elif _email["EMAIL_BACKEND"].endswith(".filebased.EmailBackend"):
    _email_options = {"file_path": _email["EMAIL_FILE_PATH"]}
MAILERS = {"default": {"BACKEND": _email["EMAIL_BACKEND"], "OPTIONS": _email_options}}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="VSM <vsm@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Where e-mails link to (no request to build absolute URLs from), without a trailing /.
# Days after which a won or lost prospect's personal data is erased (name, company,
# e-mail, notes and what was written about it; its numbers stay). 0: kept.
VSM_CLOSED_CARD_RETENTION_DAYS = env.int("VSM_CLOSED_CARD_RETENTION_DAYS", default=0)
VSM_BASE_URL = env.str("VSM_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

# Celery. The embedded default runs tasks in-process (no broker); production points
# CELERY_BROKER_URL at Redis.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="memory://")
CELERY_TASK_ALWAYS_EAGER = env.bool(
    "CELERY_TASK_ALWAYS_EAGER", default=CELERY_BROKER_URL.startswith("memory://")
)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
# A worker kills a task that runs longer (prefork pool). The longest, a recompute that
# rebuilds a stream of 1,000,000 moves, takes 40-60 s (docs/performance.md).
CELERY_TASK_TIME_LIMIT = 10 * 60
# A user's request must never hang on a broker that is down or hung: fail fast, the
# sweeper catches up later (workers and beat wait longer: vsm.celery). The connection
# timeout is AMQP's; Redis takes the socket timeouts.
CELERY_BROKER_CONNECTION_TIMEOUT = 1.0
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": VSM_REDIS_TIMEOUT_SECONDS,
    "socket_timeout": VSM_REDIS_TIMEOUT_SECONDS,
    "max_retries": 0,
    # Redis gives a message no worker acknowledged within this time to another worker.
    # A live worker holds a message while its countdown runs (a retry's backoff, at most
    # 1 h: metrics.weekly_digest) and then runs it (at most CELERY_TASK_TIME_LIMIT), so
    # anything shorter would run such tasks twice. A killed worker's messages come back
    # after it; the metrics do not wait for them: the sweeper below catches up first.
    "visibility_timeout": 2 * 60 * 60,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_PUBLISH_RETRY = False
# Tasks told (by name, after commit) that a stream changed: see vsm.events.
VSM_STREAM_CHANGED_TASKS = [
    "metrics.stream_changed",
    "webhooks.stream_changed",
    # Pulls prospects waiting in intake when a change made room (intake.tasks).
    "intake.stream_changed",
]
# The largest CSV file an import takes (intake/), in bytes: VSM_IMPORT_MAX_MB megabytes.
VSM_IMPORT_MAX_BYTES = env.int("VSM_IMPORT_MAX_MB", default=20) * 1024 * 1024
# Webhooks (webhooks/): seconds a delivery waits to connect, and as long for the
# answer; whether URLs may name internal machines (loopback, private networks: refused
# by default, see webhooks/targets.py); days the delivery log keeps finished ones (0:
# all of them).
VSM_WEBHOOK_TIMEOUT_SECONDS = env.float("VSM_WEBHOOK_TIMEOUT_SECONDS", default=5.0)
VSM_WEBHOOK_ALLOW_INTERNAL_URLS = env.bool("VSM_WEBHOOK_ALLOW_INTERNAL_URLS", default=False)
VSM_WEBHOOK_DELIVERY_RETENTION_DAYS = env.int("VSM_WEBHOOK_DELIVERY_RETENTION_DAYS", default=30)
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    # Catches up any stream whose metrics lag its move log (broker was down or hung, a
    # worker was killed with the stream's messages): no recompute is ever lost, and a
    # lost one is late by this interval at most. A sweep not started by the next one is
    # dropped (the next one covers it), so a stopped worker finds no pile of them.
    "metrics-sweep": {"task": "metrics.sweep", "schedule": 10.0, "options": {"expires": 10.0}},
    "metrics-weekly-snapshots": {
        "task": "metrics.weekly_snapshots",
        "schedule": crontab(minute=10, hour=0, day_of_week="mon"),
    },
    # Erases closed prospects' personal data past VSM_CLOSED_CARD_RETENTION_DAYS.
    "boards-closed-prospects-erase": {
        "task": "boards.closed_prospects_erase",
        "schedule": crontab(minute=40, hour=3),
    },
    # Takes the Check of experiments whose window is over (or that stopped).
    "metrics-experiment-checks": {
        "task": "metrics.experiment_checks_due",
        "schedule": crontab(minute=20),
    },
    # Records webhook deliveries a lost announcement left behind, sends retries and
    # anything due, prunes the delivery log. A late sweep is dropped, as metrics-sweep.
    "webhooks-sweep": {
        "task": "webhooks.sweep",
        "schedule": 15.0,
        "options": {"expires": 15.0},
    },
    # Sends again the import slices, checks and intake pulls a lost message or a killed
    # worker left behind; discards imports left unconfirmed for a day.
    "intake-sweep": {"task": "intake.sweep", "schedule": 60.0, "options": {"expires": 60.0}},
}

# The REST API (api/): a value stream's API token in "Authorization: Bearer", JSON in
# and out, errors as {"code", "message", "data"} (api.exceptions), no session (so no
# CSRF). Requests per token: VSM_API_RATE ("<n>/s", "/min", "/hour" or "/day"), counted
# in the cache, shared by every process (Redis in production).
VSM_API_RATE = env.str("VSM_API_RATE", default="120/min")
if not re.fullmatch(r"[1-9][0-9]{0,8}/(s|sec|m|min|h|hour|d|day)", VSM_API_RATE):
    raise environ.ImproperlyConfigured(
        f"VSM_API_RATE is '<requests>/<s|min|hour|day>', e.g. 120/min; not {VSM_API_RATE!r}"
    )
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.ApiTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["api.authentication.HasStreamToken"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.TokenRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.exceptions.api_exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "VSM API",
    "DESCRIPTION": (
        "A value stream's prospects, cards, moves and metrics. Every call names the "
        "stream of its token; anything else is answered as not found. Errors are "
        '{"code", "message", "data"} with the HTTP status of the refusal.'
    ),
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"OutcomeEnum": "boards.models.Outcome"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    # django-axes logs every login at INFO; its warnings (failures, lockouts) are enough.
    "loggers": {"axes": {"level": "WARNING"}},
}
