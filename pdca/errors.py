"""Refusals about cycles, control points and experiments."""

from __future__ import annotations

from vsm.errors import NotFound


class CycleNotFound(NotFound):
    code = "cycle_not_found"
    default_message = "No such cycle in this value stream."


class ControlPointNotFound(NotFound):
    code = "control_point_not_found"
    default_message = "No such control point in this value stream."
