"""The check of every row before an import: the preview's first rows and its totals.

Runs in the background (intake.import_analyse) with the same classification as the
import (``intake.services.rows``), so the preview says what the import will do; only
the split between cards created and prospects queued waits for the import, as it
depends on the room in the column then.
"""

from __future__ import annotations

from collections import Counter
from itertools import batched

from django.utils import timezone

from intake.models import ImportJob, ImportState
from intake.services.files import RowUnreadable, file_rows
from intake.services.rows import (
    RowContext,
    StreamEmails,
    StreamLookups,
    Verdict,
    channel_key,
    chunk_classify,
    control_characters_shown,
    other_phases_forget,
    seen_forget,
)

# Rows classified together: one round of queries per chunk.
CHUNK_ROWS = 500
# Rows the preview shows, with their verdicts.
PREVIEW_ROWS = 20
# New channel names the preview lists (and offers to create); more are counted.
NEW_CHANNELS_SHOWN = 50
# A preview cell is cut to this many characters (the notes, mostly).
PREVIEW_CELL_CHARS = 80


def _preview_row(verdict: Verdict, cells: list[str], mapping: dict[str, int | None]) -> dict:
    """A row as the preview shows it: its values cut short, their control characters made
    visible (PostgreSQL's JSON refuses NUL), its verdict."""

    def shown(text: str) -> str:
        return control_characters_shown(text[:PREVIEW_CELL_CHARS])

    def cell(key: str) -> str:
        index = mapping.get(key)
        return shown(cells[index].strip() if index is not None and index < len(cells) else "")

    prospect = verdict.prospect
    return {
        "row": verdict.row,
        "person_name": shown(prospect.person_name) or cell("person_name"),
        "company": shown(prospect.company) or cell("company"),
        "email": cell("email"),
        "channel": cell("channel"),
        "owner": cell("owner"),
        # A rejected row's value as the file has it: it may not have been read at all.
        "estimated_value": cell("estimated_value")
        if verdict.action == "reject"
        else str(prospect.estimated_value),
        "notes": shown(prospect.notes),
        "action": verdict.action,
        "code": verdict.code,
        "field": verdict.field,
        "detail": verdict.detail,
        "new_channel": verdict.new_channel,
    }


def import_analyse(*, job_id: int, revision: int) -> bool:
    """Check every row of the job's file with the mapping of ``revision`` and store the
    preview: ``job.analysis`` = {"rows", "blank", "new", "merge", "rejected": {code:
    rows}, "new_channels": [names], "new_channels_more": n, "new_channel_rows",
    "first_rows": [...], "unreadable": {"row", "reason"} or None}; ``job.total_rows``.

    Does nothing (False) when the job has moved on (another mapping, discarded); safe to
    run twice. Memory stays flat: the file streams, chunk by chunk, and the first row
    of each e-mail is kept in the database.
    """
    job = ImportJob.objects.filter(
        pk=job_id, revision=revision, state=ImportState.ANALYSING
    ).first()
    if job is None:
        return False
    other_phases_forget(job_id=job.pk, keep=revision)
    context = RowContext(
        job_id=job.pk,
        stream_id=job.value_stream_id,
        mapping=job.mapping,
        duplicates=job.duplicates,
        lookups=StreamLookups.build(job.value_stream_id),
        emails=StreamEmails.build(job.value_stream_id),
        phase=revision,
        header=job.header,
        new_channels_rejected=False,
    )
    counts: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    new_channels: dict[str, str] = {}
    first_rows: list[dict] = []
    unreadable = None
    last_row = 1
    rows = file_rows(job_id=job.pk, encoding=job.encoding, delimiter=job.delimiter)
    try:
        for chunk in batched(rows, CHUNK_ROWS):
            verdicts = chunk_classify(chunk, context=context)
            for (_, cells), verdict in zip(chunk, verdicts, strict=True):
                last_row = verdict.row
                if verdict.action == "blank":
                    counts["blank"] += 1
                    continue
                counts["rows"] += 1
                if verdict.action == "reject":
                    rejected[verdict.code] += 1
                else:
                    counts[verdict.action] += 1
                    if verdict.new_channel:
                        counts["new_channel_rows"] += 1
                        key = channel_key(verdict.new_channel)
                        if key in new_channels or len(new_channels) < NEW_CHANNELS_SHOWN:
                            new_channels.setdefault(key, verdict.new_channel)
                        else:
                            counts["new_channels_more_rows"] += 1
                if len(first_rows) < PREVIEW_ROWS:
                    first_rows.append(_preview_row(verdict, cells, job.mapping))
    except RowUnreadable as error:
        unreadable = {"row": error.row, "reason": error.reason[:200]}
    analysis = {
        "rows": counts["rows"],
        "blank": counts["blank"],
        "new": counts["new"],
        "merge": counts["merge"],
        "rejected": dict(sorted(rejected.items())),
        "rejected_total": sum(rejected.values()),
        "new_channels": sorted(new_channels.values(), key=channel_key),
        "new_channel_rows": counts["new_channel_rows"],
        "new_channels_more_rows": counts["new_channels_more_rows"],
        "first_rows": first_rows,
        "unreadable": unreadable,
        "revision": revision,
    }
    stored = ImportJob.objects.filter(
        pk=job.pk, revision=revision, state=ImportState.ANALYSING
    ).update(
        state=ImportState.READY,
        analysis=analysis,
        total_rows=last_row - 1,
        updated_at=timezone.now(),
    )
    seen_forget(job_id=job.pk, phase=revision)
    return bool(stored)
