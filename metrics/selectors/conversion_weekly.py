"""The dashboard's "Conversion per week": the weekly conversion of each step that a
running or checked experiment targets, measured as the experiments measure it
(``metrics.experiments.measure_conversion``), with their windows and targets."""

from __future__ import annotations

from datetime import timedelta

from boards.models import Column
from metrics import charts
from metrics.experiments import MEASURES, Period, Scope
from metrics.selectors.experiments import MARKED_STAGES, experiment_window
from metrics.selectors.query import MetricsQuery, week_start
from metrics.selectors.readmodel import StreamMetricsDocument
from pdca.models import Experiment, TargetedMetric
from pdca.selectors import ExperimentQuery, next_step_name

# The weekly conversion chart draws at most this many steps (each is measured on its
# own: a bounded number of queries per step), over at most this many full weeks.
CONVERSION_LINES_MAX = 6
CONVERSION_WEEKS_MAX = 26


def conversion_experiments(query: MetricsQuery) -> list[Experiment]:
    """The experiments of ``query.stream`` that target a conversion step and ran
    (MARKED_STAGES: running, checked or decided; started), of ``query.cycle_id``'s
    cycle with a cycle filter, newest window first; each with its cycle and column. One
    query."""
    return list(
        ExperimentQuery(stream=query.stream, cycle_id=query.cycle_id, stages=MARKED_STAGES)
        .experiments()
        .filter(targeted_metric=TargetedMetric.CONVERSION, started_at__isnull=False)
        .order_by("-window_start", "-id")
    )


def conversion_weekly(query: MetricsQuery, document: StreamMetricsDocument) -> charts.Chart:
    """The "Conversion per week" chart: for each step that a running, checked or
    decided experiment targets (``conversion_experiments``; at most
    CONVERSION_LINES_MAX, the steps of the newest experiments), its conversion in % per
    full week, measured by ``metrics.experiments.MEASURES[CONVERSION]`` over the weeks
    from the earliest of their baselines' first days to the last full week before
    ``query.today`` (at most CONVERSION_WEEKS_MAX weeks, the latest); their windows as
    bands, their targets as reference lines. Queries: one, plus the measure's per step
    drawn (none when no experiment targets a conversion step, or no full week is left
    to draw)."""
    experiments = conversion_experiments(query)
    by_step: dict[Column, list[Experiment]] = {}
    for experiment in experiments:  # newest first: the cap keeps the newest steps
        if experiment.column is not None:
            by_step.setdefault(experiment.column, []).append(experiment)
    # Lines in flow order: cycle by cycle, column by column.
    kept = sorted(
        list(by_step.items())[:CONVERSION_LINES_MAX],
        key=lambda step: (step[1][0].cycle.order, step[0].order),
    )
    drawn = [experiment for _, step in kept for experiment in step]
    last_day = week_start(query.today) - timedelta(days=1)
    first_day = week_start(query.today) - timedelta(weeks=CONVERSION_WEEKS_MAX)
    if drawn:
        first_day = max(first_day, min(e.baseline_first_day for e in drawn))
    period = Period(first_day, last_day)
    weeks = [first_day + timedelta(weeks=n) for n in range(period.full_weeks)] if drawn else []
    lines = []
    for column, step in kept if weeks else []:
        scope = Scope(stream=query.stream, cycle_id=column.cycle_id, column_id=column.pk)
        measured = MEASURES[TargetedMetric.CONVERSION](scope, period)
        # One value per full week of the period; held to the chart's weeks all the same.
        weekly = list(measured.weekly[: len(weeks)])
        lines.append(
            charts.ConversionLine(
                step=_step_name(document, step[0]),
                weekly=weekly + [None] * (len(weeks) - len(weekly)),
                cards=measured.cards,
                targets=[float(experiment.target) for experiment in step],
            )
        )
    return charts.conversion_weekly_chart(
        weeks=weeks,
        lines=lines,
        windows=[experiment_window(e) for e in sorted(drawn, key=lambda e: (e.window_start, e.pk))],
        experiments=len(experiments),
        left_out=len(by_step) - len(kept),
        all_channels=query.channel_key is not None,
    )


def _step_name(document: StreamMetricsDocument, experiment: Experiment) -> str:
    """The step in words, "Information → Knowledge, Sales/Buying", as the experiments
    page names it (``pdca.selectors.next_step_name``), from the document's columns (no
    query)."""
    columns = [(c.id, c.name) for c in document.columns if c.cycle_id == experiment.cycle_id]
    if experiment.column_id in {pk for pk, _ in columns}:
        onward = next_step_name(columns, experiment.column_id)
    else:  # a column added since a stored document
        onward = "the next step"
    name = experiment.column.name if experiment.column is not None else ""
    return f"{name} → {onward}, {experiment.cycle.name}"
