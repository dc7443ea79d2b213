"""The Celery main process loads, before its pool forks, what children would each load on first use."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# Run in a fresh interpreter: the test process has long imported everything.
_PROBE = """
import json, sys
from celery import signals
import worker.app  # noqa: F401 - connects the signal handlers
from compliance import business_days
watched = ["twilio.rest.api.v2010.account.message", "holidays.countries.united_states"]
before = {m: m in sys.modules for m in watched}
signals.worker_init.send(sender=None)
after = {m: m in sys.modules for m in watched}
print(json.dumps({"before": before, "after": after, "years": business_days._federal_holidays.cache_info().currsize}))
"""


def test_worker_init_imports_send_and_review_modules_before_the_fork() -> None:
    """twilio's REST modules and the US holiday calendar are loaded by worker_init (main process).

    Without it each prefork child imported them in its first send task or first review (~0.15 s
    of CPU each, py-spy: ~10% of the worker's CPU in a 10,000-webhook realistic-mix run).
    """
    env = {**os.environ, "WORKER_METRICS_PORT": "0"}  # no metrics server in the probe
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["before"] == {"twilio.rest.api.v2010.account.message": False, "holidays.countries.united_states": False}
    assert seen["after"] == {"twilio.rest.api.v2010.account.message": True, "holidays.countries.united_states": True}
    assert seen["years"] == 2  # this year and the next, cached in the parent
