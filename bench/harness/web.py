"""An HTTP client for the bench: keep-alive, cookies, the login form, and the board
read with the tests' own HTML parser (``tests/pages.py``)."""

from __future__ import annotations

import http.client
import socket
import time
import urllib.parse
from dataclasses import dataclass
from email.message import Message
from http.cookies import SimpleCookie

from tests import pages


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(port: int, method: str, path: str, body: str = "", headers: dict | None = None):
    """One request on a connection of its own: (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body or None, headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


@dataclass
class Answer:
    status: int
    body: bytes
    seconds: float
    retried: bool = False
    headers: Message | None = None


class Client:
    """One user's browser, roughly: a keep-alive connection, a cookie jar, and the
    headers htmx adds (``X-CSRFToken`` from the CSRF cookie, as Django documents for
    scripts). Not thread-safe; one per process or thread."""

    def __init__(self, port: int, auth: dict[str, str] | None = None) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.jar: dict[str, str] = {}
        self.fixed = dict(auth or {})

    def headers(self) -> dict[str, str]:
        """What a logged-in page's requests carry: its cookies and the CSRF header."""
        if self.fixed:
            return dict(self.fixed)
        out = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.jar.items())}
        if csrf_token := self.cookie("csrftoken"):
            out["X-CSRFToken"] = csrf_token
        return out

    def cookie(self, name: str) -> str | None:
        """A cookie by Django's default name, or by the __Host- name production gives it."""
        return self.jar.get(f"__Host-{name}", self.jar.get(name))

    def send(self, method: str, path: str, body: str | None = None, headers=None) -> Answer:
        """One request; the time counted is the successful attempt's.

        A keep-alive connection the server closed while idle (gunicorn's keepalive is
        2 s) fails before any answer; like a browser, send again once on a fresh one.
        """
        headers = {**self.headers(), **(headers or {})}
        reused = self.conn.sock is not None
        for attempt in (0, 1):
            started = time.perf_counter()
            try:
                self.conn.request(method, path, body, headers)
                response = self.conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                if attempt or not reused:
                    raise
                continue
            elapsed = time.perf_counter() - started
            if not self.fixed:
                for header in response.headers.get_all("Set-Cookie") or ():
                    parsed = SimpleCookie()
                    parsed.load(header)
                    self.jar.update({name: morsel.value for name, morsel in parsed.items()})
            return Answer(response.status, data, elapsed, bool(attempt), response.headers)
        raise AssertionError("unreachable")

    def get(self, path: str, headers=None) -> Answer:
        return self.send("GET", path, None, headers)

    def post(self, path: str, data: dict, headers=None) -> Answer:
        form = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        return self.send("POST", path, urllib.parse.urlencode(data), form)

    def log_in(self, username: str, password: str, then: str) -> dict[str, str]:
        """Log in through the login form, open ``then``; returns the headers its
        requests carry (cookies and CSRF), to hand to another process."""
        page = self.get("/accounts/login/")
        csrf_token = self.cookie("csrftoken")
        if page.status != 200 or not csrf_token:
            raise SystemExit(f"login page: {page.status}")
        form = {"username": username, "password": password, "csrfmiddlewaretoken": csrf_token}
        answer = self.post("/accounts/login/", form)
        if answer.status != 302 or not self.cookie("sessionid"):
            raise SystemExit(f"login of {username} failed: {answer.status}")
        landing = self.get(then)
        if landing.status != 200 or ("/board/" in then and not board_page(landing.body).version):
            raise SystemExit(f"{then} for {username}: {landing.status}, not a board")
        return self.headers()

    def close(self) -> None:
        self.conn.close()


@dataclass
class BoardPage:
    """The board as the page shows it: its version, the card ids per column in page
    order, and each shown card's version."""

    version: str
    columns: dict[int, list[int]]
    card_versions: dict[int, int]


def board_page(html: bytes | str) -> BoardPage:
    parsed = pages.parse(html)
    board = parsed.by_id.get("board", {})
    versions = {}
    for cards in parsed.cards.values():
        for card in cards:
            version = parsed.by_id.get(f"card-{card}", {}).get("data-version")
            if version is not None:
                versions[card] = int(version)
    return BoardPage(board.get("data-version") or "", dict(parsed.cards), versions)


def card_version(html: bytes | str, card_id: int) -> int | None:
    """The version of card ``card_id`` in an answer's card fragment, if it is there.

    Only the card's start tag is parsed: the clients share the two cores with the
    server, and parsing a whole answer would take CPU from the server being measured.
    """
    data = html.encode() if isinstance(html, str) else html
    found = data.find(b'id="card-%d"' % card_id)
    if found < 0:
        return None
    tag = data[data.rfind(b"<", 0, found) : data.find(b">", found) + 1]
    attributes = pages.parse(tag).by_id.get(f"card-{card_id}")
    version = attributes.get("data-version") if attributes else None
    return int(version) if version is not None else None


@dataclass(frozen=True)
class PollAnswer:
    """What a poll's answer means to the board's page: ``kind`` is 'nothing' (204),
    'delta' (what changed, applied in place), 'board' (the whole board, swapped in) or
    'error'; ``version``: the version the page holds afterwards (None: unchanged)."""

    kind: str
    version: str | None


# The answer's headers board.js reads (boards.views.board.board_poll sets them).
DELTA_HEADER = "X-Board-Delta"
VERSION_HEADER = "X-Board-Version"


def poll_answer(answer: Answer) -> PollAnswer:
    """Read a poll's answer as ``board.js``'s ``poll()`` does, and nothing more.

    204: nothing changed (the version to hold next in ``X-Board-Version`` when it moved
    on, which board.js takes while the page still holds the one it sent). 200 with
    ``X-Board-Delta: 1``: a delta, the new version in ``X-Board-Version``. Any other
    200: the whole board, whose new version is the ``data-version`` of its ``#board``
    element (only that start tag is parsed, as in ``card_version``: the viewers share
    the cores with the server). Anything else is an error: the page keeps its version
    (and the next poll asks again).
    """
    if answer.status == 204:
        held = answer.headers.get(VERSION_HEADER) if answer.headers is not None else None
        return PollAnswer("nothing", held or None)
    if answer.status != 200:
        return PollAnswer("error", None)
    headers = answer.headers
    if headers is not None and headers.get(DELTA_HEADER) == "1":
        return PollAnswer("delta", headers.get(VERSION_HEADER) or None)
    data = answer.body
    found = data.find(b'id="board"')
    if found < 0:
        return PollAnswer("error", None)
    tag = data[data.rfind(b"<", 0, found) : data.find(b">", found) + 1]
    attributes = pages.parse(tag).by_id.get("board")
    version = attributes.get("data-version") if attributes else None
    return PollAnswer("board", version or None)
