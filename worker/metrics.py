"""Prometheus metrics: counters and histograms of what the processes did (docs/operations.md#metrics-and-alerts).

Every process counts into ``prometheus_client``'s multiprocess mode: each process (a Celery
prefork child, a uvicorn worker) writes its own memory-mapped files in
``PROMETHEUS_MULTIPROC_DIR`` and the endpoint adds them up at scrape time, so a counter
does not reset or split when the pool replaces a child. The library picks the mode once,
when it is first imported, from that variable: so nothing here imports it at module level,
and the long-running commands (``msgworker web``, ``celery -A worker``) call
``prepare_multiprocess_dir`` before anything counts. Without it (tests, one-off commands) the
values live in the process, which is right for a single process.

What happens inside a transaction is counted only if the transaction commits
(``worker.after_commit.call_after_commit``): a grouped ingest that is undone and replayed row by row, or a send batch
that rolls back, must not count twice. Labels are low-cardinality by construction: kinds,
reasons, statuses, purposes, Twilio error codes; never a number or a body.

The gauges that need the database (inbox lag, outbox depth, review items) are not here: the
worker's endpoint computes them at scrape time (worker/metrics_worker.py), so the receiver's
``/metrics`` touches no database.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy.orm import Session

from compliance.consent_rules import combine
from compliance.gate import Outcome, SendDecision, SendFacts, SendPurpose
from worker.after_commit import call_after_commit

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = [
    "COUNTED_FAMILIES",
    "MULTIPROC_ENV",
    "consent_events",
    "exposition",
    "multiprocess_registry",
    "prepare_multiprocess_dir",
    "process_exited",
    "rate_limit_wait",
    "reconciled",
    "scrape_registry",
    "send_decided",
    "sends_accepted",
    "twilio_error",
    "webhook",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Opt-out sources that start with a webhook: their honour latency runs from its receipt.
_WEBHOOK_SOURCES = frozenset({"sms_keyword", "sms_phrase", "twilio_opt_out_type"})
# An opted-out number may get exactly one text: the confirmation of the opt-out in force.
ALLOWED_WHILE_OPTED_OUT = ("confirmation", "repeat_confirmation", "other")
WEBHOOK_OUTCOMES = ("stored", "400", "403", "413", "415", "503")


def prepare_multiprocess_dir() -> str:
    """Use ``PROMETHEUS_MULTIPROC_DIR``, or create a fresh one for this run (removed when this process exits).

    Called by the parent of every process that counts, before any of them imports the library:
    the children inherit the variable (forked Celery children, spawned uvicorn workers). An
    operator's own directory must be emptied before each start (the library's rule: stale files
    of dead processes would be added in); the per-run default never has any.
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        return given
    if "prometheus_client" in sys.modules:
        # The library has already chosen in-process values; files would never be written.
        raise RuntimeError("prepare_multiprocess_dir must run before prometheus_client is imported")
    owner = os.getpid()
    _remove_orphans()
    path = tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{owner}-")
    os.environ[MULTIPROC_ENV] = path
    atexit.register(_remove_dir, path, owner)
    return path


_DIR_PREFIX = "msgworker-metrics-"


def _remove_orphans() -> None:
    """Per-run directories whose owner is gone: a process ended by a signal runs no atexit handler
    (uvicorn re-raises SIGTERM after its shutdown; SIGKILL), so each start sweeps what they left."""
    for entry in Path(tempfile.gettempdir()).glob(f"{_DIR_PREFIX}*-*"):
        owner = entry.name.removeprefix(_DIR_PREFIX).split("-", 1)[0]
        if owner.isdigit() and not _alive(int(owner)):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _remove_dir(path: str, owner: int) -> None:
    # Forked children inherit the handler; only the process that made the directory removes it.
    if os.getpid() == owner:
        shutil.rmtree(path, ignore_errors=True)


def process_exited(pid: int) -> None:
    """A Celery pool child is ending: the library's bookkeeping for a dead process (its live gauges)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class _Metrics:
    """The metric objects, built on first use (after ``prepare_multiprocess_dir``)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.webhooks: Counter = Counter(
            "msgworker_webhooks",
            "Webhooks answered by the receiver, by provider and outcome (stored = 2xx, else the HTTP status).",
            ["provider", "outcome"],
        )
        self.consent_events: Counter = Counter(
            "msgworker_consent_events", "Consent ledger events committed, by kind and source.", ["kind", "source"]
        )
        self.honour: Histogram = Histogram(
            "msgworker_opt_out_honour_seconds",
            "Webhook received -> opt-out committed in the ledger (texted opt-outs).",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900),
        )
        self.confirmation: Histogram = Histogram(
            "msgworker_opt_out_confirmation_seconds",
            "Opt-out recorded -> its confirmation accepted by Twilio.",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600),
        )
        self.decisions: Counter = Counter(
            "msgworker_send_decisions",
            "Send gate decisions committed, by outcome, reason and purpose.",
            ["outcome", "reason", "purpose"],
        )
        self.opted_out_allowed: Counter = Counter(
            "msgworker_sends_allowed_while_opted_out",
            "Sends the gate allowed to an opted-out number: 'confirmation' is the one permitted text; "
            "any other kind breaks the invariant.",
            ["kind"],
        )
        self.twilio_errors: Counter = Counter(
            "msgworker_twilio_errors",
            "Twilio API errors on sends, by Twilio error code ('transport': no answer).",
            ["code"],
        )
        self.rate_limit: Histogram = Histogram(
            "msgworker_rate_limit_wait_seconds",
            "Allowed sends the per-sender rate limit sent back to wait, and for how long.",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
        )
        self.reconciled: Counter = Counter(
            "msgworker_reconciled_rows",
            "Outbox rows the reconciler settled: found at Twilio, or absent and requeued.",
            ["result"],
        )
        # Series an alert watches exist from the start at 0: Prometheus' increase() does not see a
        # series' first sample, so one born at 1 would never fire.
        for kind in ALLOWED_WHILE_OPTED_OUT:
            self.opted_out_allowed.labels(kind=kind)
        for result in ("found", "absent"):
            self.reconciled.labels(result=result)


@cache
def _m() -> _Metrics:
    return _Metrics()


# The families this module exposes (the worker's endpoint adds its database gauges).
COUNTED_FAMILIES = (
    "msgworker_webhooks_total",
    "msgworker_consent_events_total",
    "msgworker_opt_out_honour_seconds",
    "msgworker_opt_out_confirmation_seconds",
    "msgworker_send_decisions_total",
    "msgworker_sends_allowed_while_opted_out_total",
    "msgworker_twilio_errors_total",
    "msgworker_rate_limit_wait_seconds",
    "msgworker_reconciled_rows_total",
)


class _HasStatus(Protocol):
    status_code: int


R = TypeVar("R", bound=_HasStatus)


def webhook(provider: str, response: R) -> R:
    """Count the receiver's answer and hand it back (in memory: no database on the hot path)."""
    status = response.status_code
    _m().webhooks.labels(provider=provider, outcome="stored" if 200 <= status < 300 else str(status)).inc()
    return response


# --- counted when the caller's transaction commits ---------------------------------------


def consent_events(session: Session, events: Sequence[tuple[str, str, datetime]]) -> None:
    """New ledger events (kind, source, occurred_at), counted at commit; a texted opt-out's honour
    latency is commit time minus its occurred_at, which ingest sets to the webhook's receipt."""
    if not events:
        return

    def count() -> None:
        m, now = _m(), time.time()
        for kind, source, occurred_at in events:
            m.consent_events.labels(kind=kind, source=source).inc()
            if kind == "opt_out" and source in _WEBHOOK_SOURCES:
                m.honour.observe(max(now - occurred_at.timestamp(), 0.0))

    call_after_commit(session, count)


def send_decided(session: Session, facts: SendFacts, decision: SendDecision) -> None:
    """One gate decision, counted at commit. An allowed send to an opted-out number is also
    classified here, from the facts rather than from the gate's own rules, so a gate bug shows."""
    reason = decision.reason.value if decision.reason else "none"
    kind = None
    if decision.outcome is Outcome.ALLOWED:
        consent = combine(facts.business, facts.station)
        if consent.opted_out:
            confirms = (
                facts.purpose is SendPurpose.COMPLIANCE and facts.in_reply_to_event_id in consent.opt_out_event_ids
            )
            kind = (
                ("repeat_confirmation" if facts.confirmation_already_sent else "confirmation") if confirms else "other"
            )
    labels = {"outcome": decision.outcome.value, "reason": reason, "purpose": facts.purpose.value}

    def count() -> None:
        m = _m()
        m.decisions.labels(**labels).inc()
        if kind is not None:
            m.opted_out_allowed.labels(kind=kind).inc()

    call_after_commit(session, count)


def rate_limit_wait(session: Session, seconds: float) -> None:
    call_after_commit(session, lambda: _m().rate_limit.observe(seconds))


def twilio_error(session: Session, code: int | str | None) -> None:
    label = "transport" if code is None else str(code)
    call_after_commit(session, lambda: _m().twilio_errors.labels(code=label).inc())


def reconciled(session: Session, result: str) -> None:
    call_after_commit(session, lambda: _m().reconciled.labels(result=result).inc())


def sends_accepted(session: Session, confirmation_seconds: Sequence[float]) -> None:
    """Opt-out confirmations Twilio accepted: seconds from the opt-out's recording to the acceptance."""
    if not confirmation_seconds:
        return

    def count() -> None:
        for seconds in confirmation_seconds:
            _m().confirmation.observe(max(seconds, 0.0))

    call_after_commit(session, count)


# --- exposition ---------------------------------------------------------------------------


def multiprocess_registry() -> CollectorRegistry | None:
    """A registry adding up every process's files, or None when this process counts in memory."""
    from prometheus_client import CollectorRegistry, multiprocess, values

    if not getattr(values.ValueClass, "_multiprocess", False):
        return None
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def scrape_registry(extra: Sequence[Any] = ()) -> CollectorRegistry:
    """What a scrape reads: every process's files (or this process's values), plus ``extra`` collectors."""
    from prometheus_client import REGISTRY, CollectorRegistry

    _m()  # the families exist (at 0) before the first event
    registry = multiprocess_registry()
    if registry is None:
        registry = CollectorRegistry()
        registry.register(_Forward(REGISTRY))
    for collector in extra:
        registry.register(collector)
    return registry


def exposition(extra: Sequence[Any] = ()) -> tuple[bytes, str]:
    """The text format for a scrape: (body, content type)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(scrape_registry(extra)), CONTENT_TYPE_LATEST


class _Forward:
    """The in-process registry's families, as one collector of another registry."""

    def __init__(self, source: CollectorRegistry) -> None:
        self._source = source

    def collect(self) -> Any:
        return self._source.collect()
