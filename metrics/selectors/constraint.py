"""The column that most likely limits the flow (Theory of Constraints)."""

from __future__ import annotations

from boards.models import Column

STARVING_WEIGHT = 2.0


def _constraint(column_docs: list[dict], cycle_columns: dict[int, list[Column]]) -> dict:
    """Rank columns by the evidence that they limit the flow (Theory of Constraints).

    Evidence, each scaled to 0..1 across the stream's columns: queue growth over the
    window, median age of the open cards in it, share of its cycle's time spent in it,
    blocked cards now. A column at its WIP limit while the next column of its cycle
    starves (at most one card) is the textbook sign of a constraint: it scores 2 more,
    and the queue growth in front of it (earlier columns of the cycle) counts as its
    own, because that work waits on it.
    """
    by_id = {doc["id"]: doc for doc in column_docs}
    neighbours: dict[int, tuple[list[int], int | None]] = {}
    for columns in cycle_columns.values():
        ids = [column.pk for column in columns]
        for index, column_id in enumerate(ids):
            following = ids[index + 1] if index + 1 < len(ids) else None
            neighbours[column_id] = (ids[:index], following)

    def share_of_cycle(doc: dict) -> float:
        means = [by_id[c.pk]["time_in_column"]["mean"] or 0 for c in cycle_columns[doc["cycle_id"]]]
        total = sum(means)
        return (doc["time_in_column"]["mean"] or 0) / total if total else 0.0

    def growth(doc: dict) -> int:
        return max(0, doc["wip_now"] - doc["wip_at_window_start"])

    def starves_next(doc: dict) -> bool:
        following = neighbours[doc["id"]][1]
        return (
            doc["wip_limit"] is not None
            and doc["wip_now"] >= doc["wip_limit"]
            and following is not None
            and by_id[following]["wip_now"] <= 1
        )

    raw = {}
    for doc in column_docs:
        upstream = neighbours[doc["id"]][0]
        queue_growth = growth(doc)
        if starves_next(doc):
            queue_growth += sum(growth(by_id[column_id]) for column_id in upstream)
        raw[doc["id"]] = {
            "queue_growth": queue_growth,
            "median_age_days": doc["median_age_days"] or 0.0,
            "share_of_cycle_time": share_of_cycle(doc),
            "blocked_now": doc["blocked_now"],
        }
    maxima = {
        name: max((values[name] for values in raw.values()), default=0)
        for name in ("queue_growth", "median_age_days", "share_of_cycle_time", "blocked_now")
    }
    ranking = []
    for doc in column_docs:
        values = raw[doc["id"]]
        score = sum(values[name] / maxima[name] for name in maxima if maxima[name])
        starving = starves_next(doc)
        if starving:
            score += STARVING_WEIGHT
        ranking.append(
            {
                "column_id": doc["id"],
                "name": f"{doc['cycle']} / {doc['name']}",
                "score": round(score, 3),
                "at_limit_while_next_starves": starving,
                **{name: round(value, 2) for name, value in values.items()},
            }
        )
    ranking.sort(key=lambda entry: (-entry["score"], entry["column_id"]))
    if not ranking or ranking[0]["score"] == 0:
        return {"column_id": None, "name": None, "evidence": [], "ranking": ranking}
    top = ranking[0]
    doc = by_id[top["column_id"]]
    evidence = []
    if top["at_limit_while_next_starves"]:
        following = by_id[neighbours[doc["id"]][1]]
        evidence.append(
            f"It sits at its WIP limit ({doc['wip_now']}/{doc['wip_limit']}) while the next "
            f"column, {following['name']}, holds {following['wip_now']}."
        )
    if top["queue_growth"]:
        evidence.append(f"Work waiting on it grew by {top['queue_growth']} cards over the window.")
    if doc["median_age_days"] is not None:
        evidence.append(f"Cards in it are {doc['median_age_days']} days old at the median.")
    if top["share_of_cycle_time"]:
        evidence.append(
            f"It takes {round(top['share_of_cycle_time'] * 100)}% of the time cards spend in "
            f"{doc['cycle']}."
        )
    if top["blocked_now"]:
        evidence.append(f"{top['blocked_now']} of its cards are blocked now.")
    return {
        "column_id": top["column_id"],
        "name": top["name"],
        "evidence": evidence,
        "ranking": ranking,
    }
