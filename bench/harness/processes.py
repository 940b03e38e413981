"""The servers a scenario starts: gunicorn, a Celery worker, PgBouncer. Each runs in
its own session with its output in ``bench/results/<name>.log`` and is stopped with
SIGTERM (then SIGKILL), never by name."""

from __future__ import annotations

import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from harness import RESULTS_DIR, ROOT, percentile
from harness.db import HOST, PORT, USER, Database
from harness.web import free_port, request


class Service:
    """A subprocess of the bench, stopped by ``stop()`` or on leaving a ``with``."""

    def __init__(self, command: list[str], env: dict[str, str], log_name: str) -> None:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = RESULTS_DIR / f"{log_name}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_until(self, ready, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"{what} exited; see {self.log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{what} not ready after {timeout:g} s; see {self.log_path}")
            time.sleep(0.2)

    def stop(self, timeout: float = 20) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # warm shutdown
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self.log.closed:
            self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class Gunicorn(Service):
    """``vsm.wsgi:application`` on a free loopback port; ready once /healthz answers.
    The Dockerfile runs 3 sync workers; ``worker_class="gthread"`` takes ``threads``."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        workers: int = 3,
        worker_class: str = "sync",
        threads: int = 1,
        log_name: str = "gunicorn",
    ) -> None:
        self.port = free_port()
        self.description = f"gunicorn {worker_class} x{workers}" + (
            f" ({threads} threads)" if worker_class == "gthread" else ""
        )
        command = [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "vsm.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--worker-class",
            worker_class,
            "--log-level",
            "warning",
        ]
        if worker_class == "gthread":
            command += ["--threads", str(threads)]
        super().__init__(command, env, log_name)
        self.wait_until(self._healthy, "gunicorn", 30)

    def _healthy(self) -> bool:
        try:
            return request(self.port, "GET", "/healthz")[0] == 200
        except OSError:
            return False

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class CeleryWorker(Service):
    """``celery -A vsm worker --pool solo -c 1`` at INFO (its task lines are read back)."""

    TASK = re.compile(r"Task ([\w.]+)\[[^\]]+\] succeeded in ([0-9.]+)s: (\{.*\})")

    def __init__(self, env: dict[str, str], log_name: str) -> None:
        command = [
            str(ROOT / ".venv" / "bin" / "celery"),
            "-A",
            "vsm",
            "worker",
            "--pool",
            "solo",
            "-c",
            "1",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"{log_name}-{os.getpid()}@%h",
        ]
        super().__init__(command, {**env, "DJANGO_LOG_LEVEL": "INFO"}, log_name)

    def wait_ready(self, timeout: float = 60) -> None:
        self.wait_until(
            lambda: "ready." in self.log_path.read_text(errors="replace"), "celery worker", timeout
        )

    def task_runs(self, task: str) -> dict:
        """Run times of ``task`` from the worker's log, and the moves each applied."""
        seconds, applied = [], []
        for line in self.log_path.read_text(errors="replace").splitlines():
            match = self.TASK.search(line)
            if match and match.group(1) == task:
                seconds.append(float(match.group(2)))
                found = re.search(r"'applied': (\d+)", match.group(3))
                if found:
                    applied.append(int(found.group(1)))
        if not seconds:
            return {"runs": 0}
        return {
            "runs": len(seconds),
            "run_s_p50": round(percentile(seconds, 50), 3),
            "run_s_p95": round(percentile(seconds, 95), 3),
            "run_s_max": round(max(seconds), 3),
            "moves_per_run_mean": round(statistics.fmean(applied), 1) if applied else None,
            "total_run_s": round(sum(seconds), 1),
        }


class PgBouncer(Service):
    """Debian's PgBouncer (``apt-get install pgbouncer``) in transaction pooling in front
    of one bench database, on a free loopback port, as the Compose service runs it.

    Its configuration lives in a directory of its own under /tmp (removed on stop), never
    in /etc: the system's PostgreSQL and PgBouncer are left alone. PgBouncer refuses to
    run as root; started by root it drops to ``nobody`` (``-u``). Clients connect as
    the bench's user with no password (``auth_type = trust``, as the bench's PostgreSQL
    on loopback); ``url`` is the ``DATABASE_URL`` that goes through it.
    """

    BINARY = "/usr/sbin/pgbouncer"

    def __init__(
        self, database: Database, *, pool_size: int = 20, log_name: str = "pgbouncer"
    ) -> None:
        if not Path(self.BINARY).exists():
            raise SystemExit(f"{self.BINARY} not found: apt-get install -y pgbouncer")
        self.port = free_port()
        self.pool_size = pool_size
        self.directory = Path(tempfile.mkdtemp(prefix="vsm-bench-pgbouncer-"))
        self.directory.chmod(0o755)
        config = self.directory / "pgbouncer.ini"
        users = self.directory / "userlist.txt"
        users.write_text(f'"{USER}" ""\n')
        config.write_text(
            "\n".join(
                [
                    "[databases]",
                    f"{database.name} = host={HOST} port={PORT} dbname={database.name}",
                    "[pgbouncer]",
                    "listen_addr = 127.0.0.1",
                    f"listen_port = {self.port}",
                    "unix_socket_dir =",
                    "auth_type = trust",
                    f"auth_file = {users}",
                    "pool_mode = transaction",
                    f"default_pool_size = {pool_size}",
                    "max_client_conn = 500",
                    "ignore_startup_parameters = extra_float_digits",
                    "",
                ]
            )
        )
        for path in (config, users):
            path.chmod(0o644)
        command = [self.BINARY, str(config)]
        if os.geteuid() == 0:
            command[1:1] = ["-u", "nobody"]
        self.version = subprocess.run(
            [self.BINARY, "--version"], capture_output=True, text=True, check=False
        ).stdout.split("\n", 1)[0]
        self.url = f"postgres://{USER}@127.0.0.1:{self.port}/{database.name}"
        self.description = (
            f"{self.version or 'PgBouncer'}, transaction pooling, pool size {pool_size}"
        )
        super().__init__(command, {}, log_name)
        self.wait_until(lambda: self._answers(database), "pgbouncer", 15)

    def _answers(self, database: Database) -> bool:
        import psycopg

        try:
            with psycopg.connect(
                host="127.0.0.1", port=self.port, user=USER, dbname=database.name, connect_timeout=2
            ) as conn:
                return conn.execute("SELECT 1").fetchone() == (1,)
        except psycopg.OperationalError:
            return False

    def stop(self, timeout: float = 20) -> None:
        super().stop(timeout)
        shutil.rmtree(self.directory, ignore_errors=True)
