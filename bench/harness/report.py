"""Reporting: text and Markdown tables, the raw-results file, and the one writer of a
scenario's block in ``docs/performance.md``.

A block sits between ``<!-- <name>:results:begin -->`` and ``<!-- <name>:results:end -->``;
a run replaces what is between the markers and nothing else, so the hand-written
reading of the figures around it stays. Without the markers, the section's intro and
the block are appended.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from harness import DOC, RESULTS_DIR, ROOT


def fmt(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def pct(share) -> str:
    return "-" if share is None or math.isnan(share) else f"{100 * share:.0f}%"


def verdict(value, target, *, at_least: bool = False) -> str:
    """'met' / 'NOT MET' against a target (at most, or ``at_least``); '' without one."""
    if target is None:
        return ""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return "met" if (value >= target if at_least else value <= target) else "NOT MET"


def dist(values: dict, unit: str, digits: int = 0) -> str:
    """'p50 1.2 / p95 3.4 / max 5.6 s' from a dict of percentiles."""
    parts = [
        f"{key} {value:.{digits}f}"
        for key, value in values.items()
        if key in ("p50", "p95", "p99", "max") and value is not None
    ]
    return " / ".join(parts) + f" {unit}"


def text_table(rows, header=("measure", "result", "target", ""), rule: bool = True) -> str:
    """Columns padded to their widest cell, a rule under the header."""
    rows = [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    if rule:
        lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


def markdown_table(header, rows) -> list[str]:
    return [
        "| " + " | ".join(str(c) for c in header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(str(c).strip() for c in row) + " |" for row in rows),
    ]


def save_results(name: str, results: dict, suffix: str = "") -> Path:
    """``bench/results/<name>-<time><suffix>.json`` (ignored by git); its path relative
    to the project goes into ``results["json"]``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}{suffix}.json"
    results["json"] = str(path.relative_to(ROOT))
    path.write_text(json.dumps(results, indent=2, default=str))
    return path


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:results:begin -->", f"<!-- {name}:results:end -->"


def replace_block(name: str, lines: list[str], intro: str, doc: Path = DOC) -> None:
    """Put ``lines`` between the markers of block ``name`` in docs/performance.md, or
    append ``intro`` and the block when the markers are missing."""
    begin, end = markers(name)
    block = "\n".join([begin, *lines, end])
    text = doc.read_text() if doc.exists() else "# Performance\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + intro.strip("\n") + "\n\n" + block + "\n"
    doc.write_text(text)


def machine_sentence(m: dict, shared: str, extra: str = "") -> str:
    """One paragraph: the machine, the versions, the load and the code of a run."""
    changes = m["git"]["uncommitted_app_changes"]
    return (
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, {m['os']}; "
        f"PostgreSQL {m['postgres']} (shared_buffers {m['shared_buffers']}, work_mem "
        f"{m['work_mem']}), Python {m['python']}, Django {m['django']}{extra}. {shared} "
        f"share the machine (other work too); load average (1 min) at start "
        f"{m['loadavg_at_start'][0]:.2f}; a fixed Python loop took {m['calibration_ms_start']} "
        f"ms at the start and {m.get('calibration_ms_end', '-')} ms at the end. Code: "
        f"{m['git']['head']} ({m['git']['subject']})"
        + (f" with uncommitted changes in {len(changes)} app files." if changes else ".")
    )


def statements_table(statements: list[dict], limit: int = 8, per_run: bool = False) -> list:
    if per_run:
        return markdown_table(
            ("statement", "per run", "ms per run"),
            [(f"`{s['statement']}`", s["count"], s["ms"]) for s in statements[:limit]],
        )
    return markdown_table(
        ("statement", "count", "seconds"),
        [(f"`{s['statement']}`", f"{s['count']:,}", s["seconds"]) for s in statements[:limit]],
    )
