"""The tables the fold writes and the bulk statements it writes them with."""

from __future__ import annotations

from django.db import connection
from django.db.models import UniqueConstraint

from metrics.models import (
    CardCycle,
    CardFlowState,
    ChannelDay,
    ColumnDay,
    ColumnFlowState,
    CycleDay,
    FlowDuration,
)
from vsm.timing import timed

# Every table the fold writes for a stream, dropped by a rebuild.
AGGREGATES = (
    CardFlowState,
    CardCycle,
    ColumnDay,
    ColumnFlowState,
    CycleDay,
    ChannelDay,
    FlowDuration,
)


def insert_rows(model, fields: tuple[str, ...], rows: list[tuple], *, copy: bool) -> None:
    """Insert rows (tuples in ``fields`` order): COPY on PostgreSQL when ``copy``,
    else bulk_create (so SQLite stores values exactly as the ORM does)."""
    if not rows:
        return
    if copy:
        columns = ", ".join(model._meta.get_field(name).column for name in fields)
        with (
            timed("metrics.fold.copy", items=len(rows)),
            connection.cursor() as cursor,
            cursor.copy(f"COPY {model._meta.db_table} ({columns}) FROM STDIN") as stream,
        ):
            for row in rows:
                stream.write_row(row)
        return
    model.objects.bulk_create(
        [model(**dict(zip(fields, row, strict=True))) for row in rows], batch_size=1000
    )


def upsert_add(
    model, fields: tuple[str, ...], value_fields: tuple[str, ...], rows: list[tuple]
) -> None:
    """Add counters into buckets: INSERT ... ON CONFLICT DO UPDATE SET c = c + new.

    ``rows`` are tuples in ``fields`` order; a bucket is the model's unique constraint.
    Both PostgreSQL and SQLite speak this; Django's bulk_create can only overwrite.
    """
    if not rows:
        return
    table = model._meta.db_table
    quote = connection.ops.quote_name
    columns = [quote(model._meta.get_field(name).column) for name in fields]
    (bucket,) = [c for c in model._meta.constraints if isinstance(c, UniqueConstraint)]
    conflict = [quote(model._meta.get_field(name).column) for name in bucket.fields]
    updates = ", ".join(
        f"{column} = {table}.{column} + excluded.{column}"
        for column in (quote(model._meta.get_field(name).column) for name in value_fields)
    )
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    sql_head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    sql_tail = f" ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {updates}"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            params = [value for row in chunk for value in row]
            cursor.execute(sql_head + ", ".join([placeholders] * len(chunk)) + sql_tail, params)
