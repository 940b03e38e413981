"""The demo data with its experiments measured: boards.demo's history, whose
experiments are started and checked by the metrics on their days in it."""

from __future__ import annotations

from boards import demo
from metrics.experiments import experiment_baseline_start, experiment_check

MEASURING = demo.DemoMeasuring(start=experiment_baseline_start, check=experiment_check)


def seed_demo(*, random_passwords: bool = False) -> demo.SeedReport:
    """``boards.demo.seed_demo`` with the experiments measured (see there)."""
    return demo.seed_demo(measuring=MEASURING, random_passwords=random_passwords)
