"""The floor of a move: what a drag cannot cost less than, measured beside it.

A drag is a web request and a transaction. Its floor is the sum of two parts, each
measured on the same server, in the same run, as the moves they are set against:

- ``RawMoves``: the transaction alone. psycopg (the driver Django uses, with Django's
  default client-side binding) sends what ``boards.services.card_move`` must send for
  a drag and nothing else: the move's time bounds (``SET LOCAL``, as
  ``vsm.transactions.locking_transaction``), both columns locked ``FOR NO KEY UPDATE``
  in ascending pk, the card locked, the target's open cards counted (with the last
  position, for the card's new place), the card updated (column, position, times,
  version: its change stamp trigger fires), the ``CardMove`` and the audit row inserted
  with Django's own INSERT statements (compiled from the models), COMMIT.
- the empty POST (``benchconf.views.empty_post``): the request alone, through the
  whole middleware stack (session, CSRF, login required, htmx, the domain error
  middleware), logged in, with a drag's form and headers.

``statement_classes`` names the statements of either, by verb and table
(``harness.sql.QueryTimer.classify``), to set beside those of a real drag.
"""

from __future__ import annotations

import random
import time

from harness.sql import QueryTimer

LOCK_COLUMNS = (
    'SELECT "id" FROM "boards_column" WHERE "id" IN (%s, %s) ORDER BY "id" FOR NO KEY UPDATE'
)
LOCK_CARD = (
    'SELECT "column_id", "version", "channel_id", "estimated_value" FROM "boards_card" '
    'WHERE "id" = %s FOR NO KEY UPDATE'
)
COUNT_TARGET = (
    'SELECT COUNT(*), MAX("position") FROM "boards_card" WHERE "column_id" = %s AND "outcome" = %s'
)
UPDATE_CARD = (
    'UPDATE "boards_card" SET "column_id" = %s, "position" = %s, "updated_at" = %s, '
    '"column_entered_at" = %s, "version" = "version" + 1 WHERE "id" = %s'
)


def insert_statement(obj) -> tuple[str, list]:
    """Django's INSERT of one new model instance, with its parameters (``RETURNING``
    the primary key), as ``Model.save()`` would send it."""
    from django.db.models.sql import InsertQuery

    meta = obj._meta
    fields = [field for field in meta.local_concrete_fields if field is not meta.auto_field]
    query = InsertQuery(type(obj))
    query.insert_values(fields, [obj], raw=False)
    compiler = query.get_compiler(using="default")
    compiler.returning_fields = [meta.pk]
    ((sql, params),) = compiler.as_sql()
    return sql, list(params)


def statement_classes(statements: list[str]) -> list[str]:
    return [QueryTimer.classify(sql) for sql in statements]


class RawMoves:
    """Drags done as one raw transaction each, on the stream's open cards.

    Each moves a card of a column without a small WIP limit to another such column of
    its cycle, at the end of it; cards and columns are read from the database at
    ``load()`` (the HTTP clients re-read theirs before each block, so they never act
    on a card moved here). ``url``: the database the app uses (through a pooler too).
    """

    def __init__(self, url: str, stream: dict, actor_user_id: int, seed: int) -> None:
        import psycopg

        self.connection = psycopg.connect(url, autocommit=True, cursor_factory=psycopg.ClientCursor)
        self.stream = stream
        self.actor_user_id = actor_user_id
        self.rng = random.Random(seed)
        self.statements: list[str] = []
        self.cycle_columns: dict[int, list[int]] = {}
        for column_id, cycle_id in stream["columns"]:
            if column_id != stream["small_wip_column"]:
                self.cycle_columns.setdefault(cycle_id, []).append(column_id)
        self.cycle_of = dict(stream["columns"])
        self.cards: dict[int, list[int]] = {}

    def load(self) -> None:
        rows = self.connection.execute(
            'SELECT "id", "column_id" FROM "boards_card" '
            'WHERE "value_stream_id" = %s AND "outcome" = %s',
            [self.stream["id"], "open"],
        ).fetchall()
        self.cards = {column: [] for columns in self.cycle_columns.values() for column in columns}
        for card_id, column_id in rows:
            if column_id in self.cards:
                self.cards[column_id].append(card_id)

    def backend_pid(self) -> int:
        return self.connection.info.backend_pid

    def one(self) -> float:
        """One drag's transaction; its seconds, from BEGIN to COMMIT's answer, less the
        time the bench spends compiling the audit INSERT (it needs the move's id)."""
        from django.utils import timezone

        from boards.models import CardMove, MoveKind, Outcome
        from boards.services.moves import MOVE_LOCK_TIMEOUT_SECONDS
        from boards.services.placement import AUDIT_ACTIONS
        from boards.services.positions import POSITION_GAP
        from vsm.models import ActorKind, AuditEntry
        from vsm.transactions import _limits

        source = self.rng.choice([c for c, ids in self.cards.items() if ids])
        card_id = self.rng.choice(self.cards[source])
        target = self.rng.choice(
            [c for c in self.cycle_columns[self.cycle_of[source]] if c != source]
        )
        limits = _limits(
            lock_timeout=MOVE_LOCK_TIMEOUT_SECONDS, statement_timeout=MOVE_LOCK_TIMEOUT_SECONDS
        )
        actor = {
            "actor_kind": ActorKind.USER,
            "actor_id": self.actor_user_id,
            "actor_token_id": None,
            "actor_system": "",
        }
        record = not self.statements
        compiling = 0.0
        started = time.perf_counter()
        with self.connection.transaction(), self.connection.cursor() as cursor:

            def execute(sql: str, params=None):
                if record:
                    self.statements.append(sql)
                return cursor.execute(sql, params)

            execute(limits)
            execute(LOCK_COLUMNS, sorted((source, target)))
            column_id, _version, channel_id, value = execute(LOCK_CARD, [card_id]).fetchone()
            if column_id != source:
                raise RuntimeError(f"card {card_id} is in {column_id}, not {source}")
            _count, last = execute(COUNT_TARGET, [target, Outcome.OPEN.value]).fetchone()
            at = timezone.now()
            position = (last or 0) + POSITION_GAP
            execute(UPDATE_CARD, [target, position, at, at, card_id])
            compile_started = time.perf_counter()
            move = CardMove(
                value_stream_id=self.stream["id"],
                card_id=card_id,
                from_column_id=source,
                to_column_id=target,
                moved_at=at,
                kind=MoveKind.MOVE,
                channel_id=channel_id,
                estimated_value=value,
                **actor,
            )
            sql, params = insert_statement(move)
            compiling += time.perf_counter() - compile_started
            (move_id,) = execute(sql, params).fetchone()
            compile_started = time.perf_counter()
            audit = AuditEntry(
                **actor,
                at=at,
                action=AUDIT_ACTIONS[MoveKind.MOVE],
                stream_id=self.stream["id"],
                target_type="card",
                target_id=card_id,
                data={
                    "from_column_id": source,
                    "to_column_id": target,
                    "move_id": move_id,
                    "wip_overridden": False,
                },
            )
            sql, params = insert_statement(audit)
            compiling += time.perf_counter() - compile_started
            execute(sql, params)
        elapsed = time.perf_counter() - started - compiling
        if record:
            self.statements = ["BEGIN", *self.statements, "COMMIT"]
        self.cards[source].remove(card_id)
        self.cards[target].append(card_id)
        return elapsed

    def close(self) -> None:
        self.connection.close()
