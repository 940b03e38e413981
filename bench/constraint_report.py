#!/usr/bin/env python
"""The planted-constraint streams, by the simulation's own numbers (no database).

    .venv/bin/python bench/constraint_report.py [--seeds-per-case 3] [--detail SEED ...]

For tuning the constraint detector against ``tests.metrics.planted``: one line per
planted stream (its size, the planted column's measured utilisation against the busiest
other column, the share of the metrics window it sat at its WIP limit, the share in
which work waited to enter it, its mean WIP and queue), then the per-column table of the
streams named by ``--detail`` (default: three examples). The detector's own verdicts
come from ``pytest tests/metrics/test_constraint_detector.py -s``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds-per-case", type=int, default=3)
    parser.add_argument("--detail", type=int, nargs="*", default=[1101, 1000, 2106])
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vsm.settings")
    import django

    django.setup()
    from tests.metrics import planted

    simulations = planted.planted_simulations(args.seeds_per_case)
    print(
        f"{'stream':52} {'cards':>5} {'events':>6} {'util':>5} {'next':>5} {'@limit':>6} "
        f"{'waits':>5} {'WIP':>5} {'queue':>5}"
    )
    for simulation in simulations:
        planted_column = simulation.columns[simulation.constraint]
        next_best = max(
            stats.utilisation
            for stats in simulation.columns
            if stats.position != simulation.constraint
        )
        at_limit = planted_column.at_limit_share
        print(
            f"{simulation.plan.label:52} {len(simulation.cards):>5} {len(simulation.events):>6} "
            f"{planted_column.utilisation:>5.2f} {next_best:>5.2f} "
            f"{'-' if at_limit is None else f'{at_limit:.2f}':>6} "
            f"{simulation.upstream_blocked_share:>5.2f} {planted_column.mean_wip:>5.1f} "
            f"{planted_column.mean_queue:>5.1f}"
            + ("" if simulation.busiest == simulation.constraint else "   NOT THE BUSIEST")
        )
    print(
        f"\n{len(simulations)} streams, {sum(len(s.cards) for s in simulations)} cards, "
        f"{sum(len(s.events) for s in simulations)} events\n"
    )
    by_seed = {simulation.plan.seed: simulation for simulation in simulations}
    for seed in args.detail:
        if seed in by_seed:
            print(planted.format_stats(by_seed[seed]) + "\n")


if __name__ == "__main__":
    main()
