"""The drain, the sweeper and `msgworker inbox` (real database, real concurrency).

The drain owns its transactions through a scope factory: tests of one drain at a time run it
inside their own rolled-back transaction (``db_scope``); the races between drains, and the
CLI, which opens real transactions of its own, run on committed rows (``clean_db``).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from urllib.parse import urlencode

import structlog
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from tests.factories import make_station, phone, station_number
from tests.support.webhooks import meta_message_body, new_sid, sms_pairs
from worker import pii
from worker.cli import app as cli_app
from worker.db import SessionScope, session_scope
from worker.ingest import drain as drain_module
from worker.ingest.drain import MAX_ATTEMPTS, drain, sweep
from worker.ingest.service import sweep_now
from worker.locks import LockNamespace
from worker.models import Customer, Message, MessageThread, StationSender, WebhookInbox
from worker.phone import PhoneNumber

runner = CliRunner()


def store_webhook(scope: SessionScope, *, provider: str, event_id: str, content_type: str, payload: str) -> None:
    """The row the receiver stores (worker/web/inbox_store.py), written in the test's scope."""
    with scope() as session:
        session.add(WebhookInbox(provider=provider, provider_event_id=event_id, content_type=content_type,
                                 payload_encrypted=pii.encrypt(payload, kind="inbox")))


def store_sms(scope: SessionScope, *, from_: str, to: str, body: str = "hello", sid: str | None = None) -> str:
    sid = sid or new_sid()
    store_webhook(scope, provider="twilio_sms", event_id=sid, content_type="application/x-www-form-urlencoded",
                  payload=urlencode(sms_pairs(sid=sid, from_=from_, to=to, body=body)))
    return sid


def new_station(scope: SessionScope, *, page: str | None = None) -> str:
    to = station_number()
    with scope() as session:
        station = make_station(session, sms_number=to)
        if page is not None:
            session.add(StationSender(station_id=station.id, channel="facebook", address=page))
    return to


def inbox_row(scope: SessionScope, sid: str) -> dict[str, object]:
    with scope() as session:
        row = session.execute(
            text("SELECT id, status, attempts, last_error FROM core.webhook_inbox WHERE provider_event_id = :e"),
            {"e": sid},
        ).one()
    return dict(row._mapping)


def scalar(scope: SessionScope, sql: str, **params: object) -> int:
    with scope() as session:
        return int(session.execute(text(sql), params).scalar_one())


def in_threads(n: int, target: Callable[[int], None]) -> None:
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []


def test_drain_processes_everything_pending_in_batches(db_scope: SessionScope) -> None:
    """drain() claims rows in batches until none is pending; good rows processed, a bad one failed, each once."""
    to = new_station(db_scope)
    good = [store_sms(db_scope, from_=phone(), to=to) for _ in range(5)]
    bad = store_sms(db_scope, from_=phone(), to=station_number())
    stats = drain(batch_size=2, max_seconds=30, scope=db_scope)
    assert (stats.processed, stats.failed, stats.retry, stats.stopped_by) == (5, 1, 0, "empty")
    assert stats.batches == 3
    assert {inbox_row(db_scope, s)["status"] for s in good} == {"processed"}
    assert inbox_row(db_scope, bad)["status"] == "failed"
    assert {inbox_row(db_scope, s)["attempts"] for s in [*good, bad]} == {1}
    assert drain(batch_size=2, max_seconds=30, scope=db_scope).batches == 0


def test_concurrent_first_messages_from_one_number_make_one_customer_and_thread(clean_db: str) -> None:
    """Eight messages from a new number, processed by eight transactions at once: one customer, one thread."""
    to = new_station(session_scope)
    sender = phone()
    sids = [store_sms(session_scope, from_=sender, to=to, body=f"msg {i}") for i in range(8)]
    ids = [inbox_row(session_scope, s)["id"] for s in sids]
    in_threads(8, lambda i: drain_module._run_batch([ids[i]]))  # type: ignore[list-item]
    index = pii.blind_index(sender, kind="phone")
    assert scalar(session_scope, "SELECT count(*) FROM core.customers WHERE phone_index = :p", p=index) == 1
    assert scalar(session_scope, "SELECT count(*) FROM core.message_threads t JOIN core.customers c"
                  " ON c.id = t.customer_id WHERE c.phone_index = :p", p=index) == 1
    assert scalar(session_scope, "SELECT count(*) FROM core.messages WHERE provider_message_id = ANY(:s)", s=sids) == 8


def test_concurrent_social_first_messages_make_one_thread(clean_db: str) -> None:
    """Six Messenger posts from one new PSID processed at once converge on one customer stub and one thread."""
    page = uuid.uuid4().hex[:15]
    new_station(session_scope, page=page)
    psid = uuid.uuid4().hex[:16]
    for i in range(6):
        raw = meta_message_body(page_id=page, sender_id=psid, mid=f"m{i}{psid}").decode()
        store_webhook(session_scope, provider="meta", event_id=f"sha256:{i}{psid}", content_type="application/json",
                      payload=raw)
    with session_scope() as session:
        ids = session.execute(text("SELECT id FROM core.webhook_inbox WHERE provider = 'meta'")).scalars().all()
    in_threads(6, lambda i: drain_module._run_batch([ids[i]]))
    with session_scope() as session:
        threads = session.execute(select(MessageThread).where(MessageThread.external_thread_id == psid)).scalars().all()
        assert len(threads) == 1
        assert session.execute(select(func.count()).select_from(Customer).where(
            Customer.id == threads[0].customer_id)).scalar_one() == 1
        assert session.execute(select(func.count()).select_from(Message).where(
            Message.thread_id == threads[0].id)).scalar_one() == 6


def test_two_drains_at_once_process_each_row_exactly_once(clean_db: str) -> None:
    """Two drains racing over the same backlog (many numbers, some repeated) split it without deadlock or repeats."""
    to = new_station(session_scope)
    senders = [phone() for _ in range(15)]
    sids = [store_sms(session_scope, from_=senders[i % 15], to=to) for i in range(60)]
    results: list[drain_module.DrainStats] = []
    in_threads(2, lambda _i: results.append(drain(batch_size=7, max_seconds=60)))
    assert sum(r.processed for r in results) == 60
    assert sum(r.retry + r.failed for r in results) == 0
    assert scalar(session_scope, "SELECT count(*) FROM core.messages WHERE provider_message_id = ANY(:s)", s=sids) == 60
    assert scalar(session_scope,
                  "SELECT count(*) FROM core.webhook_inbox WHERE status = 'processed' AND attempts = 1") == 60


def test_claimed_rows_are_leased_and_attempts_survive_a_crash(db_scope: SessionScope) -> None:
    """A claim counts the attempt at once; a claim that never commits its work leaves the row pending and leased."""
    to = new_station(db_scope)
    sid = store_sms(db_scope, from_=phone(), to=to)
    claimed = drain_module._claim(10, db_scope)  # ... and the worker dies before processing
    assert len(claimed) == 1
    assert inbox_row(db_scope, sid)["attempts"] == 1
    assert drain_module._claim(10, db_scope) == []  # leased: another drain does not take it yet
    with db_scope() as session:  # the lease runs out
        session.execute(text("UPDATE core.webhook_inbox SET enqueued_at = now() - interval '1 hour'"))
    stats = drain(batch_size=10, max_seconds=30, scope=db_scope)
    assert stats.processed == 1
    assert inbox_row(db_scope, sid)["attempts"] == 2


def test_sweeper_gives_up_after_max_attempts_with_the_last_error(db_scope: SessionScope) -> None:
    """A row that used all its attempts is failed by the sweeper with its last error, never claimed again."""
    to = new_station(db_scope)
    sid = store_sms(db_scope, from_=phone(), to=to)
    with db_scope() as session:
        session.execute(
            text("UPDATE core.webhook_inbox SET attempts = :n, last_error = 'transient: lock timeout',"
                 " enqueued_at = now() - interval '1 hour'"),
            {"n": MAX_ATTEMPTS},
        )
    assert drain_module._claim(10, db_scope) == []
    result = sweep(grace_seconds=60, scope=db_scope)
    assert result.gave_up == 1
    row = inbox_row(db_scope, sid)
    assert row["status"] == "failed"
    assert row["last_error"] == f"gave up after {MAX_ATTEMPTS} attempts; last error: transient: lock timeout"


def test_sweep_drains_rows_left_pending_past_the_grace_period(db_scope: SessionScope) -> None:
    """Rows stored without a drain (lost kick) are processed by the sweep once older than the grace period."""
    to = new_station(db_scope)
    sids = [store_sms(db_scope, from_=phone(), to=to) for _ in range(3)]
    assert sweep(grace_seconds=60, scope=db_scope).stale == 0  # too young: nothing to do yet
    with db_scope() as session:
        session.execute(text("UPDATE core.webhook_inbox SET received_at = now() - interval '10 minutes'"))
    out = sweep_now(scope=db_scope)
    assert out["stale"] == 3
    assert out["drain"]["processed"] == 3
    assert {inbox_row(db_scope, s)["status"] for s in sids} == {"processed"}


def test_inbox_cli_lists_shows_and_retries_failed_rows(clean_db: str) -> None:
    """`inbox failed` lists the reason, `show` masks numbers, `retry` succeeds once the station exists."""
    to = station_number()
    sender = phone()
    sid = store_sms(session_scope, from_=sender, to=to, body="STOP please")
    drain(batch_size=10, max_seconds=30)
    row_id = str(inbox_row(session_scope, sid)["id"])

    listed = runner.invoke(cli_app, ["inbox", "failed"])
    assert listed.exit_code == 0, listed.output
    assert row_id in listed.output
    assert "no station has the SMS number" in listed.output
    as_json = json.loads(runner.invoke(cli_app, ["inbox", "failed", "--json"]).stdout)
    assert [r["id"] for r in as_json] == [row_id]
    assert set(as_json[0]) == {"id", "provider", "received_at", "attempts", "reason"}

    shown = runner.invoke(cli_app, ["inbox", "show", row_id, "--json"])
    assert shown.exit_code == 0, shown.output
    fields = json.loads(shown.stdout)["fields"]
    assert fields["Body"] == "<11 chars>"
    assert fields["From"] != sender
    assert fields["From"].endswith(sender[-2:])
    assert sender not in shown.stdout
    assert "STOP please" not in shown.stdout

    still_failing = runner.invoke(cli_app, ["inbox", "retry", row_id])
    assert still_failing.exit_code == 1
    assert "failed" in still_failing.output

    with session_scope() as session:
        make_station(session, sms_number=to)
    fixed = runner.invoke(cli_app, ["inbox", "retry", row_id])
    assert fixed.exit_code == 0, fixed.output
    assert "processed" in fixed.output
    assert inbox_row(session_scope, sid)["status"] == "processed"
    assert runner.invoke(cli_app, ["inbox", "failed"]).output.strip() == "no failed inbox rows"

    stats = json.loads(runner.invoke(cli_app, ["inbox", "stats", "--json"]).stdout)
    assert stats["counts"] == [{"provider": "twilio_sms", "status": "processed", "rows": 1}]


def test_inbox_cli_retry_all_and_bad_ids(clean_db: str) -> None:
    """`retry --all` re-runs every failed row; an unknown or malformed id is a clear error."""
    to = station_number()
    sids = [store_sms(session_scope, from_=phone(), to=to) for _ in range(3)]
    drain(batch_size=10, max_seconds=30)
    assert {inbox_row(session_scope, s)["status"] for s in sids} == {"failed"}
    with session_scope() as session:
        make_station(session, sms_number=to)
    result = runner.invoke(cli_app, ["inbox", "retry", "--all"])
    assert result.exit_code == 0, result.output
    assert "retried 3: 3 processed, 0 failed" in result.output
    missing = runner.invoke(cli_app, ["inbox", "retry", str(uuid.uuid4())])
    assert missing.exit_code == 1
    assert "no inbox row" in missing.output
    malformed = runner.invoke(cli_app, ["inbox", "show", "nope"])
    assert malformed.exit_code == 1
    assert "not an inbox id" in malformed.output


def test_drain_releases_the_kick_before_its_final_look(db_scope: SessionScope) -> None:
    """A row committed while the drain releases its kick is still taken by that drain's final look."""
    to = new_station(db_scope)
    store_sms(db_scope, from_=phone(), to=to)
    late: list[str] = []

    def release() -> None:
        if not late:  # a webhook that found the kick still taken commits just before the release
            late.append(store_sms(db_scope, from_=phone(), to=to))

    stats = drain(batch_size=10, max_seconds=30, release=release, scope=db_scope)
    assert stats.processed == 2
    assert stats.stopped_by == "empty"
    assert inbox_row(db_scope, late[0])["status"] == "processed"


def test_full_batch_invites_a_helper_and_early_stop_releases(db_scope: SessionScope) -> None:
    """A full batch releases the kick (a backlog gets a second drain); so does stopping on the time budget."""
    to = new_station(db_scope)
    for _ in range(6):
        store_sms(db_scope, from_=phone(), to=to)
    calls: list[int] = []
    stats = drain(batch_size=3, max_seconds=30, release=lambda: calls.append(1), scope=db_scope)
    assert stats.processed == 6
    assert len(calls) == 1  # the first full batch; the empty claim after it ends the run
    assert stats.stopped_by == "empty"
    calls.clear()
    store_sms(db_scope, from_=phone(), to=to)
    stopped = drain(batch_size=3, max_seconds=0, release=lambda: calls.append(1), scope=db_scope)
    assert (stopped.stopped_by, stopped.processed, len(calls)) == ("time", 0, 1)


def test_a_drain_never_clears_the_kick_a_later_drain_took(db_scope: SessionScope) -> None:
    """After its first release, the kick is the drain a later webhook published; this drain leaves it set.

    Clearing it again (as each later full batch and the final look did) let the next webhook publish a
    third drain while both went on: under a backlog drain tasks piled up in the broker, 47 of them
    ahead of the send tasks and ticks in a 10,000-webhook run (bench/RESULTS.md, issue 14 point 3).
    """
    to = new_station(db_scope)
    for _ in range(7):
        store_sms(db_scope, from_=phone(), to=to)
    kick = {"holder": "this drain"}
    later: list[str] = []

    def release() -> None:
        kick.pop("holder", None)
        if not later:  # a webhook commits, finds the kick free and publishes another drain
            later.append(store_sms(db_scope, from_=phone(), to=to))
            kick["holder"] = "the later drain"

    stats = drain(batch_size=3, max_seconds=30, release=release, scope=db_scope)
    assert kick == {"holder": "the later drain"}
    assert stats.processed == 8  # the later webhook's row too: the claims after the release see it
    assert inbox_row(db_scope, later[0])["status"] == "processed"


def _message_count(scope: SessionScope, sid: str) -> int:
    return scalar(scope, "SELECT count(*) FROM core.messages WHERE provider_message_id = :s", s=sid)


def test_a_mixed_batch_gives_each_row_its_own_outcome(db_scope: SessionScope) -> None:
    """Plain texts and a STOP (one group, the STOP through the consent engine), an unknown station, a duplicate:
    each row's own outcome."""
    to = new_station(db_scope)
    plain = [store_sms(db_scope, from_=phone(), to=to, body=f"see you at {i}") for i in range(6)]
    stop_from = phone()
    stop = store_sms(db_scope, from_=stop_from, to=to, body="STOP")
    stray = store_sms(db_scope, from_=phone(), to=station_number(), body="hello")  # no station has this number
    stats = drain(batch_size=50, max_seconds=30, scope=db_scope)
    assert (stats.processed, stats.failed) == (7, 1)
    for sid in [*plain, stop]:
        assert inbox_row(db_scope, sid)["status"] == "processed"
        assert _message_count(db_scope, sid) == 1
    assert inbox_row(db_scope, stray)["status"] == "failed"
    assert "no station" in str(inbox_row(db_scope, stray)["last_error"])
    # The STOP went through the consent engine: one opt-out event for that number.
    index = pii.blind_index(stop_from, kind="phone")
    assert scalar(db_scope,
                  "SELECT count(*) FROM compliance.consent_events WHERE phone_index = :i AND kind = 'opt_out'",
                  i=index) == 1
    assert scalar(db_scope, "SELECT count(*) FROM compliance.consent_events") == 1
    # A second copy of a processed message (new inbox row, same MessageSid) writes nothing new.
    again = store_sms(db_scope, from_=phone(), to=to, body="see you at 0", sid=None)
    with db_scope() as session:
        session.execute(
            text("UPDATE core.webhook_inbox SET payload_encrypted = (SELECT payload_encrypted FROM core.webhook_inbox"
                 " WHERE provider_event_id = :p) WHERE provider_event_id = :a"),
            {"p": plain[0], "a": again},
        )
    drain(batch_size=50, max_seconds=30, scope=db_scope)
    assert inbox_row(db_scope, again)["status"] == "processed"
    assert _message_count(db_scope, plain[0]) == 1


def test_a_row_the_database_refuses_fails_alone_within_a_group(db_scope: SessionScope) -> None:
    """The database refuses one message of a group: the group is undone, redone row by row, only that row fails."""
    to = new_station(db_scope)
    with db_scope() as session:
        session.execute(text(
            "CREATE FUNCTION pg_temp_refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.body = 'refuse me' THEN RAISE EXCEPTION 'refused for the test' USING ERRCODE = '22023'; END IF;"
            " RETURN NEW; END $$"
        ))
        session.execute(text(
            "CREATE TRIGGER refuse_one BEFORE INSERT ON core.messages FOR EACH ROW"
            " EXECUTE FUNCTION pg_temp_refuse_one()"
        ))
    try:
        before = [store_sms(db_scope, from_=phone(), to=to, body=f"before {i}") for i in range(3)]
        bad = store_sms(db_scope, from_=phone(), to=to, body="refuse me")
        after = [store_sms(db_scope, from_=phone(), to=to, body=f"after {i}") for i in range(3)]
        with structlog.testing.capture_logs() as logs:
            stats = drain(batch_size=50, max_seconds=30, scope=db_scope)
    finally:
        with db_scope() as session:
            session.execute(text("DROP TRIGGER refuse_one ON core.messages"))
            session.execute(text("DROP FUNCTION pg_temp_refuse_one()"))
    # The seven plain texts were tried as one group first, then one by one.
    assert [e["rows"] for e in logs if e["event"] == "inbox_group_fallback"] == [7]
    assert (stats.processed, stats.failed, stats.retry) == (6, 1, 0)
    for sid in [*before, *after]:
        assert inbox_row(db_scope, sid)["status"] == "processed"
        assert _message_count(db_scope, sid) == 1
    assert inbox_row(db_scope, bad)["status"] == "failed"
    assert "refused for the test" in str(inbox_row(db_scope, bad)["last_error"])
    assert _message_count(db_scope, bad) == 0
    # Nothing of the undone group was left half-written: one customer and thread per stored message.
    assert scalar(db_scope, "SELECT count(*) FROM core.customers") == 6
    assert scalar(db_scope, "SELECT count(*) FROM core.message_threads") == 6


def store_sms_indexed(scope: SessionScope, *, from_: str, to: str, body: str = "hello") -> str:
    """store_sms with the sender's blind index, as the receiver stores it (migration 0007)."""
    sid = new_sid()
    with scope() as session:
        session.add(WebhookInbox(provider="twilio_sms", provider_event_id=sid,
                                 content_type="application/x-www-form-urlencoded",
                                 payload_encrypted=pii.encrypt(urlencode(sms_pairs(sid=sid, from_=from_, to=to,
                                                                                   body=body)), kind="inbox"),
                                 from_index=PhoneNumber.parse(from_).index))
    return sid


def _claimed_sids(scope: SessionScope, ids: list[uuid.UUID]) -> set[str]:
    with scope() as session:
        return set(session.execute(text("SELECT provider_event_id FROM core.webhook_inbox WHERE id = ANY(:ids)"),
                                   {"ids": ids}).scalars())


def test_a_claim_leaves_the_texts_of_numbers_another_drain_is_applying(db_scope: SessionScope) -> None:
    """A number with a text claimed moments ago by another drain (leased, still pending) keeps its later
    texts out of this claim: applying them here would wait on that drain's number lock while holding
    this batch's other locks (the realistic mix's drains queued behind each other so). Once the other
    claim is IN_FLIGHT_SECONDS old the texts are claimed as before; a text stored without a sender
    index is not held back."""
    to = new_station(db_scope)
    a, b = phone(), phone()
    a1 = store_sms_indexed(db_scope, from_=a, to=to, body="what time?")
    b1 = store_sms_indexed(db_scope, from_=b, to=to)
    a2 = store_sms_indexed(db_scope, from_=a, to=to, body="STOP")
    b2 = store_sms_indexed(db_scope, from_=b, to=to)
    a_unindexed = store_sms(db_scope, from_=a, to=to)
    assert _claimed_sids(db_scope, drain_module._claim(1, db_scope)) == {a1}
    assert _claimed_sids(db_scope, drain_module._claim(10, db_scope)) == {b1, b2, a_unindexed}
    assert drain_module._claim(10, db_scope) == []
    with db_scope() as session:  # the first claim is no longer "moments ago"
        session.execute(
            text("UPDATE core.webhook_inbox SET enqueued_at = now() - make_interval(secs => :s)"
                 " WHERE provider_event_id = :sid"),
            {"s": drain_module.IN_FLIGHT_SECONDS + 1, "sid": a1},
        )
    assert _claimed_sids(db_scope, drain_module._claim(10, db_scope)) == {a2}


def test_claims_take_turns_so_a_claim_sees_the_one_before(clean_db: str) -> None:
    """A claim waits for one still committing, and then leaves its numbers alone: without the turn,
    it would run beside it, skip its locked rows and take the same number's next text."""
    to = new_station(session_scope)
    a = phone()
    a1 = store_sms_indexed(session_scope, from_=a, to=to)
    a2 = store_sms_indexed(session_scope, from_=a, to=to)
    other = store_sms_indexed(session_scope, from_=phone(), to=to)
    second: list[list[uuid.UUID]] = []
    with session_scope() as session:  # the first claim, not yet committed
        session.execute(drain_module._CLAIM_TURN, {"ns": int(LockNamespace.INBOX_CLAIM)})
        params = {"max_attempts": MAX_ATTEMPTS, "lease": 30, "in_flight": drain_module.IN_FLIGHT_SECONDS, "n": 1}
        first = session.execute(drain_module._CLAIM, params).scalars().all()
        thread = threading.Thread(target=lambda: second.append(drain_module._claim(10, session_scope)))
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive()  # waiting for its turn
    thread.join(timeout=10)
    assert _claimed_sids(session_scope, list(first)) == {a1}
    assert _claimed_sids(session_scope, second[0]) == {other}
    assert a2 not in _claimed_sids(session_scope, second[0])
