#!/usr/bin/env python
"""CSV import benchmark (issue 15): a messy 50,000-row file imported into a stream.

    .venv/bin/python bench/import_bench.py [--rows 50000] [--runs 3] [--quick]

A script that prints figures, not a test, on the harness in bench/harness/. It:

1. Re-creates the database ``vsm_bench_import`` (PostgreSQL, production settings, DEBUG
   off; broker on Redis DB 11 and cache on Redis DB 12, both flushed; eager tasks off:
   announcements are published, nothing runs inline).
2. Per run, a fresh stream: three members, four channels, 1,000 cards with e-mails
   (entered through ``card_create``) and 50 suppressed e-mails; then a generated file of
   ``--rows`` rows, deterministic by ``--seed``: accents, values typed in five ways,
   quoted notes with delimiters and line breaks, and on purpose about 1% blank rows, 1%
   without a name, 2% bad e-mails, 2% bad values, 1% unknown owners, 3% e-mails repeated
   in the file, 2% e-mails of the stream's cards, 0.5% suppressed, 5% a channel the
   stream lacks (created on confirmation); and, by accident kept as messy input, about
   6% more bad e-mails (a first name starting with "Å" gives an address starting with a
   dot). The runs alternate Windows-1252 with ``;`` and UTF-8 with a BOM and ``,``.
3. The import as the product runs it, in this process: ``import_upload`` (the file in
   256 KB pieces, stored in the database), ``import_analyse`` (the preview's check of
   every row), ``import_confirm`` and ``import_run`` slices of 30 s (what
   ``intake.import_run`` does per task) until done. Wall time per phase, rows per
   second; the counts are checked against the database (cards created, waiting
   prospects, rows accounted for).
4. Memory: the same pipeline under ``tracemalloc`` at a fifth of the rows and at all of
   them (peak of Python allocations during the phase; flat means it does not grow with
   the file), and the process's resident set before and after.
5. A WIP-limited run: the first column limited to room for 50 more cards, so nearly
   every row waits in the intake queue (the queue's bulk path).

Prints a results table; raw results go to ``bench/results/import_bench-<time>.json``.
A full run (not --quick) rewrites the "import-bench" block of docs/performance.md.
"""

from __future__ import annotations

import csv
import random
import statistics
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import harness
from harness import RESULTS_DIR, arguments, log
from harness.cpu import cpu_calibration, machine
from harness.db import Database, environment, flush_redis, migrate, redis_url, setup_django
from harness.report import machine_sentence, markdown_table, replace_block, save_results, text_table

DATABASE = Database("vsm_bench_import")
BROKER_DB, CACHE_DB = 11, 12
# What a worker's task does per slice (intake.tasks.SLICE_SECONDS).
SLICE_SECONDS = 30.0
PIECE_BYTES = 256 * 1024

HEADER = [
    "First name",
    "Last name",
    "Company name",
    "E-mail address",
    "Lead source",
    "Deal value",
    "Owner",
    "Notes",
    "Phone",
]
FIRST = [
    "Ada",
    "Ben",
    "Chloé",
    "Jürgen",
    "Hélène",
    "Zoë",
    "Søren",
    "François",
    "Inès",
    "Björn",
    "Åsa",
    "Núria",
    "Matthäus",
    "Renée",
    "Oskar",
    "Maëlle",
]
LAST = [
    "Keller",
    "Groß",
    "Lefèvre",
    "Ørsted",
    "Müller",
    "García",
    "Dubois",
    "Nyström",
    "Çelik",
    "Brontë",
    "O'Neill",
    "Smith-Jones",
    "Weiß",
    "Jäger",
]
COMPANY = [
    "Nordwerk",
    "Straße & Söhne",
    "Crème SA",
    "Lindqvist AB",
    "Pumpen, Ventile GmbH",
    '"Quoted" Ltd',
    "Façade SARL",
    "Öko Bau",
    "Müller; Partner",
    "Acme",
]
CHANNELS = ["Web form", "Referral", "Trade fair", "Partner"]

DOC_INTRO = """## Import (issue 15)

`bench/import_bench.py` imports a generated, messy CSV file of 50,000 prospects into a
stream on PostgreSQL, as the product does it: the upload stored in the database, the
preview's check of every row, then the import in 30-second slices (what one
`intake.import_run` task does), every card through `boards.services.card_create`. It
reports wall time per phase and the peak memory of the import (tracemalloc) at a fifth
of the file and at all of it. The script's docstring describes the file and the method;
the block below is rewritten by each full run."""


def generate(
    path: Path,
    *,
    rows: int,
    seed: int,
    encoding: str,
    delimiter: str,
    members: list[dict],
    stream_emails: list[str],
    suppressed: list[str],
) -> dict:
    """Write the messy file; returns how many rows of each kind it holds."""
    rng = random.Random(seed)
    kinds: dict[str, int] = {}
    seen: list[str] = []
    with open(path, "w", encoding=encoding, newline="") as out:
        writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
        writer.writerow(HEADER)
        for n in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            company = rng.choice(COMPANY) if rng.random() < 0.8 else ""
            email = f"{first[:1]}.{last}.{n}@example.com".lower()
            email = email.encode("ascii", "ignore").decode().replace("'", "")
            value = rng.choice(["", "1200", "1.234,56", "€ 300", "12'000", "2,5", "990 EUR"])
            channel = ""
            pick = rng.random()
            if pick < 0.85:
                channel = rng.choice(CHANNELS)
                channel = rng.choice([channel, channel.upper(), channel.lower(), f" {channel} "])
            elif pick < 0.90:
                channel = "Podcast"
            owner = ""
            if rng.random() < 0.5:
                member = rng.choice(members)
                owner = rng.choice([member["username"], member["email"], member["full_name"]])
            notes = ""
            if rng.random() < 0.2:
                notes = rng.choice(
                    [
                        "Met at the fair; wants a call",
                        'Asked for "pricing", twice',
                        "Line one\nLine two",
                        "Budget: 10,000 - 20,000",
                    ]
                )
            kind = "new"
            draw = rng.random()
            if draw < 0.01:
                kind = "blank"
            elif draw < 0.02:
                kind, first, last, company = "no_name", "", "", ""
            elif draw < 0.04:
                kind, email = "bad_email", rng.choice(["name(at)example.com", "foo@", "a b@c.de"])
            elif draw < 0.06:
                kind, value = "bad_value", rng.choice(["abc", "-100", "1.2.3,4"])
            elif draw < 0.07:
                kind, owner = "unknown_owner", "nobody-here"
            elif draw < 0.10 and seen:
                kind, email = "duplicate_in_file", rng.choice(seen).upper()
            elif draw < 0.12:
                kind, email = "duplicate_in_stream", rng.choice(stream_emails)
            elif draw < 0.125:
                kind, email = "suppressed_email", rng.choice(suppressed)
            kinds[kind] = kinds.get(kind, 0) + 1
            if kind == "blank":
                writer.writerow([""] * len(HEADER))
                continue
            if kind == "new":
                seen.append(email)
                if len(seen) > 5_000:
                    seen.pop(rng.randrange(len(seen)))
            writer.writerow(
                [
                    first,
                    last,
                    company,
                    email,
                    channel,
                    value,
                    owner,
                    notes,
                    f"+49 30 {rng.randrange(10**6, 10**7)}",
                ]
            )
    return kinds


def pieces(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as source:
        while piece := source.read(PIECE_BYTES):
            yield piece


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def seed_stream(number: int, *, wip_limit: int | None) -> dict:
    """A fresh stream with members, channels, 1,000 cards with e-mails and 50 suppressed
    e-mails; the Data column of Collaboration limited to room for ``wip_limit`` more."""
    from django.contrib.auth import get_user_model

    from boards.models import Column, SuppressedEmail
    from boards.services import card_create, value_stream_create
    from boards.services.privacy import email_digest
    from pdca.models import Cycle
    from vsm.actors import SystemActor
    from vsm.models import Channel, Membership, Role, Team

    system = SystemActor("bench")
    users = get_user_model().objects
    manager = users.create_user(f"import-manager-{number}", f"m{number}@example.com", "x")
    stream = value_stream_create(
        actor=system, name=f"Import bench {number}", customer_market="Bench", manager=manager
    )
    team = Team.objects.get(value_stream=stream, memberships__user=manager)
    members = []
    for m in range(3):
        user = users.create_user(
            f"seller-{number}-{m}",
            f"seller{m}.{number}@example.com",
            "x",
            first_name=f"Seller{m}",
            last_name=f"Run{number}",
        )
        Membership.objects.create(user=user, team=team, role=Role.MEMBER)
        members.append(
            {"username": user.username, "email": user.email, "full_name": f"Seller{m} Run{number}"}
        )
    for name in CHANNELS:
        Channel.objects.create(value_stream=stream, name=name)
    cycle = Cycle.objects.filter(value_stream=stream).order_by("order").first()
    Column.objects.filter(cycle=cycle, order=1).update(wip_limit=None)
    emails = []
    for n in range(1_000):
        email = f"existing.{number}.{n}@example.org"
        card_create(cycle_id=cycle.pk, actor=system, person_name=f"Existing {n}", email=email)
        emails.append(email)
    suppressed = [f"forget.{number}.{n}@example.net" for n in range(50)]
    SuppressedEmail.objects.bulk_create(
        [SuppressedEmail(digest=email_digest(e)) for e in suppressed], ignore_conflicts=True
    )
    # ``wip_limit``: room for that many cards beyond the 1,000 already there.
    limit = None if wip_limit is None else len(emails) + wip_limit
    Column.objects.filter(cycle=cycle, order=1).update(wip_limit=limit)
    return {
        "stream": stream,
        "manager": manager,
        "cycle": cycle,
        "members": members,
        "emails": emails,
        "suppressed": suppressed,
    }


def import_once(
    *,
    number: int,
    rows: int,
    seed: int,
    encoding: str,
    delimiter: str,
    wip_limit: int | None = None,
    traced: bool = False,
) -> dict:
    """One import of a generated file, phase by phase; with ``traced``, the peak of
    Python allocations of each phase (tracemalloc)."""
    from boards.models import Card
    from intake import services
    from intake.models import ImportState, IntakeItem
    from intake.services.rows import FIELDS
    from vsm.actors import UserActor

    world = seed_stream(number, wip_limit=wip_limit)
    stream, actor = world["stream"], UserActor(world["manager"])
    path = RESULTS_DIR / f"import_bench-{number}.csv"
    kinds = generate(
        path,
        rows=rows,
        seed=seed + number,
        encoding=encoding,
        delimiter=delimiter,
        members=world["members"],
        stream_emails=world["emails"],
        suppressed=world["suppressed"],
    )
    size = path.stat().st_size
    cards_before = Card.objects.filter(value_stream=stream).count()
    out: dict = {
        "rows": rows,
        "bytes": size,
        "encoding": encoding,
        "delimiter": delimiter,
        "wip_limit": wip_limit,
        "kinds": kinds,
        "traced": traced,
    }
    peaks: dict[str, float] = {}
    rss_before = rss_mb()

    def phase(name: str, work):
        if traced:
            tracemalloc.start()
        started = time.perf_counter()
        result = work()
        out[f"{name}_s"] = round(time.perf_counter() - started, 2)
        if traced:
            peaks[name] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
            tracemalloc.stop()
        return result

    job = phase(
        "upload",
        lambda: services.import_upload(
            stream_id=stream.pk, actor=actor, file_name=path.name, chunks=pieces(path), size=size
        ),
    )
    out["detected"] = {"encoding": job.encoding, "delimiter": job.delimiter}
    guessed = {key: job.mapping.get(key) for key in FIELDS}
    out["mapping_guessed_all"] = all(
        guessed[key] is not None
        for key in (
            "person_name",
            "last_name",
            "company",
            "email",
            "channel",
            "estimated_value",
            "owner",
            "notes",
        )
    )
    job = services.import_map(
        job_id=job.pk,
        stream_id=stream.pk,
        actor=actor,
        mapping=guessed,
        cycle_id=world["cycle"].pk,
        duplicates="skip",
    )
    phase("check", lambda: services.import_analyse(job_id=job.pk, revision=job.revision))
    job.refresh_from_db()
    out["check"] = {k: job.analysis[k] for k in ("rows", "blank", "new", "merge", "rejected")}
    services.import_confirm(
        job_id=job.pk,
        stream_id=stream.pk,
        actor=actor,
        revision=job.revision,
        create_channels=job.analysis["new_channels"],
    )
    slices = []

    def run_all() -> None:
        while True:
            result = services.import_run(job_id=job.pk, seconds=SLICE_SECONDS)
            slices.append(result.rows)
            if not result.more:
                return

    phase("import", run_all)
    out["rss_mb"] = {"before": rss_before, "after": rss_mb()}
    job.refresh_from_db()
    out["slices"] = slices
    out["state"] = job.state
    out["counts"] = {
        "created": job.created,
        "merged": job.merged,
        "queued": job.queued,
        "rejected": job.rejected,
        "blank": job.blank_rows,
        "by_code": job.rejected_by_code,
    }
    out["rows_per_s"] = round(rows / out["import_s"], 1) if out["import_s"] else None
    if traced:
        out["peak_mb"] = peaks
    # What the database says: every row accounted for, nothing twice.
    created = Card.objects.filter(value_stream=stream).count() - cards_before
    waiting = IntakeItem.objects.filter(source_job=job).count()
    accounted = job.created + job.merged + job.queued + job.rejected + job.blank_rows
    out["consistent"] = (
        job.state == ImportState.DONE
        and created == job.created
        and waiting == job.queued
        and accounted == rows
    )
    path.unlink()
    return out


def main() -> int:
    parser = arguments(__doc__, seed=20261130, doc_block=True)
    parser.add_argument("--quick", action="store_true", help="5,000 rows, one run")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3, help="timed runs (median reported)")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.runs = 5_000, 1

    env = environment(DATABASE, broker=redis_url(BROKER_DB), cache=redis_url(CACHE_DB))
    log(f"re-creating database {DATABASE.name}; flushing Redis DBs {BROKER_DB} and {CACHE_DB}")
    DATABASE.recreate()
    flush_redis(BROKER_DB, CACHE_DB)
    setup_django(env)
    import vsm.celery  # noqa: F401  the Celery app, configured from settings (eager off)

    results: dict = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "args": vars(args),
        "machine": machine(DATABASE),
    }
    migrate()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    readings = [("cp1252", ";"), ("utf-8-sig", ",")]
    number = 0
    runs = []
    for n in range(args.runs):
        number += 1
        encoding, delimiter = readings[n % len(readings)]
        log(f"run {number}: {args.rows:,} rows, {encoding}, {delimiter!r} ...")
        run = import_once(
            number=number, rows=args.rows, seed=args.seed, encoding=encoding, delimiter=delimiter
        )
        log(
            f"  upload {run['upload_s']} s, check {run['check_s']} s, import {run['import_s']} s "
            f"({run['rows_per_s']} rows/s), consistent: {run['consistent']}"
        )
        runs.append(run)
        DATABASE.vacuum("boards_card", "boards_cardmove", "vsm_auditentry")
    results["runs"] = runs
    memory = []
    for rows in sorted({max(args.rows // 5, 1_000), args.rows}):
        number += 1
        log(f"memory run {number}: {rows:,} rows under tracemalloc ...")
        run = import_once(
            number=number, rows=rows, seed=args.seed, encoding="cp1252", delimiter=";", traced=True
        )
        log(f"  peak MB {run['peak_mb']}, RSS {run['rss_mb']}")
        memory.append(run)
    results["memory"] = memory
    number += 1
    log(f"WIP-limited run {number}: {args.rows:,} rows, room for 50 in Data ...")
    limited = import_once(
        number=number,
        rows=args.rows,
        seed=args.seed,
        encoding="utf-8-sig",
        delimiter=",",
        wip_limit=50,
    )
    log(
        f"  import {limited['import_s']} s, created {limited['counts']['created']}, queued "
        f"{limited['counts']['queued']}"
    )
    results["limited"] = limited
    results["machine"]["calibration_ms_end"] = cpu_calibration()
    path = save_results("import_bench", results)

    def median(key: str) -> float:
        return round(statistics.median(run[key] for run in runs), 1)

    table = [
        ("rows per file", f"{args.rows:,}", "", ""),
        ("file size", f"{runs[0]['bytes'] / 2**20:.1f} MB", "", ""),
        ("upload (store + detect), median", f"{median('upload_s')} s", "", ""),
        ("check of every row (preview), median", f"{median('check_s')} s", "", ""),
        ("import, median of runs", f"{median('import_s')} s", "", ""),
        ("import runs", ", ".join(f"{run['import_s']} s" for run in runs), "", ""),
        ("rows per second (import), median", f"{median('rows_per_s')}", "", ""),
        ("slices of 30 s", str(len(runs[0]["slices"])), "", ""),
        (
            "all runs consistent",
            str(all(run["consistent"] for run in runs + memory + [limited])),
            "",
            "",
        ),
    ]
    for run in memory:
        table.append(
            (
                f"peak traced MB at {run['rows']:,} rows",
                " / ".join(f"{k} {v}" for k, v in run["peak_mb"].items()),
                "",
                "",
            )
        )
    table.append(("WIP-limited import (room for 50)", f"{limited['import_s']} s", "", ""))
    print(text_table(table))
    print(f"raw results: {path}")
    if (not args.quick or args.doc) and not args.no_doc:
        write_doc(results, runs, memory, limited, args)
    flush_redis(BROKER_DB, CACHE_DB)
    return 0 if all(run["consistent"] for run in runs + memory + [limited]) else 1


def write_doc(results: dict, runs: list, memory: list, limited: dict, args) -> None:
    m = results["machine"]
    counts = runs[0]["counts"]
    lines = [
        "",
        machine_sentence(m, "Four other agents' test runs and builds"),
        "",
        f"One file of {args.rows:,} rows ({runs[0]['bytes'] / 2**20:.1f} MB), "
        f"{len(runs)} timed runs (Windows-1252 with `;` and UTF-8 with a BOM and `,`, "
        "alternating); the first column without a WIP limit, so every valid new row "
        "becomes a card through `card_create`:",
        "",
        *markdown_table(
            (
                "run",
                "reading",
                "upload s",
                "check s",
                "import s",
                "rows/s",
                "slices",
                "created",
                "queued",
                "rejected",
                "consistent",
            ),
            [
                (
                    n,
                    f"{run['detected']['encoding']} `{run['detected']['delimiter']!r}`",
                    run["upload_s"],
                    run["check_s"],
                    run["import_s"],
                    run["rows_per_s"],
                    len(run["slices"]),
                    run["counts"]["created"],
                    run["counts"]["queued"],
                    run["counts"]["rejected"],
                    run["consistent"],
                )
                for n, run in enumerate(runs, start=1)
            ],
        ),
        "",
        f"Median import: **{statistics.median(r['import_s'] for r in runs):.1f} s** "
        f"({statistics.median(r['rows_per_s'] for r in runs):.0f} rows/s); no task comes "
        f"near the time limit: each slice stops after {SLICE_SECONDS:.0f} s and the next "
        "is a new task.",
        "",
        "Rows rejected per code (run 1): "
        + ", ".join(f"`{code}` {rows}" for code, rows in counts["by_code"].items())
        + f"; {counts['blank']} blank rows passed over.",
        "",
        "Memory, under tracemalloc (peak of Python allocations during each phase, MB):",
        "",
        *markdown_table(
            ("rows", "upload", "check", "import", "RSS before / after MB"),
            [
                (
                    f"{run['rows']:,}",
                    run["peak_mb"]["upload"],
                    run["peak_mb"]["check"],
                    run["peak_mb"]["import"],
                    f"{run['rss_mb']['before']} / {run['rss_mb']['after']}",
                )
                for run in memory
            ],
        ),
        "",
        f"WIP-limited (Collaboration's Data with room for 50 more): {limited['import_s']} s for "
        f"{args.rows:,} rows; {limited['counts']['created']} cards created, "
        f"{limited['counts']['queued']:,} prospects waiting in intake (bulk inserts).",
        "",
        f"Raw results: `{results['json']}`.",
        "",
    ]
    replace_block("import-bench", lines, DOC_INTRO)


if __name__ == "__main__":
    harness.log  # noqa: B018  the harness puts bench/ and the project on sys.path
    raise SystemExit(main())
