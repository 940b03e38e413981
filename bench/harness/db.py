"""The bench databases, the Django environment of a run, and Redis DBs.

Every bench database is named ``vsm_bench_<scenario>`` on 127.0.0.1:5432 (user
postgres, trust auth): the harness refuses any other name, so a run can never drop a
database it does not own.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import threading
import time

from harness import BENCH_DIR, ROOT

HOST, PORT, USER = "127.0.0.1", 5432, "postgres"
PREFIX = "vsm_bench_"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


class Database:
    """One bench database: created, dropped, re-used, vacuumed; its backends."""

    def __init__(self, name: str) -> None:
        if not name.startswith(PREFIX):
            raise ValueError(f"bench databases are named {PREFIX}*, not {name!r}")
        self.name = name
        self.url = f"postgres://{USER}@{HOST}:{PORT}/{name}"

    def connect(self, dbname: str | None = None, autocommit: bool = True):
        import psycopg

        return psycopg.connect(
            host=HOST, port=PORT, user=USER, dbname=dbname or self.name, autocommit=autocommit
        )

    def exists(self) -> bool:
        with self.connect("postgres") as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.name])
            return found.fetchone() is not None

    def recreate(self) -> None:
        with self.connect("postgres") as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.name}"')

    def vacuum(self, *tables: str, full_analyze: bool = True) -> float:
        """VACUUM (ANALYZE) these tables; seconds taken.

        Autovacuum is off on our machines' PostgreSQL (``SHOW autovacuum``): dead row
        versions would pile up over a run and slow its later phases. Production runs
        autovacuum; vacuuming before a phase stands in for it.
        """
        started = time.perf_counter()
        with self.connect() as conn:
            for table in tables:
                conn.execute(f"VACUUM {'(ANALYZE) ' if full_analyze else ''}{table}")
        return round(time.perf_counter() - started, 2)

    def backend_pids(self) -> list[int]:
        """The PostgreSQL backends connected to this database (gunicorn's, the bench's)."""
        with self.connect("postgres") as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.name]
            ).fetchall()
        return [pid for (pid,) in rows]

    def server(self) -> dict:
        """The server's version and the settings that move the figures."""
        with self.connect("postgres") as conn:
            show = {
                name: conn.execute(f"SHOW {name}").fetchone()[0]
                for name in ("server_version", "shared_buffers", "work_mem", "autovacuum")
            }
        return {
            "postgres": show["server_version"],
            "shared_buffers": show["shared_buffers"],
            "work_mem": show["work_mem"],
            "autovacuum": show["autovacuum"],
        }

    @contextlib.contextmanager
    def deadline(self, pid: int, seconds: float | None):
        """Cancel the statements of backend ``pid`` from ``seconds`` on, until the block
        ends: a long service call then fails with ``QueryCanceled`` (an
        ``OperationalError``) and its transaction rolls back. Yields a dict whose
        ``fired`` says whether the deadline passed."""
        state = {"fired": False}
        if not seconds:
            yield state
            return
        stop = threading.Event()

        def cancel() -> None:
            if stop.wait(seconds):
                return
            state["fired"] = True
            with self.connect("postgres") as conn:
                while not stop.is_set():
                    conn.execute("SELECT pg_cancel_backend(%s)", [pid])
                    stop.wait(0.05)

        thread = threading.Thread(target=cancel, daemon=True)
        thread.start()
        try:
            yield state
        finally:
            stop.set()
            thread.join()


def backend_pid() -> int:
    """The PostgreSQL backend of this process's Django connection."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def environment(
    database: Database,
    *,
    broker: str = "memory://",
    cache: str = "locmemcache://bench",
    web: bool = False,
    secret: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """The settings of a run, for this process and its subprocesses: production's
    (``benchconf.settings`` is ``vsm.settings`` with the static files collected under
    ``bench/results``), DEBUG off, eager tasks off (a service call publishes and
    returns; nothing runs inline). ``web``: what serving plain HTTP on loopback needs,
    and database connections kept for the run (a backend that exits mid-phase takes
    its CPU out of the accounting)."""
    env = {
        "DJANGO_SETTINGS_MODULE": "benchconf.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secret or secrets.token_urlsafe(50),
        "DJANGO_LOG_LEVEL": "WARNING",
        "DATABASE_URL": database.url,
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CACHE_URL": cache,
        "PYTHONPATH": os.pathsep.join([str(BENCH_DIR), str(ROOT)]),
    }
    if web:
        env.update(
            DJANGO_ALLOWED_HOSTS="testserver,127.0.0.1",
            # TLS ends before the app in production; here requests are plain HTTP.
            DJANGO_SECURE_SSL_REDIRECT="false",
            DATABASE_CONN_MAX_AGE="600",
        )
    env.update(extra)
    return env


def setup_django(env: dict[str, str]) -> None:
    """Configure this process with ``env`` and set Django up (from the project root)."""
    import logging

    os.environ.update({k: v for k, v in env.items() if k != "PYTHONPATH"})
    os.chdir(ROOT)
    import django

    django.setup()
    # A service call publishes its task to the in-memory broker; kombu warns once
    # that memory:// names no host.
    logging.getLogger("kombu").setLevel(logging.ERROR)


def migrate() -> list[str]:
    """Apply pending migrations; returns those that were pending."""
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    call_command("migrate", verbosity=0, interactive=False)
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


def copy_rows(model, rows) -> int:
    """COPY ``rows`` (dicts by field attname) into ``model``'s table on Django's
    connection; the number of rows. A setup shortcut that stays a valid write: every
    concrete field but the primary key is written, from the row, else what Django would
    write (``Field.get_default()``: the default, '' for text, else NULL), except fields
    the database fills (``db_default``) that the rows leave out. COPY fires the table's
    triggers and checks its constraints and foreign keys, as INSERTs would."""
    from django.db import connection
    from django.db.models import NOT_PROVIDED

    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return 0
    fields = [
        field
        for field in model._meta.concrete_fields
        if not field.primary_key and (field.attname in first or field.db_default is NOT_PROVIDED)
    ]
    defaults = {field.attname: field.get_default() for field in fields}
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    names = [field.attname for field in fields]
    count = 0
    with connection.cursor() as cursor:
        statement = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
        with cursor.cursor.copy(statement) as copy:
            for row in itertools.chain([first], rows):
                copy.write_row([row.get(name, defaults.get(name)) for name in names])
                count += 1
    return count


def collectstatic() -> None:
    """The pages name hashed static files (the manifest storage): collect them."""
    from django.core.management import call_command

    call_command("collectstatic", verbosity=0, interactive=False)


def flush_redis(*dbs: int) -> None:
    import redis

    for db in dbs:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db).flushdb()


def redis_url(db: int) -> str:
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"
