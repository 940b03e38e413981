"""The generated move log the metrics and dashboard scenarios share: one stream with
eight channels and about ``n_moves`` moves over two years, loaded with PostgreSQL COPY.

A setup shortcut, not a measured path: about 8 moves per card; each card enters a
cycle's first column, walks its columns (with some backward moves), passes control
points (handoffs), is won or lost, sometimes reopened; cards whose next event would be in
the future stay open, and about 1% stall for good (aging work). Ids follow ``moved_at``;
``recorded_at`` is ``moved_at`` (the history was recorded as it happened: the fold's
watermark can settle it). Card rows match their log (column, outcome, closed_at,
version, unique positions among open cards). WIP limits are lifted so the measured
moves are never refused; handoff moves get no Handoff row (the fold never reads them).
Every generated row is recorded as done by the system actor "bench".
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from datetime import UTC, datetime

from harness import log

DAY = 86_400.0
HISTORY_DAYS = 730
SEED_ACTOR = "bench"


def seed_actor_columns(model) -> dict[str, object]:
    """The actor columns of ``model`` for a row the bench seeds: the system actor
    "bench" where the model records the actor's kind, else no person."""
    from vsm.actors import SystemActor, actor_fields

    columns = {field.column for field in model._meta.concrete_fields}
    values = actor_fields(SystemActor(SEED_ACTOR)) if "actor_kind" in columns else {}
    return {name: value for name, value in {"actor_id": None, **values}.items() if name in columns}


def generate_history(n_moves: int, cycles: list[list[int]], channels: list[int], seed: int):
    """A valid move log of about n_moves events over HISTORY_DAYS days.

    Returns (cards, events). cards[i] is the card with id i + 1: a dict of its final
    state; events are (t, card_id, seq, kind, from_column, to_column) in time order.
    """
    rng = random.Random(seed)
    now = time.time() - 600  # ten minutes ago: every history move is settled
    span = HISTORY_DAYS * DAY
    channel_weights = [30, 20, 15, 10, 8, 6, 4, 2][: len(channels)]
    channel_choices = [*channels, None]
    weights = [*channel_weights, 5]
    cards: list[dict] = []
    events: list[tuple] = []
    total = 0
    while total < n_moves:
        card_id = len(cards) + 1
        t = now - rng.random() * span
        r = rng.random()
        cycle = 0 if r < 0.85 else (1 if r < 0.97 else 2)
        k = 0
        column = cycles[cycle][0]
        own = [(t, "enter", None, column)]
        created = t
        column_entered = t
        is_open = True
        outcome, closed_at = "open", None
        stall_at = rng.randint(1, 6) if rng.random() < 0.012 else None
        steps = 0
        while True:
            if stall_at is not None and steps >= stall_at and is_open:
                break
            if is_open:
                gap = max(300.0, rng.expovariate(1 / (3.5 * DAY)))
            else:
                gap = max(3600.0, rng.expovariate(1 / (20 * DAY)))
            if t + gap >= now:
                break
            t += gap
            steps += 1
            if not is_open:  # reopen was chosen when it closed
                own.append((t, "reopen", column, column))
                is_open, outcome, closed_at = True, "open", None
                continue
            r = rng.random()
            last = k == len(cycles[cycle]) - 1
            if r < 0.045:
                kind = "lost"
            elif last and cycle == 0:
                kind = "handoff" if r < 0.78 else "lost"
            elif last and cycle == 1:
                kind = "won" if r < 0.6 else ("handoff" if r < 0.88 else "lost")
            elif last:
                kind = "won" if r < 0.85 else "lost"
            elif k > 0 and r < 0.125:
                kind = "back"
            else:
                kind = "forward"
            if kind in ("won", "lost"):
                own.append((t, kind, column, column))
                is_open, outcome, closed_at = False, kind, t
                if rng.random() >= 0.04:
                    break
                continue  # reopened later
            previous = column
            if kind == "handoff":
                cycle, k = cycle + 1, 0
            else:
                k += -1 if kind == "back" else 1
            column = cycles[cycle][k]
            own.append((t, "handoff" if kind == "handoff" else "move", previous, column))
            column_entered = t
        if total + len(own) > n_moves:  # trim the last card to hit n_moves exactly
            own = own[: n_moves - total]
            last_event = own[-1]
            column = last_event[3]
            if last_event[1] in ("won", "lost"):
                is_open, outcome, closed_at = False, last_event[1], last_event[0]
            else:
                is_open, outcome, closed_at = True, "open", None
            column_entered = max(e[0] for e in own if e[1] in ("enter", "move", "handoff"))
        channel = rng.choices(channel_choices, weights)[0]
        value = round(min(rng.lognormvariate(8.3, 1.0), 9_999_999), 2)
        cards.append(
            {
                "channel": channel,
                "value": value,
                "created": created,
                "column": column,
                "outcome": outcome,
                "closed_at": closed_at,
                "column_entered": column_entered,
                "updated": own[-1][0],
                "version": len(own),
            }
        )
        for seq, (when, kind, frm, to) in enumerate(own):
            events.append((when, card_id, seq, kind, frm, to))
        total += len(own)
    events.sort()
    return cards, events


CARD_COLUMNS = (
    "id",
    "value_stream_id",
    "column_id",
    "position",
    "person_name",
    "company",
    "email",
    "channel_id",
    "owning_team_id",
    "owner_id",
    "estimated_value",
    "notes",
    "is_blocked",
    "blocked_reason",
    "blocked_at",
    "outcome",
    "created_at",
    "updated_at",
    "column_entered_at",
    "closed_at",
    "version",
)
MOVE_COLUMNS = (
    "id",
    "value_stream_id",
    "card_id",
    "from_column_id",
    "to_column_id",
    "moved_at",
    "kind",
    "wip_override_reason",
    "channel_id",
    "estimated_value",
    "recorded_at",
)


class Copy:
    """COPY of generated rows into a model's table: the generator's columns that the
    table has today (the schema moves on; a column it dropped is left out, and one it
    added must have a default or COPY says so)."""

    def __init__(self, model, columns: tuple[str, ...]) -> None:
        present = {field.column for field in model._meta.concrete_fields}
        self.keep = [i for i, name in enumerate(columns) if name in present]
        names = ", ".join(columns[i] for i in self.keep)
        self.statement = f"COPY {model._meta.db_table} ({names}) FROM STDIN"
        self.all = len(self.keep) == len(columns)

    def line(self, row: tuple[str, ...]) -> str:
        if self.all:
            return "\t".join(row) + "\n"
        return "\t".join([row[i] for i in self.keep]) + "\n"


def _copy_value(value) -> str:
    return r"\N" if value is None else str(value)


def load_history(stream_id: int, team_id: int, cards: list[dict], events: list[tuple], seed):
    """COPY cards and moves; returns timings."""
    from boards.models import Card, CardMove

    rng = random.Random(seed + 1)
    timings = {}

    def ts(epoch: float) -> str:
        return datetime.fromtimestamp(epoch, UTC).isoformat(sep=" ")

    null = r"\N"
    # Unique positions among open cards, per column, in the order they entered it.
    open_by_column: dict[int, list[int]] = defaultdict(list)
    for index, card in enumerate(cards):
        if card["outcome"] == "open":
            open_by_column[card["column"]].append(index)
    position = [0] * len(cards)
    for indexes in open_by_column.values():
        indexes.sort(key=lambda i: (cards[i]["column_entered"], i))
        for rank, i in enumerate(indexes):
            position[i] = (rank + 1) * 1024
    actor = seed_actor_columns(CardMove)
    card_copy = Copy(Card, CARD_COLUMNS)
    move_copy = Copy(CardMove, (*MOVE_COLUMNS, *actor))
    actor_values = tuple(_copy_value(value) for value in actor.values())

    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    conn = psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=True
    )
    with conn, conn.transaction(), conn.cursor() as cur:
        # Setup shortcut: no per-row foreign-key triggers during COPY (the generator
        # makes every reference valid; they are checked in bulk below).
        cur.execute("SET LOCAL session_replication_role = replica")
        start = time.perf_counter()
        with cur.copy(card_copy.statement) as copy:
            buffer = []
            for index, card in enumerate(cards):
                blocked = card["outcome"] == "open" and rng.random() < 0.02
                row = (
                    str(index + 1),
                    str(stream_id),
                    str(card["column"]),
                    str(position[index]),
                    f"Person {index + 1}",
                    f"Company {index % 9000}",
                    "",
                    str(card["channel"]) if card["channel"] else null,
                    str(team_id),
                    null,
                    f"{card['value']:.2f}",
                    "",
                    "t" if blocked else "f",
                    "Waiting for the customer" if blocked else "",
                    ts(card["updated"]) if blocked else null,
                    card["outcome"],
                    ts(card["created"]),
                    ts(card["updated"]),
                    ts(card["column_entered"]),
                    ts(card["closed_at"]) if card["closed_at"] else null,
                    str(card["version"]),
                )
                buffer.append(card_copy.line(row))
                if len(buffer) >= 20_000:
                    copy.write("".join(buffer))
                    buffer.clear()
            copy.write("".join(buffer))
        timings["copy_cards_s"] = time.perf_counter() - start

        start = time.perf_counter()
        sid = str(stream_id)
        with cur.copy(move_copy.statement) as copy:
            buffer = []
            for move_id, (when, card_id, _seq, kind, frm, to) in enumerate(events, start=1):
                card = cards[card_id - 1]
                stamp = ts(when)
                row = (
                    str(move_id),
                    sid,
                    str(card_id),
                    str(frm) if frm else null,
                    str(to),
                    stamp,
                    kind,
                    "",
                    str(card["channel"]) if card["channel"] else null,
                    f"{card['value']:.2f}",
                    stamp,
                    *actor_values,
                )
                buffer.append(move_copy.line(row))
                if len(buffer) >= 50_000:
                    copy.write("".join(buffer))
                    buffer.clear()
            copy.write("".join(buffer))
        timings["copy_moves_s"] = time.perf_counter() - start
        for table in ("boards_card", "boards_cardmove"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        start = time.perf_counter()
        cur.execute(
            "SELECT"
            " (SELECT count(*) FROM boards_cardmove m WHERE NOT EXISTS"
            "   (SELECT 1 FROM boards_card c WHERE c.id = m.card_id)),"
            " (SELECT count(*) FROM boards_cardmove m WHERE m.to_column_id NOT IN"
            "   (SELECT id FROM boards_column) OR m.from_column_id NOT IN"
            "   (SELECT id FROM boards_column) OR m.channel_id NOT IN"
            "   (SELECT id FROM vsm_channel) OR m.value_stream_id NOT IN"
            "   (SELECT id FROM vsm_valuestream)),"
            " (SELECT count(*) FROM boards_card c WHERE c.column_id NOT IN"
            "   (SELECT id FROM boards_column) OR c.channel_id NOT IN"
            "   (SELECT id FROM vsm_channel) OR c.owning_team_id NOT IN"
            "   (SELECT id FROM vsm_team))"
        )
        broken = cur.fetchone()
        if any(broken):
            raise RuntimeError(f"generated rows with broken references: {broken}")
        timings["check_references_s"] = time.perf_counter() - start
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=True
    ) as conn:
        start = time.perf_counter()
        conn.execute("VACUUM ANALYZE boards_card")
        conn.execute("VACUUM ANALYZE boards_cardmove")
        timings["vacuum_analyze_s"] = time.perf_counter() - start
    return timings


def build(n_moves: int, seed: int, name: str) -> dict:
    """The stream, its channels, its generated log loaded; its manager (no password)."""
    from django.contrib.auth import get_user_model

    from boards.models import Column
    from boards.services import value_stream_create
    from pdca.models import Cycle
    from vsm.actors import SystemActor
    from vsm.models import Channel, ChannelKind, Team

    manager = get_user_model().objects.create_user("bench-manager", password=None)
    stream = value_stream_create(
        name=name,
        customer_market="Mid-size manufacturers",
        manager=manager,
        actor=SystemActor(SEED_ACTOR),
    )
    Column.objects.filter(cycle__value_stream=stream).update(wip_limit=None)
    kinds = list(ChannelKind.values)
    channels = [
        Channel.objects.create(value_stream=stream, name=f"Channel {i + 1}", kind=kinds[i])
        for i in range(8)
    ]
    cycles = [
        list(Column.objects.filter(cycle=cycle).order_by("order").values_list("pk", flat=True))
        for cycle in Cycle.objects.filter(value_stream=stream).order_by("order")
    ]
    team = Team.objects.get(value_stream=stream)
    start = time.perf_counter()
    cards, events = generate_history(n_moves, cycles, [c.pk for c in channels], seed)
    generate_s = time.perf_counter() - start
    log(f"generated {len(events):,} moves for {len(cards):,} cards in {generate_s:.1f} s")
    timings = load_history(stream.pk, team.pk, cards, events, seed)
    timings["generate_s"] = generate_s
    return {
        "stream_id": stream.pk,
        "manager_id": manager.pk,
        "cycles": cycles,
        "timings": {k: round(v, 2) for k, v in timings.items()},
    }


def describe(stream_id: int) -> dict:
    """The history as the database holds it (the same after a build or a reuse)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT kind, count(*), min(moved_at), max(moved_at) FROM boards_cardmove "
            "WHERE value_stream_id = %s GROUP BY kind",
            [stream_id],
        )
        rows = cursor.fetchall()
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE outcome = 'open') FROM boards_card "
            "WHERE value_stream_id = %s",
            [stream_id],
        )
        cards, open_cards = cursor.fetchone()
    return {
        "moves": sum(row[1] for row in rows),
        "kinds": {row[0]: row[1] for row in rows},
        "first_move": min(row[2] for row in rows).isoformat(),
        "last_move": max(row[3] for row in rows).isoformat(),
        "cards": cards,
        "open_cards": open_cards,
    }


def cycles_of(stream_id: int) -> list[list[int]]:
    """The stream's column ids, per cycle in order."""
    from boards.models import Column
    from pdca.models import Cycle

    return [
        list(Column.objects.filter(cycle=cycle).order_by("order").values_list("pk", flat=True))
        for cycle in Cycle.objects.filter(value_stream_id=stream_id).order_by("order")
    ]


def rebuild(stream_id: int) -> dict:
    """The real ``stream_metrics_rebuild``, timed: in all, and (where the product marks
    them with ``vsm.timing``) the fold and the document inside it."""
    from metrics import services
    from vsm import timing

    start = time.perf_counter()
    with timing.collect() as times:
        result = services.stream_metrics_rebuild(stream_id=stream_id)
    total = time.perf_counter() - start
    document = times.seconds("metrics.document") if times.seen("metrics.document") else None
    return {
        "applied": result.applied,
        "total_s": round(total, 2),
        "fold_s": round(total - document, 2) if document is not None else None,
        "document_s": round(document, 3) if document is not None else None,
    }
