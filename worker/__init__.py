"""The runtime: Celery app, settings, database, models, receiver, CLI, Twilio client.

``celery -A worker`` finds the app through the lazy ``celery`` attribute below, so that
importing ``worker.settings`` or ``worker.models`` does not build the Celery app.
"""

from __future__ import annotations

import sys
from typing import Any


def __getattr__(name: str) -> Any:
    if name == "celery":
        _refuse_unusable_settings()
        # Before anything imports prometheus_client: the pool children inherit the directory.
        from worker.metrics import prepare_multiprocess_dir

        prepare_multiprocess_dir()
        from worker.app import app

        return app
    raise AttributeError(f"module 'worker' has no attribute {name!r}")


def _refuse_unusable_settings() -> None:
    """`celery -A worker worker|beat` stops here, with one readable message, when settings are unusable.

    Without this the SettingsError surfaces as a long traceback from inside Celery's option
    parsing; an operator needs the name of the setting, not the stack. Exit code 78 is
    EX_CONFIG, the same code `msgworker` uses.
    """
    from worker.settings import SettingsError, get_settings

    try:
        get_settings()
    except SettingsError as exc:
        sys.stderr.write(f"msgworker: {exc}\n")
        raise SystemExit(78) from None
