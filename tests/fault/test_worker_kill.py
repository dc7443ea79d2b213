"""SIGKILL of the worker in the middle of draining the inbox, and again in the middle of sending."""

from __future__ import annotations

import pytest

from tests.fault.conftest import Stack, traffic
from tests.support.processes import Proc, wait_for

pytestmark = pytest.mark.fault


def kill(worker: Proc) -> None:
    worker.kill()  # SIGKILL to the whole process group: the pool children die mid-task
    assert worker.popen is not None
    worker.popen.wait(timeout=10)


def test_sigkill_mid_drain_and_mid_send_loses_nothing_and_sends_no_duplicate(stack: Stack) -> None:
    """A worker killed while it drains 1,200 stored texts (half of them STOP), a second one killed while the STOP
    confirmations go out (Twilio slowed so calls are in flight), a third finishing: every text is processed once,
    every STOP is one opt-out, and the fake Twilio holds exactly one confirmation per STOP."""
    stack.fake.fail_next(100_000, hang_seconds=0.05, after_accept=True)  # accepted, answered 50 ms later
    base = stack.receiver()
    texts = traffic(1200, stop_every=2)
    assert set(stack.post_all(base, texts).values()) == {200}
    stops = sum(t.is_stop for t in texts)

    def processed() -> int:
        return int(stack.rows("SELECT count(*) FROM core.webhook_inbox WHERE status = 'processed'")[0][0])

    stack.beat()
    first = stack.worker(name="worker1", concurrency=4)
    wait_for(lambda: processed() >= 100, timeout=60, what="the drain under way", log=first.log_path)
    kill(first)
    at_first = processed()
    assert 0 < at_first < len(texts), f"not mid-drain: {at_first} of {len(texts)} processed at the kill"

    second = stack.worker(name="worker2", concurrency=4)
    wait_for(lambda: len(stack.fake.messages) >= 20, timeout=120, what="confirmations under way",
             log=second.log_path)
    kill(second)
    sent_at_kill = len(stack.fake.messages)
    assert sent_at_kill < stops, f"not mid-send: {sent_at_kill} of {stops} confirmations out at the kill"

    stack.worker(name="worker3", concurrency=4)
    stack.wait_processed(texts, timeout=180)
    stack.assert_exactly_once(texts)
    stack.wait_confirmations(texts, timeout=180)
    print(f"kill: {at_first}/{len(texts)} processed at the first kill, {sent_at_kill}/{stops} sent at the second")
