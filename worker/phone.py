"""A phone number worked out once: its E.164 form, blind index and ciphertext.

Every table keys a number on its blind index and stores it encrypted, so ingest, the consent
engine, the ledger and the outbox all need the same three things. One inbound STOP used to
compute them at each of those layers (normalised five times, indexed four, encrypted three);
now ingest parses the sender into a ``PhoneNumber`` and hands that down
(worker/ingest/handlers.py -> worker/consent/inbound.py -> worker/consent/ledger.py and
worker/outbox.py). Callers that hold a plain string (staff commands, tests) go through
``as_number``, the same parse.

Inbound numbers are accepted when merely possible (``require_valid=False``), not only when
libphonenumber knows them as assigned: stale metadata must never make us drop a STOP.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from compliance.phones import mask, normalize
from worker import pii

__all__ = ["PhoneNumber", "as_number", "to_e164"]

# A NANP number already in E.164 (what Twilio sends for US/CA senders) is its own
# normalisation: 11 digits after "+1" with a valid area-code lead digit are always
# "possible", so libphonenumber's parse (the costliest step of ingest's preparation) is
# skipped (tests/unit/ingest/test_payloads.py checks the two agree).
_NANP_E164 = re.compile(r"\+1[2-9][0-9]{9}")


@functools.lru_cache(maxsize=4096)
def to_e164(raw: str) -> str:
    """``compliance.phones.normalize(raw, require_valid=False)``; InvalidNumber when it is not a number.

    Cached because it is pure and ingest sees the same few station numbers (``To``) and
    repeat senders over and over.
    """
    if _NANP_E164.fullmatch(raw):
        return raw
    return normalize(raw, require_valid=False)


@dataclass(frozen=True, repr=False)
class PhoneNumber:
    """A normalised number; build it with ``PhoneNumber.parse`` (or ``as_number``).

    The blind index and the ciphertext are computed on first use and kept, so however many
    rows one message writes (customer, consent event and state, outbox row), each is computed
    once. Sharing one ciphertext between those rows is safe: it is the same plaintext under
    the same kind, and AES-GCM's nonce is per ciphertext, not per row.
    """

    e164: str

    @classmethod
    def parse(cls, raw: str) -> PhoneNumber:
        """The number ``raw`` spells; InvalidNumber (with the reason) when it spells none."""
        return cls(to_e164(raw))

    @functools.cached_property
    def index(self) -> bytes:
        """The blind index every table looks the number up by (and the advisory lock is keyed on)."""
        return pii.blind_index(self.e164, kind="phone")

    @functools.cached_property
    def encrypted(self) -> str:
        return pii.encrypt(self.e164, kind="phone")

    def __repr__(self) -> str:
        # Never the full number in a log line or a traceback.
        return f"PhoneNumber({mask(self.e164)})"


def as_number(value: str | PhoneNumber) -> PhoneNumber:
    """``value`` itself if it is already a PhoneNumber, else ``PhoneNumber.parse(value)``."""
    return value if isinstance(value, PhoneNumber) else PhoneNumber.parse(value)
