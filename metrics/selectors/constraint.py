"""The column that limits the flow (Theory of Constraints), from flow over time."""

from __future__ import annotations

from metrics.selectors.readmodel import ColumnMetrics, Constraint, ConstraintCandidate

# A column that holds the flow at its WIP limit (while the next one has room) for at
# least this share of the window is a WIP-limited constraint.
LIMITING_SHARE = 0.2
LIMITING_WEIGHT = 4.0


def _limiting_share(column: ColumnMetrics) -> float | None:
    """Share of the window at its WIP limit while the next column had room: the column
    itself, not the one after it, held the work back."""
    flow = column.flow
    if flow.at_limit_share is None:
        return None
    return max(0.0, flow.at_limit_share - (flow.blocked_share or 0.0))


def _score(column: ColumnMetrics, busiest: float) -> float:
    """Evidence that the column limits the flow, in 0..LIMITING_WEIGHT + 1.

    A WIP-limited constraint sits at its limit while the column after it has room,
    and the work in front of it waits (the queue forms upstream, where its own WIP
    limit keeps it out of sight): its limiting share counts most, above any queue.
    A constraint without a WIP limit keeps its queue in itself: the more cards a card
    finds there on arriving, the longer it stays (it waits behind them). Its queueing
    time per visit, against the longest of the stream's, scores 0..1; a delay (waiting
    for the customer), however long, queues nobody and scores about 0.
    """
    limiting = _limiting_share(column) or 0.0
    if limiting >= LIMITING_SHARE:
        return LIMITING_WEIGHT * limiting + 1.0
    utilisation = column.flow.utilisation or 0.0
    return utilisation / busiest if busiest > 0 else 0.0


def constraint(columns: list[ColumnMetrics]) -> Constraint:
    """Rank the columns (in flow order, across control points) by the evidence that
    they limit the flow, and name the top one with that evidence in words.

    Evidence, over the window's time: the share of time at its WIP limit while the next
    column had room; the time cards waited in the column before it because it was full;
    the time its visits spent queueing behind the cards ahead; its time-weighted WIP,
    mean visit, the age of its cards and the blocked cards in it now, shown beside.
    """
    if not columns:
        return Constraint()
    busiest = max((column.flow.utilisation or 0.0) for column in columns)
    ranking = []
    for column in columns:
        limiting = _limiting_share(column)
        ranking.append(
            ConstraintCandidate(
                column_id=column.id,
                name=f"{column.cycle} / {column.name}",
                score=round(_score(column, busiest), 3),
                at_limit_share=column.flow.at_limit_share,
                limiting_share=round(limiting, 4) if limiting is not None else None,
                waited_days_mean=column.flow.waited_days_mean,
                waited_cards=column.flow.waited_cards,
                utilisation=column.flow.utilisation,
                time_weighted_wip=column.flow.time_weighted_wip,
                wip_limit=column.wip_limit,
                mean_visit_days=column.time_in_column.mean,
                median_age_days=column.median_age_days,
                blocked_now=column.blocked_now,
            )
        )
    order = {column.id: position for position, column in enumerate(columns)}
    ranking.sort(key=lambda entry: (-entry.score, order[entry.column_id]))
    top = ranking[0]
    if top.score <= 0:
        return Constraint(ranking=ranking)
    return Constraint(
        column_id=top.column_id,
        name=top.name,
        evidence=_evidence(top, columns),
        ranking=ranking,
    )


def _evidence(top: ConstraintCandidate, columns: list[ColumnMetrics]) -> list[str]:
    by_id = {column.id: column for column in columns}
    column = by_id[top.column_id]
    position = columns.index(column)
    before = columns[position - 1] if position else None
    evidence = []
    if top.at_limit_share is not None:
        evidence.append(
            f"At its WIP limit ({column.wip_limit}) {round(top.at_limit_share * 100)}% of the "
            f"time; {round((top.limiting_share or 0) * 100)}% of the time with room in the "
            "column after it."
        )
    if top.waited_cards and before is not None:
        evidence.append(
            f"{top.waited_cards} {'card' if top.waited_cards == 1 else 'cards'} waited "
            f"{top.waited_days_mean} days on average in "
            f"{before.cycle} / {before.name} because {column.cycle} / {column.name} was full."
        )
    queue_picked = (top.limiting_share or 0.0) < LIMITING_SHARE
    if queue_picked and top.utilisation and column.flow.days_per_card_ahead:
        evidence.append(
            f"Each card a prospect found in it kept it {column.flow.days_per_card_ahead:.2f} "
            f"days longer (correlation {column.flow.queue_correlation:.2f}): the work uses "
            f"about {round(top.utilisation * 100)}% of its capacity."
        )
    evidence.append(
        f"It held {column.flow.time_weighted_wip:.1f} cards on average over the window."
    )
    if column.time_in_column.mean is not None:
        evidence.append(f"Cards spent {column.time_in_column.mean} days in it on average.")
    if column.median_age_days is not None:
        evidence.append(f"Its open cards are {column.median_age_days} days old at the median.")
    if column.blocked_now:
        evidence.append(f"{column.blocked_now} of its cards are blocked now.")
    return evidence
