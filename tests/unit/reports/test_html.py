"""summary.html: one self-contained page with the figures, two labelled charts, nothing fetched, text escaped."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser

from compliance.report_tally import Tally
from worker.reports.html import opt_out_page

_FETCHING = re.compile(r"<script|<link|<img|<iframe|@import|url\(\s*['\"]?(?!#)|\b(?:src|href)\s*=\s*['\"](?!#)",
                       re.IGNORECASE)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def _summary() -> dict[str, object]:
    tally = Tally(date(2026, 11, 1), date(2026, 11, 3))
    for n, latency in enumerate((timedelta(milliseconds=30), timedelta(days=15))):
        tally.add(seq=n + 1, event_id=uuid.uuid4(), received_at=datetime(2026, 11, 2, 12, tzinfo=UTC),
                  method="exact_keyword", honour_latency=latency, confirmation_latency=timedelta(seconds=2),
                  no_confirmation=None, sends_after=n, violations=("sent_after_opt_out",) if n else (),
                  details={"station": "<b>NYC</b>", "phone": "+*********12", "method": "exact_keyword",
                           "received_at": "2026-11-02T12:00:00.000000Z", "effective_at": "x",
                           "business_days_to_effective": 11})
    return {
        "parameters": {"from": "2026-11-01", "to": "2026-11-03", "station": None, "unmask": False},
        "generated_at": "2026-12-01T00:30:00.000000Z", "generator": "msgworker test",
        "integrity": {"status": "INTEGRITY_FAILED", "first_bad_seq": 7},
        "figures": tally.as_dict(), "violations": tally.violations_dict([]),
        "files": {"opt_outs.csv": {"sha256": "ab" * 32, "bytes": 10, "rows": 2}},
    }


def test_page_is_self_contained_and_states_everything_in_words() -> None:
    """No script, stylesheet link, image or URL; the status, verdict, figures and both charts are on the page."""
    page = opt_out_page(_summary()).decode("utf-8")
    assert _FETCHING.search(page.replace('xmlns="http://www.w3.org/2000/svg"', "")) is None
    parser = _Tags()
    parser.feed(page)
    assert parser.tags.count("svg") == 2
    assert "INTEGRITY_FAILED. The first bad ledger sequence is 7" in page
    assert "1 revocation(s) with violations" in page
    assert "sent_after_opt_out" in page
    assert "p50 " in page
    assert "sha256sum -c SHA256SUMS" in page
    assert "&lt;b&gt;NYC&lt;/b&gt;" in page
    assert "<b>NYC</b>" not in page
