"""The exports' own input; the filters are the board's (boards.forms.board_filters)
and the dashboard's (metrics.forms.filters.DashboardFilterForm)."""

from __future__ import annotations

from django.http import QueryDict

from vsm.errors import InvalidInput

_YES = frozenset({"1", "true", "on", "yes"})
_NO = frozenset({"", "0", "false", "off", "no"})


def include_closed(params: QueryDict) -> bool:
    """Whether a cards export asks for won and lost cards too (``closed=1``), not only
    the open ones the board shows.

    Raises: InvalidInput (field "closed") for a value that is neither yes nor no.
    """
    value = params.get("closed", "").strip().lower()
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise InvalidInput("Say closed=1 to include won and lost cards, or closed=0.", field="closed")
