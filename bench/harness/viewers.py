"""Viewers: people who keep a board open, polling it as ``board.js`` does.

Each viewer is a thread with its own keep-alive connection and session: it loads the
board page once, reads its version, then every ``POLL_MS`` (``board.js``'s interval,
read from the file) asks the board's poll URL for what changed since the version it
holds, with the headers ``board.js`` sends, and takes the new version from the answer
with ``harness.web.poll_answer`` (the one reading of an answer, as ``board.js``'s
``poll()``). Each viewer starts at a random point of the first interval, so the polls
of a room are spread over time as real ones are. A poll still in flight when the next
tick comes delays it (``setInterval`` would start another); ticks missed that way are
skipped.

``run_viewers`` runs in a process of its own (forked): ``ready`` is put on ``queue``
once every viewer holds its board, then the process waits for the window (start,
end: wall-clock seconds) on ``window`` and puts its result on ``queue``.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
import urllib.parse
from pathlib import Path

from harness import ROOT
from harness.web import Answer, Client, poll_answer


def poll_interval_seconds() -> float:
    """``POLL_MS`` of ``static/js/board.js``: the browser's real interval."""
    source = (ROOT / "static" / "js" / "board.js").read_text()
    found = re.search(r"\bPOLL_MS\s*=\s*(\d+)", source)
    if not found:
        raise SystemExit(f"no POLL_MS in {Path('static/js/board.js')}")
    return int(found.group(1)) / 1000


def _viewer(spec: dict, auth: dict, offset: float, start: threading.Event, out: dict) -> None:
    client = Client(spec["port"], auth)
    board_url = f"http://127.0.0.1:{spec['port']}{spec['board_path']}"
    headers = {"HX-Request": "true", "HX-Current-URL": board_url, "X-Board-Filters": ""}
    try:
        page = poll_answer(client.get(spec["board_path"]))
    except (OSError, http.client.HTTPException) as error:
        out["setup_error"] = repr(error)
        start.wait()
        return
    version = page.version
    if page.kind != "board" or not version:
        out["setup_error"] = f"the board page gave no version ({page.kind})"
    out["ready"] = True
    start.wait()
    interval = spec["interval"]
    tick = spec["start_at"] + offset
    while tick < spec["end_at"]:
        time.sleep(max(0.0, tick - time.time()))
        path = f"{spec['poll_path']}?{urllib.parse.urlencode({'version': version or ''})}"
        try:
            answer = client.get(path, headers)
        except (OSError, http.client.HTTPException) as error:
            client.close()
            answer = Answer(0, repr(error).encode(), 0.0)
        if time.time() > spec["end_at"]:
            break
        read = poll_answer(answer)
        out["polls"].append((read.kind, len(answer.body), answer.seconds, answer.retried))
        if read.kind == "error" and len(out["samples"]) < 3:
            out["samples"].append(f"poll status={answer.status}: {answer.body[:200]!r}")
        if read.version:
            version = read.version
        tick += interval
        while tick < time.time():  # a slow answer: the ticks it covered are not sent
            tick += interval
    client.close()


def _guarded(spec: dict, auth: dict, offset: float, start: threading.Event, out: dict) -> None:
    """A viewer whose failure is reported, never a thread that dies unseen (the process
    waits for every viewer to be ready)."""
    try:
        _viewer(spec, auth, offset, start, out)
    except Exception as error:  # noqa: BLE001 - reported with the results
        out["setup_error" if not out.get("ready") else "crash"] = repr(error)


def run_viewers(spec: dict, queue, window) -> None:
    """The viewers of ``spec["auths"]`` (one each), in threads of this process."""
    import random

    rng = random.Random(spec["seed"])
    start = threading.Event()
    outs = [{"polls": [], "samples": []} for _ in spec["auths"]]
    threads = [
        threading.Thread(
            target=_guarded,
            args=(spec, auth, rng.uniform(0, spec["interval"]), start, out),
            daemon=True,
        )
        for auth, out in zip(spec["auths"], outs, strict=True)
    ]
    for thread in threads:
        thread.start()
    while not all(out.get("ready") or out.get("setup_error") for out in outs):
        time.sleep(0.05)
    queue.put(
        {"ready": True, "setup_errors": [o["setup_error"] for o in outs if "setup_error" in o]}
    )
    spec["start_at"], spec["end_at"] = window.get()
    start.set()
    time.sleep(max(0.0, spec["start_at"] - time.time()))
    cpu0 = time.process_time()
    for thread in threads:
        thread.join()
    queue.put(
        {
            "polls": [poll for out in outs for poll in out["polls"]],
            "samples": [
                *(out["crash"] for out in outs if "crash" in out),
                *(sample for out in outs for sample in out["samples"]),
            ][:3],
            "crashed": sum(1 for out in outs if "crash" in out),
            "cpu_s": time.process_time() - cpu0,
        }
    )
