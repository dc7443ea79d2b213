"""The runtime: Celery app, settings, database, models, receiver, CLI, Twilio client.

``celery -A worker`` finds the app through the lazy ``celery`` attribute below, so that
importing ``worker.settings`` or ``worker.models`` does not build the Celery app.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "celery":
        from worker.app import app

        return app
    raise AttributeError(f"module 'worker' has no attribute {name!r}")
