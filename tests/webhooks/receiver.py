"""An outside service that receives webhooks: a real HTTP server on 127.0.0.1, in a
thread, that verifies each delivery's signature with the README's own verifier (the
code block after the "webhook-verifier" marker in README.md, run as it is printed)
and records what it got. It shares no code with the product."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[2] / "README.md"
VERIFIER_BLOCK = re.compile(r"<!-- webhook-verifier[^>]*-->\s*```python\n(.*?)```", re.S)


def readme_verifier():
    """The ``verify(secret, header, body)`` function the README prints."""
    match = VERIFIER_BLOCK.search(README.read_text())
    assert match, "README.md has no webhook verifier block"
    namespace: dict[str, Any] = {}
    exec(compile(match.group(1), "README.md#webhook-verifier", "exec"), namespace)  # noqa: S102
    return namespace["verify"]


verify = readme_verifier()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    received_at: float
    answered: int

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """``url`` receives POSTs. ``secrets``: the secrets it accepts (set it once the
    webhook is made). ``answers``: statuses to answer, in turn (then 200). ``delay``:
    seconds to wait before answering (a receiver that hangs)."""

    def __init__(self) -> None:
        self.secrets: list[str] = []
        self.answers: deque[int] = deque()
        self.delay = 0.0
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                header = self.headers.get("X-VSM-Signature", "")
                verified = any(verify(secret, header, body) for secret in receiver.secrets)
                with receiver.lock:
                    answer = receiver.answers.popleft() if receiver.answers else 200
                if receiver.delay:
                    receiver.release.wait(receiver.delay)
                with receiver.lock:
                    receiver.received.append(
                        Received(
                            path=self.path,
                            headers={k.lower(): v for k, v in self.headers.items()},
                            body=body,
                            verified=verified,
                            received_at=time.monotonic(),
                            answered=answer,
                        )
                    )
                try:
                    self.send_response(answer)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/vsm"

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def payloads(self) -> list[dict]:
        with self.lock:
            return [item.payload for item in self.received]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"received {len(self.received)} of {count} deliveries")
