"""The tables the fold writes and the bulk statements it writes them with."""

from __future__ import annotations

from django.db import connection

from metrics.models import (
    CardFlowState,
    CardReach,
    ChannelDay,
    ColumnDay,
    ColumnReachCount,
    CycleConversionCount,
    CycleDay,
    FlowDuration,
)

# Every table the fold writes for a stream, dropped by a rebuild.
AGGREGATES = (
    CardFlowState,
    ColumnDay,
    CycleDay,
    ChannelDay,
    CardReach,
    FlowDuration,
    ColumnReachCount,
    CycleConversionCount,
)


def insert_rows(model, fields: tuple[str, ...], rows: list[tuple], *, copy: bool) -> None:
    """Insert rows (tuples in ``fields`` order): COPY on PostgreSQL when ``copy``,
    else bulk_create (so SQLite stores values exactly as the ORM does)."""
    if not rows:
        return
    if copy:
        columns = ", ".join(model._meta.get_field(name).column for name in fields)
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {model._meta.db_table} ({columns}) FROM STDIN") as stream,
        ):
            for row in rows:
                stream.write_row(row)
        return
    model.objects.bulk_create(
        [model(**dict(zip(fields, row, strict=True))) for row in rows], batch_size=1000
    )


def upsert_add(model, key_fields, value_fields, constants, rows) -> None:
    """Add counters into buckets: INSERT ... ON CONFLICT DO UPDATE SET c = c + new.

    Both PostgreSQL and SQLite speak this; Django's bulk_create can only overwrite.
    """
    if not rows:
        return
    table = model._meta.db_table
    columns = [*constants, *key_fields, *value_fields]
    quote = connection.ops.quote_name
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    updates = ", ".join(
        f"{quote(name)} = {table}.{quote(name)} + excluded.{quote(name)}" for name in value_fields
    )
    sql_head = f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) VALUES "
    sql_tail = f" ON CONFLICT ({', '.join(quote(c) for c in key_fields)}) DO UPDATE SET {updates}"
    items = list(rows.items())
    with connection.cursor() as cursor:
        for start in range(0, len(items), 500):
            chunk = items[start : start + 500]
            params: list = []
            for key, values in chunk:
                params.extend([*constants.values(), *key, *values])
            cursor.execute(sql_head + ", ".join([placeholders] * len(chunk)) + sql_tail, params)
