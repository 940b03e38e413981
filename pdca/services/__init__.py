"""Writes of a stream's PDCA loops: cycles, the control points between them, their
criteria, and the experiments teams run on them.

Configuration (cycles, control points, criteria), as in ``vsm.services``: steered (only
those who steer the stream), the stream row locked first, an audit row in the same
transaction, "stream changed" (settings) after commit. Every team and cycle named
belongs to the row's own stream. Columns live in ``boards``: a cycle's columns are added
there. Experiments (``experiments``) are run by their team's leaders and coordinators
too, and lock the experiment row; see that module.
"""

from pdca.services.control_points import (
    CriterionNotFound,
    control_point_create,
    control_point_delete,
    control_point_update,
    criterion_create,
    criterion_delete,
    criterion_update,
)
from pdca.services.cycles import (
    ORDER_MAX,
    NotNextCycle,
    cycle_create,
    cycle_delete,
    cycle_update,
    order_check,
)
from pdca.services.experiment_rules import (
    START_WITHIN,
    experiment_runner_check,
    experiment_version_check,
    next_monday,
)
from pdca.services.experiments import (
    ExperimentActed,
    experiment_act,
    experiment_check_record,
    experiment_plan,
    experiment_start,
    experiment_stop,
    experiment_update_plan,
)

__all__ = [
    "ORDER_MAX",
    "START_WITHIN",
    "CriterionNotFound",
    "ExperimentActed",
    "NotNextCycle",
    "control_point_create",
    "control_point_delete",
    "control_point_update",
    "criterion_create",
    "criterion_delete",
    "criterion_update",
    "cycle_create",
    "cycle_delete",
    "cycle_update",
    "experiment_act",
    "experiment_check_record",
    "experiment_plan",
    "experiment_runner_check",
    "experiment_version_check",
    "experiment_start",
    "experiment_stop",
    "experiment_update_plan",
    "next_monday",
    "order_check",
]
