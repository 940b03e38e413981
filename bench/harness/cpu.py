"""CPU accounting: of this process, of other processes and their children, of
PostgreSQL backends, and of the whole machine.

The machine is shared (other people's test suites, browsers) and the host's speed drifts
from minute to minute: every phase records how much CPU the bench's own processes used
and how much went to everything else ("others"), so that a slow figure can be told
apart from a busy machine, and a speed check (a fixed Python loop) to set runs side by
side.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from harness import ROOT

CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    with open("/proc/stat") as stat:
        user, nice, system, idle, iowait, irq, softirq, steal = map(
            int, stat.readline().split()[1:9]
        )
    busy = user + nice + system + irq + softirq + steal
    return busy / CLOCK_TICK, (busy + idle + iowait) / CLOCK_TICK


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def child_pids(parent: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == parent:
                    children.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return children


class CpuMeter:
    """CPU seconds used over a window by this process ("python"), by each named process
    with its children (e.g. gunicorn and its workers), by PostgreSQL backends (a
    callable, asked at both ends: a backend may come or go) and by everything else.

    ``start()`` and ``stop()`` bracket the window (the constructor starts it);
    ``result(requests, client_cpu)`` gives the shares and the server CPU per request
    (named processes plus backends). ``client_cpu``: CPU of processes measured
    elsewhere (forked clients), counted as the bench's own.
    """

    def __init__(
        self,
        processes: dict[str, int] | None = None,
        backends: Callable[[], list[int]] | None = None,
        *,
        start: bool = True,
    ) -> None:
        self.processes = processes or {}
        self.backends = backends
        if start:
            self.start()

    def _sample(self) -> dict[str, dict[int, float]]:
        sample = {
            name: {p: process_cpu(p) for p in (pid, *child_pids(pid))}
            for name, pid in self.processes.items()
        }
        sample["postgres"] = {p: process_cpu(p) for p in (self.backends() if self.backends else ())}
        return sample

    def start(self) -> None:
        self.first = self._sample()
        self.machine0 = machine_cpu()
        self.own0 = time.process_time()
        self.wall0 = time.perf_counter()
        self.load0 = os.getloadavg()[0]

    def stop(self) -> None:
        self.wall1 = time.perf_counter()
        self.own1 = time.process_time()
        self.machine1 = machine_cpu()
        self.last = self._sample()
        self.load1 = os.getloadavg()[0]

    def result(self, requests: int = 0, client_cpu: float = 0.0) -> dict:
        if not hasattr(self, "last"):
            self.stop()
        used = {
            name: sum(v - self.first[name].get(pid, 0.0) for pid, v in pids.items())
            for name, pids in self.last.items()
        }
        own = self.own1 - self.own0
        busy = self.machine1[0] - self.machine0[0]
        capacity = self.machine1[1] - self.machine0[1]
        other = max(0.0, busy - sum(used.values()) - own - client_cpu)
        server = sum(used.values())
        return {
            "wall_s": round(self.wall1 - self.wall0, 3),
            "python_cpu_s": round(own, 3),
            **{f"{name}_cpu_s": round(seconds, 3) for name, seconds in used.items()},
            "client_cpu_s": round(client_cpu, 3),
            "other_cpu_s": round(other, 3),
            "machine_busy_share": round(busy / capacity, 3) if capacity else math.nan,
            "other_share": round(other / capacity, 3) if capacity else math.nan,
            "server_cpu_ms_per_request": round(1000 * server / requests, 2)
            if requests
            else math.nan,
            "loadavg_1min_at_start": round(self.load0, 2),
            "loadavg_1min_at_end": round(self.load1, 2),
        }


def cpu_calibration(repeats: int = 5) -> float:
    """CPU ms of a fixed pure-Python loop, best of ``repeats``: how fast this machine
    runs Python right now. Set a run's figures against it before comparing runs."""
    best = math.inf
    for _ in range(repeats):
        started = time.process_time()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.process_time() - started)
    return round(best * 1000, 1)


def wait_for_quiet(max_wait: float, threshold: float = 0.15) -> float:
    """Wait (at most ``max_wait`` s) for a second in which the machine is less than
    ``threshold`` busy; returns the busy share of the last second."""
    deadline = time.time() + max_wait
    while True:
        busy0, total0 = machine_cpu()
        time.sleep(1.0)
        busy1, total1 = machine_cpu()
        share = (busy1 - busy0) / max(total1 - total0, 1e-9)
        if share < threshold or time.time() >= deadline:
            return share


def busy_share(since: tuple[float, float]) -> float:
    """The machine's busy share (all processes, all cores) since ``machine_cpu()``."""
    busy, total = machine_cpu()
    return round((busy - since[0]) / max(total - since[1], 1e-9), 2)


def git_state() -> dict:
    """The code measured: HEAD and the app files that differ from it."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    return {
        "head": git("rev-parse", "--short", "HEAD"),
        "subject": git("log", "-1", "--format=%s"),
        "uncommitted_app_changes": git(
            "status", "--porcelain", "--", "metrics", "boards", "vsm", "pdca", "templates"
        ).splitlines(),
    }


def machine(database=None) -> dict:
    """What the figures were measured on: CPU, memory, versions, PostgreSQL settings,
    load, the speed check and the code."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0
    import django
    import gunicorn

    return {
        "os": platform.platform(),
        "kernel": platform.release(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "django": django.get_version(),
        "gunicorn": gunicorn.__version__,
        **(database.server() if database is not None else {}),
        "loadavg_at_start": os.getloadavg(),
        "calibration_ms_start": cpu_calibration(),
        "git": git_state(),
    }
