"""Campaign templates: placeholders checked at creation, purpose from the text, opt-out wording appended."""

from __future__ import annotations

import pytest

from compliance.templates import (
    OPT_OUT_TEXT,
    TemplateError,
    TemplateUse,
    check,
    purpose_for,
    render,
    segments_with,
    with_opt_out,
)


@pytest.mark.parametrize(("template", "use", "why"), [
    ("Hi {frist_name}", TemplateUse("broadcast"), "unknown placeholder {frist_name}"),
    ("Hi {first_name:>10}", TemplateUse("broadcast"), "no format spec"),
    ("Hi {first_name", TemplateUse("broadcast"), "braces"),
    ("20% off this week", TemplateUse("coupon", has_pool=True), "{coupon_code}"),
    ("Use {coupon_code}", TemplateUse("broadcast"), "needs a coupon pool"),
    ("Review us: {review_link}", TemplateUse("review_request"), "needs a public review link"),
    ("Your event on {booking_date}", TemplateUse("broadcast"), "only known to review requests"),
    ("   ", TemplateUse("broadcast"), "empty"),
])
def test_a_template_the_campaign_cannot_fill_is_refused(template: str, use: TemplateUse, why: str) -> None:
    """Unknown, malformed or unfillable placeholders, and a coupon text without its code, are refused saying why."""
    with pytest.raises(TemplateError) as err:
        check(template, use)
    assert why in str(err.value)


def test_purpose_comes_from_the_template() -> None:
    """A review request offering nothing is transactional; an offer or a code makes it marketing; coupons always are."""
    assert purpose_for("review_request", "How was it? Reply 1-4") == "transactional"
    assert purpose_for("review_request", "How was it? 10% off next time") == "marketing"
    assert purpose_for("review_request", "How was it? Here is {coupon_code}") == "marketing"
    assert purpose_for("review_request", "¡Descuento para ti!") == "marketing"
    assert purpose_for("coupon", "{coupon_code}") == "marketing"
    assert purpose_for("broadcast", "We are open Sunday") == "marketing"


def test_marketing_without_opt_out_wording_gets_it_appended() -> None:
    """The station's opt-out line is added to marketing without one, never twice, never to transactional texts."""
    assert with_opt_out("Sale today!", "marketing") == f"Sale today! {OPT_OUT_TEXT}"
    assert with_opt_out("Sale today! Text STOP to end", "marketing") == "Sale today! Text STOP to end"
    assert with_opt_out("How was it?", "transactional") == "How was it?"


def test_render_fills_values_and_a_missing_first_name() -> None:
    """Placeholders are filled; a customer without a first name reads "there"."""
    assert render("Hi {first_name}, {brand}", {"first_name": "", "brand": "HH"}) == "Hi there, HH"
    assert render("{{literal}} {brand}", {"brand": "HH"}) == "{literal} HH"


def test_segments_use_the_longest_values_and_report_the_encoding() -> None:
    """A long name can push a text into a second segment; one non-GSM character makes it UCS-2."""
    template = "{brand}: hi {first_name}, " + "x" * 120
    assert segments_with(template, {"brand": "HH", "first_name": "Al"}).segments == 1
    assert segments_with(template, {"brand": "HH", "first_name": "A" * 40}).segments == 2
    assert segments_with(template, {"brand": "HH", "first_name": "Zoë✓"}).encoding == "UCS-2"
