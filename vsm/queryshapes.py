"""Querysets compiled to SQL once per process, then run with each call's values.

Django builds and compiles a queryset's SQL on every evaluation. For a query with
subqueries that is a few milliseconds of Python, more than the database takes to
answer it; the access rule (``vsm.access``) pays it on every request: each board poll,
every drag. A ``QueryShape`` compiles its queryset once, with stand-in values for the
parts that change from call to call (a user id, a slug), and then only binds the
call's values into the SQL's parameters: the statement the database receives is the
one the ORM would have sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model, QuerySet

# Stand-ins no real value takes: ids are positive, slugs are [-a-zA-Z0-9_].
_INT_STAND_IN_BASE = -7_318_000_000
_STR_STAND_IN = "\x1fvsm-slot:{name}\x1f"


class QueryShape[M: Model]:
    """A queryset whose SQL is compiled once per process and database vendor.

    ``build(**slots)`` returns the queryset for the slot values it is given; it is
    called once with stand-ins, and every parameter of the compiled SQL equal to a
    stand-in is replaced by the call's value at each ``fetch``. So ``build`` must pass
    each slot to the ORM as a plain lookup value (an ``=`` or ``IN`` operand), never
    transformed (no ``icontains``, no arithmetic); a slot that does not reach the
    parameters unchanged makes the first ``fetch`` raise ``ImproperlyConfigured``.
    ``slots``: each slot's name and type (``int`` or ``str``).

    Rows come back as model instances (``QuerySet.raw``): the model's fields go through
    the database's converters as usual; annotations come as the driver returns them
    (a boolean is 0/1 on SQLite).
    """

    def __init__(
        self, build: Callable[..., QuerySet[M]], *, slots: dict[str, type], using: str = ""
    ) -> None:
        self._build = build
        self._slots = dict(slots)
        self._using = using or DEFAULT_DB_ALIAS
        self._compiled: dict[str, tuple[QuerySet[M], str, list[tuple[str | None, object]]]] = {}
        self._lock = threading.Lock()

    def _stand_ins(self) -> dict[str, object]:
        stand_ins: dict[str, object] = {}
        for index, (name, kind) in enumerate(self._slots.items()):
            if kind is int:
                stand_ins[name] = _INT_STAND_IN_BASE - index
            elif kind is str:
                stand_ins[name] = _STR_STAND_IN.format(name=name)
            else:
                raise TypeError(f"A slot is an int or a str, not {kind!r} ({name}).")
        return stand_ins

    def _compile(self, vendor: str) -> tuple[QuerySet[M], str, list[tuple[str | None, object]]]:
        from django.core.exceptions import ImproperlyConfigured

        compiled = self._compiled.get(vendor)
        if compiled is not None:
            return compiled
        with self._lock:
            compiled = self._compiled.get(vendor)
            if compiled is not None:
                return compiled
            stand_ins = self._stand_ins()
            by_value = {value: name for name, value in stand_ins.items()}
            queryset = self._build(**stand_ins)
            sql, params = queryset.query.sql_with_params()
            # Each parameter: the slot it takes its value from, or its own constant.
            bindings: list[tuple[str | None, object]] = [
                (by_value.get(param) if isinstance(param, int | str) else None, param)
                for param in params
            ]
            missing = set(stand_ins) - {slot for slot, _ in bindings if slot is not None}
            if missing:
                raise ImproperlyConfigured(
                    f"Slots {sorted(missing)} do not reach the SQL's parameters unchanged."
                )
            compiled = self._compiled[vendor] = (queryset, sql, bindings)
            return compiled

    def fetch(self, **values: object) -> list[M]:
        """The rows for these slot values (every slot named). Raises: TypeError (a slot
        missing or unknown, or a value of another type)."""
        if set(values) != set(self._slots):
            raise TypeError(f"Give exactly the slots {sorted(self._slots)}.")
        for name, value in values.items():
            kind = self._slots[name]
            if not isinstance(value, kind) or isinstance(value, bool):
                raise TypeError(f"Slot {name} takes a {kind.__name__}, not {value!r}.")
        queryset, sql, bindings = self._compile(connections[self._using].vendor)
        params = [values[slot] if slot is not None else constant for slot, constant in bindings]
        return list(queryset.model._default_manager.db_manager(self._using).raw(sql, params))

    def first(self, **values: object) -> M | None:
        """The first row for these slot values, or None (the queryset orders and limits
        itself)."""
        rows = self.fetch(**values)
        return rows[0] if rows else None
