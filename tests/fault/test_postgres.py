"""PostgreSQL stopped, frozen and restarted under the real receiver, worker and beat (a private cluster each)."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import httpx
import pytest

from tests.fault.conftest import Stack, Text, traffic
from tests.support.processes import wait_for

pytestmark = pytest.mark.fault


def timed(client: httpx.Client, url: str) -> tuple[int, float]:
    started = time.monotonic()
    try:
        status = client.get(url).status_code
    except httpx.HTTPError:
        status = 0
    return status, time.monotonic() - started


def timed_post(stack: Stack, client: httpx.Client, base: str, text: Text) -> tuple[int, float]:
    started = time.monotonic()
    code = stack.post(client, base, text)
    return code, time.monotonic() - started


def test_postgres_stopped_is_503_at_once_and_the_receiver_recovers_without_a_restart(stack: Stack) -> None:
    """A warmed receiver whose database is shut down answers webhooks 503 with Retry-After within a second
    (/readyz 503, /healthz 200); started again, the same webhooks are stored and processed once."""
    base = stack.receiver()
    stack.worker()
    warm, later = traffic(5), traffic(10)
    assert set(stack.post_all(base, warm).values()) == {200}
    stack.pg.stop()
    raw_started = time.monotonic()
    answers = stack.post_all(base, later)
    took = time.monotonic() - raw_started
    assert set(answers.values()) == {503}
    assert took < 2.0, f"{len(later)} refusals took {took:.2f}s"
    with httpx.Client(timeout=10) as client:
        assert client.get(base + "/healthz").status_code == 200
        ready, ready_took = timed(client, base + "/readyz")
        assert (ready, ready_took < 2.0) == (503, True)
        resp = client.post(base + "/webhooks/twilio/sms")  # unsigned: refused before the database is asked
        assert resp.status_code == 403
    stack.pg.start()
    assert set(stack.post_all(base, later).values()) == {200}  # Twilio's retry
    stack.wait_processed([*warm, *later])
    stack.assert_exactly_once([*warm, *later])


def test_postgres_frozen_fails_fast_and_everything_answered_2xx_is_processed_once_after_the_thaw(
    stack: Stack,
) -> None:
    """With the postmaster and every backend SIGSTOPped after warm-up: webhooks get 503 within 5 s (at once when
    the waiting queue is full), /readyz answers within 2 s, /healthz throughout, the worker gives up on its
    silent connections instead of hanging; after SIGCONT, the webhooks answered 2xx (and Twilio's retries of the
    refused ones) are each processed once, every STOP recorded and confirmed once."""
    base = stack.receiver(WEBHOOK_MAX_WAITING="8")
    worker = stack.worker()
    stack.beat()
    warm = traffic(10)
    assert set(stack.post_all(base, warm).values()) == {200}
    stack.wait_processed(warm)

    health: list[tuple[int, float]] = []
    ready: list[tuple[int, float]] = []
    frozen = threading.Event()

    def watch() -> None:
        with httpx.Client(timeout=10) as client:
            while frozen.is_set():
                health.append(timed(client, base + "/healthz"))
                ready.append(timed(client, base + "/readyz"))
                time.sleep(0.2)

    during = traffic(24)
    stack.pg.freeze()
    frozen.set()
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with httpx.Client(timeout=30) as client, concurrent.futures.ThreadPoolExecutor(24) as pool:
            timings = list(pool.map(lambda t: timed_post(stack, client, base, t), during))
        wait_for(lambda: "database_no_answer" in worker.log(), timeout=20, what="the worker to give up on the "
                 "silent database", log=worker.log_path)
    finally:
        frozen.clear()
        watcher.join()
        stack.pg.thaw()

    codes = [code for code, _ in timings]
    assert set(codes) == {503}, codes
    assert max(took for _, took in timings) < 5.0, sorted(took for _, took in timings)[-3:]
    assert min(took for _, took in timings) < 0.5, "a full queue must refuse at once"
    assert health, "/healthz was never asked"
    assert all(status == 200 and took < 0.5 for status, took in health), health
    assert ready, "/readyz was never asked"
    assert all(status == 503 and took < 2.0 for status, took in ready), ready

    retried = stack.post_all(base, during)  # Twilio's retries, after the thaw
    assert set(retried.values()) == {200}, retried
    everything = [*warm, *during]
    stack.wait_processed(everything)
    stack.assert_exactly_once(everything)
    stack.wait_confirmations(everything)
    assert worker.alive, "the worker recovered without a restart"


def test_postgres_restarted_under_load_processes_every_2xx_exactly_once(stack: Stack) -> None:
    """Webhooks posted without pause while PostgreSQL restarts: some get 503, and every one answered 2xx (and
    every refused one retried after) is processed exactly once, every STOP recorded and confirmed once."""
    base = stack.receiver()
    stack.worker()
    stack.beat()
    texts = traffic(240)
    answers: dict[str, int] = {}

    def load() -> None:
        answers.update(stack.post_all(base, texts, threads=4))

    poster = threading.Thread(target=load)
    poster.start()
    wait_for(lambda: stack.rows("SELECT count(*) FROM core.webhook_inbox")[0][0] >= 40, timeout=30,
             what="load under way")
    stack.pg.restart()
    poster.join()
    accepted = [t for t in texts if answers[t.sid] == 200]
    refused = [t for t in texts if answers[t.sid] != 200]
    assert set(answers.values()) <= {200, 503}, answers
    assert accepted
    stack.wait_processed(accepted)
    stack.assert_exactly_once(accepted)
    assert set(stack.post_all(base, refused).values()) <= {200}  # Twilio's retries
    stack.wait_processed(texts)
    stack.assert_exactly_once(texts)
    stack.wait_confirmations(texts)
    print(f"restart under load: {len(accepted)} answered 200, {len(refused)} refused and retried")
