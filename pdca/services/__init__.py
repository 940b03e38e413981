"""Writes of a stream's PDCA loops: cycles, the control points between them, their criteria.

Conventions as in ``vsm.services``: steered (only those who steer the stream), the
stream row locked first, an audit row in the same transaction, "stream changed"
(settings) after commit. Every team and cycle named belongs to the row's own stream.
Columns live in ``boards``: a cycle's columns are added there.
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

__all__ = [
    "ORDER_MAX",
    "CriterionNotFound",
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
    "order_check",
]
