"""Campaign templates: the placeholders they may use, what they offer, their opt-out wording.

A template is checked when the campaign is created or edited, never first at send time: an
unknown placeholder (``{frist_name}``), a placeholder the campaign cannot fill (``{coupon_code}``
without a pool, ``{review_link}`` without a link, ``{booking_date}`` outside a review request)
or a coupon campaign without ``{coupon_code}`` (a coupon text is never sent without its code)
is refused with the reason.

Purpose is decided here, from the template, not by the marketer: a review request whose text
offers nothing is transactional (it follows a service the customer bought); one that carries a
coupon or an offer is marketing, and so is every coupon campaign and broadcast (47 CFR
64.1200(f)(12): a message is marketing when it encourages a purchase).

A marketing template without opt-out wording gets the station's ("Reply STOP to opt out.")
appended (CTIA Messaging Principles and Best Practices §5.1: every campaign message should say how
to opt out).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass

from compliance.errors import ComplianceError
from compliance.segments import SegmentCount, count_segments

__all__ = [
    "OPT_OUT_TEXT",
    "PLACEHOLDERS",
    "TemplateError",
    "TemplateUse",
    "check",
    "has_opt_out_wording",
    "offers_something",
    "placeholders",
    "purpose_for",
    "render",
    "segments_with",
    "with_opt_out",
]

PLACEHOLDERS = frozenset({"first_name", "brand", "station_name", "coupon_code", "review_link", "booking_date"})
OPT_OUT_TEXT = "Reply STOP to opt out."
# What a first name reads as when the customer has none on file.
NO_FIRST_NAME = "there"
_OPT_OUT = re.compile(r"\b(stop|unsubscribe|opt[- ]?out|parar|cancelar)\b", re.IGNORECASE)
# Words that make a text an offer; a coupon code always does.
_OFFER = re.compile(
    r"(\d+\s*%|\$\s*\d+|\b(off|discount|coupon|promo|deal|sale|free|save|savings|descuento|cup[oó]n|"
    r"oferta|gratis|ahorra)\b)",
    re.IGNORECASE,
)
MAX_BODY = 1600


class TemplateError(ComplianceError, ValueError):
    """Raised when a template cannot be used as written; the message names the placeholder or rule."""


@dataclass(frozen=True, slots=True)
class TemplateUse:
    """What the campaign can fill in, so a template is checked against it."""

    kind: str  # review_request | coupon | broadcast
    has_pool: bool = False
    has_review_link: bool = False


def placeholders(template: str) -> frozenset[str]:
    """The placeholder names a template uses; TemplateError for an unknown or malformed one."""
    found: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(f"template braces do not balance ({exc}); write a literal brace as {{{{ or }}}}") from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
            raise TemplateError(f"unknown placeholder {{{name}}}: use one of {known}")
        if spec or conversion:
            raise TemplateError(f"placeholder {{{name}}} takes no format spec or conversion")
        found.add(name)
    return frozenset(found)


def check(template: str, use: TemplateUse) -> frozenset[str]:
    """Refuse a template the campaign could not send as written; returns its placeholders."""
    if not template.strip():
        raise TemplateError("template is empty")
    names = placeholders(template)
    if use.kind == "coupon" and "coupon_code" not in names:
        raise TemplateError("a coupon campaign needs {coupon_code} in its template: no coupon text without its code")
    if "coupon_code" in names and not use.has_pool:
        raise TemplateError("{coupon_code} needs a coupon pool (--pool)")
    if "review_link" in names and not use.has_review_link:
        raise TemplateError("{review_link} needs a public review link (--review-link)")
    if "booking_date" in names and use.kind != "review_request":
        raise TemplateError("{booking_date} is only known to review requests (they follow a booking)")
    return names


def offers_something(template: str) -> bool:
    """True when the text carries a coupon or an offer (which makes it marketing)."""
    return "{coupon_code}" in template or bool(_OFFER.search(template))


def purpose_for(kind: str, template: str) -> str:
    """``transactional`` for a review request that offers nothing, else ``marketing``."""
    if kind == "review_request" and not offers_something(template):
        return "transactional"
    return "marketing"


def has_opt_out_wording(text: str) -> bool:
    return bool(_OPT_OUT.search(text))


def with_opt_out(template: str, purpose: str, opt_out_text: str = OPT_OUT_TEXT) -> str:
    """The template, with the opt-out wording appended when it is marketing and has none."""
    if purpose != "marketing" or has_opt_out_wording(template):
        return template
    return f"{template.rstrip()} {opt_out_text}"


def render(template: str, values: Mapping[str, str]) -> str:
    """The text for one recipient (placeholders checked beforehand by ``check``)."""
    filled = dict(values)
    if not filled.get("first_name"):
        filled["first_name"] = NO_FIRST_NAME
    return template.format_map(filled)


def segments_with(template: str, longest: Mapping[str, str]) -> SegmentCount:
    """Segments and encoding of the template filled with the longest values the audience has."""
    return count_segments(render(template, longest))
