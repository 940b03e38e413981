"""The servers a scenario starts: gunicorn, a Celery worker. Each runs in its own
session with its output in ``bench/results/<name>.log`` and is stopped with SIGTERM
(then SIGKILL), never by name."""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import time

from harness import RESULTS_DIR, ROOT, percentile
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
