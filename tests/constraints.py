"""Assert that a write is refused by one named database constraint."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import IntegrityError, connection, models, transaction


@contextmanager
def violates(model: type[models.Model], name: str) -> Iterator[None]:
    """Expect the block to raise IntegrityError from the constraint ``name`` of ``model``.

    The block runs in a savepoint, so the test's transaction stays usable. PostgreSQL
    and SQLite name a violated check constraint; SQLite names a violated unique index
    by its columns instead.
    """
    constraints = {constraint.name: constraint for constraint in model._meta.constraints}
    assert name in constraints, f"{model.__name__} has no constraint named {name}"
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        yield
    constraint = constraints[name]
    if connection.vendor == "sqlite" and isinstance(constraint, models.UniqueConstraint):
        table = model._meta.db_table
        columns = [model._meta.get_field(field).column for field in constraint.fields]
        expected = "UNIQUE constraint failed: " + ", ".join(f"{table}.{c}" for c in columns)
    else:
        expected = name
    assert expected in str(caught.value)
