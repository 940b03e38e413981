"""Refusals about cycles, control points and experiments."""

from __future__ import annotations

from vsm.errors import Conflict, InvalidInput, NotFound


class CycleNotFound(NotFound):
    code = "cycle_not_found"
    default_message = "No such cycle in this value stream."


class ControlPointNotFound(NotFound):
    code = "control_point_not_found"
    default_message = "No such control point in this value stream."


class ExperimentNotFound(NotFound):
    code = "experiment_not_found"
    default_message = "No such experiment."


class ExperimentStarted(Conflict):
    """The plan (metric, scope, window, target) is fixed once the experiment starts: its
    baseline was measured for it."""

    code = "experiment_started"
    default_message = "This experiment has started: its plan, target and baseline stay as they are."


class ExperimentNotRunning(Conflict):
    """Only a started experiment that has not stopped yet can be stopped."""

    code = "experiment_not_running"
    default_message = "This experiment is not running."


class CheckNotReady(Conflict):
    """A Check measures a Do that is over: stopped, or its window past."""

    code = "check_not_ready"
    default_message = "The Check is taken once the experiment has stopped or its window is over."


class ExperimentNotChecked(Conflict):
    """Act on the measured result: the Check comes first. Only an abandon needs none (a
    plan withdrawn before it starts, an experiment in its Do with nothing to measure, or
    one given up while it runs)."""

    code = "experiment_not_checked"
    default_message = "Act on an experiment once its Check is recorded."


class ExperimentDecided(Conflict):
    """The Act is the experiment's last step: its decision stays (adapt starts a new one)."""

    code = "experiment_decided"
    default_message = "This experiment is decided already."


class TooLittleData(Conflict):
    """The baseline or the Check rests on too few cards or weeks to mean anything."""

    code = "too_little_data"
    default_message = "Too little data to measure this yet."


class WindowNotOpen(Conflict):
    """An experiment starts in its window's first week, not before: the baseline is
    measured over the full weeks before the window, which are not over yet."""

    code = "window_not_open"
    default_message = "The experiment's window has not begun yet."


class WindowPassed(Conflict):
    """An experiment starts in its window's first week at the latest: a later start would
    count the window's first days, before the change, as part of the Do."""

    code = "window_passed"
    default_message = "The first week of the experiment's window is over: plan a later window."


class ScopeInvalid(InvalidInput):
    """The scope does not fit the metric (a column metric without its column) or the
    experiment's cycle (a column of another cycle)."""

    code = "scope_invalid"
    default_message = "That scope does not fit the metric and the cycle."


class TargetIsBaseline(InvalidInput):
    """A target equal to the baseline looks for no change."""

    code = "target_is_baseline"
    default_message = "The target equals the baseline: set a target that is a change."
