"""worker.ingest.payloads: provider payloads into typed values, bad input into readable reasons."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.ingest.payloads import (
    BadInput,
    decode_params,
    parse_form,
    parse_meta,
    parse_status_callback,
    parse_twilio_sms,
    sms_event_id,
    status_event_id,
)

# A real Twilio capture (docs/compliance.md#test-vectors).
SAMPLE = (
    "ToCountry=US&ToState=CA&SmsMessageSid=SM5ab7891328b440f04b7c83b459fc85fd&NumMedia=0&ToCity=SAN+FRANCISCO"
    "&FromZip=30512&SmsSid=SM5ab7891328b440f04b7c83b459fc85fd&FromState=GA&SmsStatus=received&FromCity=BLAIRSVILLE"
    "&Body=42&FromCountry=US&To=%2B14152001331&ToZip=94105&NumSegments=1"
    "&MessageSid=SM5ab7891328b440f04b7c83b459fc85fd&AccountSid=ACe24e29bdbc2e7664b315d7629ed3b9d9"
    "&From=%2B17067815146&ApiVersion=2010-04-01"
)


def test_real_capture_parses() -> None:
    """The captured Twilio body yields sid, numbers, body, segments and the From* geo fields."""
    sms = parse_twilio_sms(decode_params(SAMPLE, "application/x-www-form-urlencoded"))
    assert sms.message_sid == "SM5ab7891328b440f04b7c83b459fc85fd"
    assert sms.from_raw == "+17067815146"
    assert sms.to_raw == "+14152001331"
    assert sms.body == "42"
    assert sms.num_segments == 1
    assert sms.media == []
    assert sms.opt_out_type is None
    assert sms.meta["FromCity"] == "BLAIRSVILLE"
    assert sms.meta["FromZip"] == "30512"
    assert "From" not in sms.meta
    assert "To" not in sms.meta


def test_mms_media_and_opt_out_type() -> None:
    """MediaUrl{N}/MediaContentType{N} (zero-based) become media; OptOutType is read (upper-cased)."""
    params = {
        "MessageSid": "MM" + "a" * 32,
        "From": "+14155550123",
        "To": "+12125550199",
        "Body": "",
        "NumMedia": "2",
        "MediaUrl0": "https://api.twilio.com/m0",
        "MediaContentType0": "image/jpeg",
        "MediaUrl1": "https://api.twilio.com/m1",
        "MediaContentType1": "video/mp4",
        "OptOutType": "stop",
        "MessagingServiceSid": "MG" + "b" * 32,
    }
    sms = parse_twilio_sms(params)
    assert sms.media == [
        {"url": "https://api.twilio.com/m0", "content_type": "image/jpeg"},
        {"url": "https://api.twilio.com/m1", "content_type": "video/mp4"},
    ]
    assert sms.opt_out_type == "STOP"
    assert sms.messaging_service_sid == "MG" + "b" * 32


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"From": "+14155550123", "To": "+12125550199"}, "MessageSid is missing"),
        ({"MessageSid": "SM 1", "From": "+1", "To": "+1"}, "MessageSid is missing or malformed"),
        ({"MessageSid": "SM1", "To": "+12125550199"}, "From is missing"),
        ({"MessageSid": "SM1", "From": "+14155550123"}, "To is missing"),
        ({"MessageSid": "SM1", "From": "+14155550123", "To": "+1212", "Body": "a\x00b"}, "NUL"),
    ],
)
def test_bad_sms_payloads_give_readable_reasons(params: dict[str, str], reason: str) -> None:
    """Missing or malformed fields raise BadInput naming the field."""
    with pytest.raises(BadInput, match=reason):
        parse_twilio_sms(params)


def test_form_keeps_blank_and_repeated_values() -> None:
    """Blank values are kept and repeated keys keep every value in order."""
    assert parse_form("a=&b=1&b=2&c") == {"a": [""], "b": ["1", "2"], "c": [""]}


def test_event_ids() -> None:
    """SMS rows key on MessageSid, status rows on sid:status, and unusable ids fall back to a body digest."""
    assert sms_event_id({"MessageSid": "SMabc"}, b"x") == "SMabc"
    assert sms_event_id({"SmsMessageSid": "SMabc"}, b"x") == "SMabc"
    assert sms_event_id({}, b"x").startswith("sha256:")
    assert sms_event_id({"MessageSid": "SM\x00"}, b"x").startswith("sha256:")
    assert sms_event_id({"MessageSid": "S" * 300}, b"x").startswith("sha256:")
    assert status_event_id({"MessageSid": "SMabc", "MessageStatus": "delivered"}, b"x") == "SMabc:delivered"
    assert status_event_id({"MessageSid": "SMabc", "MessageStatus": "Del ivered"}, b"x").startswith("sha256:")


def test_status_callback_drops_numbers_and_reads_error_code() -> None:
    """A status callback keeps ErrorCode as an int and never keeps From/To/Body in raw."""
    cb = parse_status_callback(
        {"MessageSid": "SMabc", "MessageStatus": "undelivered", "ErrorCode": "30003", "From": "+1", "To": "+2"}
    )
    assert (cb.message_sid, cb.status, cb.error_code) == ("SMabc", "undelivered", 30003)
    assert "From" not in cb.raw
    assert "To" not in cb.raw
    with pytest.raises(BadInput, match="ErrorCode"):
        parse_status_callback({"MessageSid": "SMabc", "MessageStatus": "failed", "ErrorCode": "abc"})
    with pytest.raises(BadInput, match="MessageStatus"):
        parse_status_callback({"MessageSid": "SMabc"})


def test_json_params() -> None:
    """The JSON variant's object becomes string params; a non-object is bad input."""
    assert decode_params('{"MessageSid": "SM1", "NumMedia": 0}', "application/json") == {
        "MessageSid": "SM1",
        "NumMedia": "0",
    }
    with pytest.raises(BadInput):
        decode_params("[1]", "application/json")
    with pytest.raises(BadInput):
        decode_params("{", "application/json; charset=utf-8")


def _meta(obj: str, events: list[object], entry_id: object = "PAGE1") -> str:
    return json.dumps({"object": obj, "entry": [{"id": entry_id, "time": 1, "messaging": events}]})


def test_meta_sample_parses() -> None:
    """A Messenger message (docs/compliance.md#meta-webhooks): one facebook message from the PSID."""
    raw = (
        '{"object":"page","entry":[{"id":"2517603138253655","time":1564197467552,"messaging":[{"sender":'
        '{"id":"1871904392870179"},"recipient":{"id":"2517603138253655"},"timestamp":1564197467228,"message":'
        '{"mid":"VdjM_jwTN8tOgFBa4YfGv3g9Ir51k7s_PVp7YmkG2Th2hK8aMhoZ_T04TNxdIq1yQhxSEiUto_TrraC13Rj4rA","seq":0,'
        '"text":"gi\\u00fap"}}]}]}'
    )
    payload = parse_meta(raw)
    assert payload.channel == "facebook"
    assert payload.errors == []
    assert payload.skipped == 0
    [ev] = payload.events
    assert (ev.page_id, ev.sender_id, ev.body, ev.kind) == ("2517603138253655", "1871904392870179", "giúp", "message")
    assert ev.mid.startswith("VdjM_")


def test_meta_skips_echoes_reads_and_deliveries_and_keeps_postbacks() -> None:
    """Only messages and postbacks become events; echoes, reads, deliveries are skipped."""
    base = {"sender": {"id": "U1"}, "recipient": {"id": "IG1"}, "timestamp": 5}
    events = [
        {**base, "message": {"mid": "m1", "text": "hi", "attachments": [{"type": "image", "payload": {"url": "u"}}]}},
        {**base, "message": {"mid": "m2", "text": "echo", "is_echo": True}},
        {**base, "read": {"watermark": 1}},
        {**base, "delivery": {"mids": ["m0"]}},
        {**base, "postback": {"title": "Book now", "payload": "BOOK", "mid": "m3"}},
    ]
    payload = parse_meta(_meta("instagram", events, "IG1"))
    assert payload.channel == "instagram"
    got = [(e.mid, e.kind, e.body) for e in payload.events]
    assert got == [("m1", "message", "hi"), ("m3", "postback", "Book now")]
    assert payload.events[0].media == [{"url": "u", "content_type": "image"}]
    assert payload.skipped == 3


def test_meta_bad_items_are_reported_without_hiding_good_ones() -> None:
    """A broken messaging item is an error entry; the good item next to it is still an event."""
    events = [{"sender": {}, "message": {"mid": "m1"}}, {"sender": {"id": "U"}, "message": {"mid": "m2", "text": "ok"}}]
    payload = parse_meta(_meta("page", events))
    assert [e.mid for e in payload.events] == ["m2"]
    assert payload.errors == ["entry[0].messaging[0]: sender.id is missing or malformed"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("not json", "not JSON"),
        ("[]", "not a JSON object"),
        ('{"object": "whatsapp_business_account", "entry": []}', "unsupported object"),
        ('{"object": "page"}', "entry is missing"),
    ],
)
def test_meta_unusable_bodies(raw: str, reason: str) -> None:
    """A body that is not a page/instagram notification raises BadInput with the reason."""
    with pytest.raises(BadInput, match=reason):
        parse_meta(raw)


@given(st.one_of(st.text(), st.text(alphabet="ab=&+%2F0-é\x00 ;", max_size=60)))
def test_parse_form_matches_urllib(text: str) -> None:
    """parse_form is exactly parse_qsl(keep_blank_values=True, errors='replace'), grouped by key."""
    expected: dict[str, list[str]] = {}
    for key, value in parse_qsl(text, keep_blank_values=True, errors="replace"):
        expected.setdefault(key, []).append(value)
    assert parse_form(text) == expected


@given(st.one_of(st.from_regex(r"\+1[2-9]\d{9}", fullmatch=True), st.from_regex(r"\+1[2-9][0-9]{9}",
                                                                                   fullmatch=True)))
def test_nanp_fast_path_matches_phonenumbers(number: str) -> None:
    """The E.164 NANP shortcut gives exactly what compliance.phones.normalize gives."""
    from compliance.errors import InvalidNumber
    from compliance.phones import normalize
    from worker.phone import to_e164 as _normalize

    _normalize.cache_clear()
    try:
        expected: str | None = normalize(number, require_valid=False)
    except InvalidNumber:  # e.g. digits libphonenumber refuses: the shortcut must refuse them too
        expected = None
    try:
        got: str | None = _normalize(number)
    except InvalidNumber:
        got = None
    assert got == expected
