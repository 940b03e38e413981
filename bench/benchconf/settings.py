"""The production settings (``vsm.settings``, read from the environment) with one change.

``collectstatic`` writes into ``bench/results/staticfiles`` (ignored by git) instead of
the project's ``staticfiles/``, so a benchmark run touches nothing outside ``bench/``.
Nothing else differs: middleware, database options (``CONN_MAX_AGE``, health checks),
templates, password hashers and the manifest static storage are the production ones.
"""

from pathlib import Path

from vsm.settings import *  # noqa: F403

STATIC_ROOT = Path(__file__).resolve().parent.parent / "results" / "staticfiles"
