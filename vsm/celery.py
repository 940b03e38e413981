"""The Celery application: configured from Django settings (namespace CELERY_)."""

import os
from typing import Any

from celery import Celery
from celery.signals import beat_init, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vsm.settings")

app = Celery("vsm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The settings give the broker the socket timeouts of a web request, which must not
# wait on a Redis that hangs (settings.VSM_REDIS_TIMEOUT_SECONDS). A worker and beat
# keep nobody waiting, and what they publish (the sweeper's catch-up, retries, the
# schedule) is better late than dropped, so they wait longer.
PATIENT_BROKER_TIMEOUTS = {"socket_connect_timeout": 1.0, "socket_timeout": 2.0}


@worker_init.connect
@beat_init.connect
def _patient_broker(**kwargs: Any) -> None:
    """Before the worker or beat connects to the broker: the patient timeouts."""
    app.conf.broker_transport_options = {
        **app.conf.broker_transport_options,
        **PATIENT_BROKER_TIMEOUTS,
    }
