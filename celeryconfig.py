"""Celery settings, read from the environment once via worker.settings.

Delivery semantics: every task is idempotent (keyed by a database unique constraint), so
the defaults favour never losing a task over never running one twice: acks_late with
reject-on-worker-lost, prefetch 1. Future work waits in Postgres with a not-before time,
never as a long ETA in Redis (which redelivers after the visibility timeout).
"""

from __future__ import annotations

from worker.beat import BEAT_SCHEDULE
from worker.settings import get_settings

_settings = get_settings()

broker_url = _settings.CELERY_BROKER_URL
broker_connection_retry_on_startup = True
# Longest task (hard limit below) is well under this, so Redis never redelivers a task
# that is still running.
broker_transport_options = {"visibility_timeout": 3600}
task_default_queue = "msgworker"

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
task_ignore_result = True
result_backend = None

task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
task_time_limit = 300
task_soft_time_limit = 240
# A broker outage must not stall a webhook response: fail fast, the sweeper re-enqueues.
task_publish_retry = True
task_publish_retry_policy = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}

worker_hijack_root_logger = False
worker_send_task_events = False
timezone = "UTC"
enable_utc = True

beat_schedule = BEAT_SCHEDULE
