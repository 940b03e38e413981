"""gunicorn's settings for VSM's web server (`--config python:vsm.gunicorn_conf`, as
the image and docker-compose.yml run it); the command line and GUNICORN_CMD_ARGS
override them, e.g. GUNICORN_CMD_ARGS="--workers 4 --threads 8". Not named
gunicorn.conf.py at the root, which gunicorn would read by itself in every server
started there (the benchmarks choose their own workers).

Threaded workers: a request that waits (on another's row lock, at most
boards.services.moves.MOVE_LOCK_TIMEOUT_SECONDS; on a Redis that hangs, at most about
settings.VSM_REDIS_TIMEOUT_SECONDS) holds one thread, not a whole worker, so board
reads go on beside it. Reads take no row locks and never wait on a move's.
"""

import os

worker_class = "gthread"
workers = 3
# Each thread keeps its own database connection (CONN_MAX_AGE): workers x threads per
# container, well under PostgreSQL's 100 with a few containers.
threads = 4
# With gthread the heartbeat comes from each worker's main loop, not from its requests:
# a worker whose loop stops this long is killed and replaced. A request's own bounds
# are the database's (below, and vsm.transactions for writes) and Redis's.
timeout = 30
graceful_timeout = 30
# Every statement of a web request gives up after this many seconds (vsm/settings.py
# reads it): a query that hangs answers "busy, try again" instead of holding a thread.
os.environ.setdefault("DATABASE_STATEMENT_TIMEOUT", "10")
# The access log names the path, never the query string: the board's filters and the
# archive's search carry prospects' names and e-mails there (%(U)s is the path alone).
accesslog = "-"
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
