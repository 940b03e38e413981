"""The production settings (``vsm.settings``, read from the environment) with two changes.

``collectstatic`` writes into ``bench/results/staticfiles`` (ignored by git) instead of
the project's ``staticfiles/``, so a benchmark run touches nothing outside ``bench/``.
``ROOT_URLCONF`` is ``benchconf.urls``: the app's URLs plus one bench-only view (an
empty POST, the floor of a request), which the app itself never serves.
Nothing else differs: middleware, database options (``CONN_MAX_AGE``, health checks),
templates, password hashers and the manifest static storage are the production ones.
"""

from pathlib import Path

from vsm.settings import *  # noqa: F403

STATIC_ROOT = Path(__file__).resolve().parent.parent / "results" / "staticfiles"
ROOT_URLCONF = "benchconf.urls"
