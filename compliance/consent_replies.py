"""The texts the consent engine sends: opt-out confirmation, opt-in confirmation, HELP.

- Opt-out confirmation (FCC 24-24, 47 CFR 64.1200(a)(12);
  docs/compliance.md#opt-out-confirmation): one text, brand name, no marketing, no attempt to
  win the person back; opt-back-in instructions are allowed. CTIA: brand plus confirmation
  that no further messages will be sent.
- Opt-in confirmation (CTIA §5.1.2.1): brand, frequency, "Msg & data rates may apply",
  HELP and STOP instructions.
- HELP (CTIA; docs/compliance.md#help-and-stop-content): brand, message frequency, "Msg & data
  rates may apply", STOP instructions, a contact. A station's own ``help_text`` wins when it
  has one.

Each stays in GSM-7 (plain ASCII here) so it is one 160-character segment for a
reasonably short brand name.
"""

from __future__ import annotations

__all__ = ["help_reply", "opt_in_confirmation", "opt_out_confirmation"]


def _brand(brand: str) -> str:
    cleaned = " ".join(brand.split())
    return cleaned or "Our business"


def opt_out_confirmation(brand: str, *, marketing_only: bool = False) -> str:
    if marketing_only:
        return f"{_brand(brand)}: You're unsubscribed from marketing texts. Reply START to resubscribe."
    return f"{_brand(brand)}: You're unsubscribed and will get no more texts from us. Reply START to resubscribe."


def opt_in_confirmation(brand: str) -> str:
    return (
        f"{_brand(brand)}: You're resubscribed. Msg frequency varies. Msg & data rates may apply. "
        "Reply HELP for help, STOP to opt out."
    )


def help_reply(brand: str, contact: str | None, help_text: str | None = None) -> str:
    if help_text and help_text.strip():
        return help_text.strip()
    reach = f" Help: {contact.strip()}." if contact and contact.strip() else ""
    return (
        f"{_brand(brand)}:{reach} Msg frequency varies. Msg & data rates may apply. Reply STOP to opt out."
    )
