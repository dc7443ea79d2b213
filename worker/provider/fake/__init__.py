"""A local fake of the Twilio Messages API, for the tests and for ``msgworker demo``.

Why a real HTTP server rather than a mock: the official ``twilio`` client is part of what we
test (its URL building, form encoding, error parsing, paging), so it must talk HTTP to
something that answers with Twilio's JSON shapes. The client reaches this server through
``TWILIO_API_BASE_URL`` (see worker/provider/client.py).

What it implements (shapes: docs/compliance.md#twilio-messages-api; codes:
docs/compliance.md#twilio-error-codes):

- ``POST /2010-04-01/Accounts/{sid}/Messages.json``: create (201, Twilio's message JSON).
- ``GET  /2010-04-01/Accounts/{sid}/Messages/{MessageSid}.json``: fetch one.
- ``GET  /2010-04-01/Accounts/{sid}/Messages.json``: list, newest first, filtered by ``To``,
  ``From``, ``DateSent``, ``DateSent<`` (on or before) and ``DateSent>`` (on or after), with
  Twilio's page shape and working ``next_page_uri`` paging.
- HTTP Basic auth (401 / code 20003), a foreign account sid in the path (404 / 20404).
- Fault injection per number or for the next N creates: synchronous Twilio errors (21610,
  21211, 21614 ...), HTTP 429 / 500, a hang (so the client's timeout fires), "accepted then
  hung" (the message exists at Twilio but the caller never heard: reconciliation), and
  delivery errors (30006 ...) reported later by the status callback as ``undelivered``.
- Status callbacks: form-encoded POSTs signed like Twilio's (``X-Twilio-Signature`` over the
  StatusCallback URL exactly as given), optionally re-routed to a local address while still
  signed for the public URL, which is what a reverse proxy in front of the receiver does.
- Out-of-process control under ``/_fake/`` (JSON, no auth: bind it to localhost only).

Behaviours that differ from Twilio, on purpose:
the fake "sends" instantly, so ``date_sent`` is set at creation (except scheduled messages);
statuses only move when a status callback is posted (auto or on demand).
"""

from worker.provider.fake.api import RecordedRequest
from worker.provider.fake.callbacks import RecordedCallback, iter_statuses
from worker.provider.fake.faults import ERROR_MESSAGES, TwilioError
from worker.provider.fake.server import FakeTwilio

__all__ = [
    "ERROR_MESSAGES",
    "FakeTwilio",
    "RecordedCallback",
    "RecordedRequest",
    "TwilioError",
    "iter_statuses",
]
