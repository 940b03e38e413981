"""The constraint detector against streams with one planted constraint.

``tests.metrics.planted`` simulates pull boards (3 cycles x 4 columns) in which one
column, the planted constraint, works at 84-99 % utilisation and every other column at
30-60 %; in half of them the constraint has a WIP limit of about its worker count, in
the other half none. Each stream is loaded as a real move log, folded by
``stream_metrics_rebuild`` and summarised by ``stream_metrics_compute`` at
``planted.NOW``; the document's ``constraint.column_id`` must be the planted column in
at least 95 % of the streams, and 90 % of each half.

    DATABASE_URL=postgres://... .venv/bin/pytest tests/metrics/test_constraint_detector.py -s

prints the figures (overall, per half, each miss with the detector's top 3) and the
time taken. ``bench/constraint_report.py`` prints the simulation's own per-column
statistics of every planted stream, for tuning.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from metrics.selectors import MetricsQuery, stream_metrics_compute
from metrics.selectors.readmodel import ConstraintCandidate
from metrics.services import stream_metrics_rebuild
from tests.metrics import planted

OVERALL_ACCURACY = 0.95
HALF_ACCURACY = 0.90


@pytest.fixture(scope="module")
def simulations() -> tuple[planted.Simulation, ...]:
    return planted.planted_simulations()


@dataclass(frozen=True)
class Verdict:
    simulation: planted.Simulation
    named: int | None  # position 0..11 of the named column; None: none, or not a column
    ranking: list[ConstraintCandidate]

    @property
    def correct(self) -> bool:
        return self.named == self.simulation.constraint


def _share(verdicts: Sequence[Verdict]) -> tuple[int, int, float]:
    right = sum(verdict.correct for verdict in verdicts)
    return right, len(verdicts), right / len(verdicts) if verdicts else 0.0


def _report(verdicts: list[Verdict], timings: dict[str, float]) -> str:
    limited = [v for v in verdicts if v.simulation.plan.constraint_limited]
    unlimited = [v for v in verdicts if not v.simulation.plan.constraint_limited]
    cards = sum(len(v.simulation.cards) for v in verdicts)
    events = sum(len(v.simulation.events) for v in verdicts)
    lines = [
        f"Constraint detector on {len(verdicts)} planted streams ({cards} cards, "
        f"{events} events); "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()),
    ]
    for label, group in (
        ("overall", verdicts),
        ("with a WIP limit on the constraint", limited),
        ("without", unlimited),
    ):
        right, total, share = _share(group)
        lines.append(f"  {label}: {right}/{total} = {share:.1%}")
    misses = [verdict for verdict in verdicts if not verdict.correct]
    if misses:
        lines.append("  Misses (planted -> named; the detector's top 3):")
    for verdict in misses:
        simulation = verdict.simulation
        named = planted.POSITION_NAMES[verdict.named] if verdict.named is not None else None
        top = "; ".join(f"{entry.name} {entry.score}" for entry in verdict.ranking[:3])
        lines.append(
            f"    {simulation.plan.label} -> {named}   [{top}]   (utilisation "
            f"{simulation.columns[simulation.constraint].utilisation:.2f}, blocked before it "
            f"{simulation.upstream_blocked_share:.0%})"
        )
    return "\n".join(lines)


def test_the_planted_column_is_the_bottleneck_by_the_simulations_own_numbers(simulations):
    """The ground truth holds: the planted column is the busiest column, by a margin,
    and where it has a WIP limit it sits at it while the work before it waits."""
    assert len(simulations) >= 60
    for simulation in simulations:
        constraint = simulation.columns[simulation.constraint]
        others = [c.utilisation for c in simulation.columns if c.position != constraint.position]
        assert simulation.busiest == simulation.constraint, simulation.plan.label
        assert constraint.utilisation - max(others) >= 0.1, planted.format_stats(simulation)
    limited = [s for s in simulations if s.plan.constraint_limited]
    at_limit = sorted(s.columns[s.constraint].at_limit_share or 0.0 for s in limited)
    blocked = sorted(s.upstream_blocked_share for s in limited)
    assert at_limit[len(at_limit) // 2] >= 0.7
    assert blocked[len(blocked) // 2] >= 0.5
    assert at_limit[0] >= 0.3


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_detector_names_the_planted_constraint(simulations, manager):
    timings = {"load": 0.0, "rebuild": 0.0, "document": 0.0}
    verdicts = []
    for index, simulation in enumerate(simulations, start=1):
        start = time.perf_counter()
        stream, column_ids = planted.create_planted_stream(
            simulation, manager=manager, name=f"Planted {index}"
        )
        loaded = time.perf_counter()
        stream_metrics_rebuild(stream_id=stream.pk)
        rebuilt = time.perf_counter()
        document = stream_metrics_compute(MetricsQuery(stream=stream, now=planted.NOW))
        timings["load"] += loaded - start
        timings["rebuild"] += rebuilt - loaded
        timings["document"] += time.perf_counter() - rebuilt
        position = {column_id: j for j, column_id in enumerate(column_ids)}
        verdicts.append(
            Verdict(
                simulation=simulation,
                named=position.get(document.constraint.column_id),
                ranking=document.constraint.ranking,
            )
        )
    report = _report(verdicts, timings)
    print("\n" + report)

    limited = [v for v in verdicts if v.simulation.plan.constraint_limited]
    unlimited = [v for v in verdicts if not v.simulation.plan.constraint_limited]
    summary = report.split("\n  Misses")[0]
    assert _share(verdicts)[2] >= OVERALL_ACCURACY, summary
    assert _share(limited)[2] >= HALF_ACCURACY, summary
    assert _share(unlimited)[2] >= HALF_ACCURACY, summary
