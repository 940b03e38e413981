"""The web server's access log names paths, never query strings: the board's filters
and the archive's search carry prospects' names and e-mails there."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

from gunicorn.config import Config
from gunicorn.glogging import Logger

from vsm import gunicorn_conf


def test_an_access_log_line_has_the_path_without_the_query_string():
    config = Config()
    for name in ("accesslog", "access_log_format"):
        config.set(name, getattr(gunicorn_conf, name))
    logger = Logger(config)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/streams/pumps/board/poll/?q=ada.keller%40nordwerk.example",
        "PATH_INFO": "/streams/pumps/board/poll/",
        "QUERY_STRING": "q=ada.keller%40nordwerk.example",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
    }
    request = SimpleNamespace(headers=[], method="GET", path="/streams/pumps/board/poll/")
    response = SimpleNamespace(status="200 OK", response_length=12, headers=[], sent=12)

    line = config.access_log_format % logger.atoms(
        response, request, environ, datetime.timedelta(milliseconds=4)
    )

    assert '"GET /streams/pumps/board/poll/ HTTP/1.1" 200' in line
    assert "nordwerk" not in line and "q=" not in line
