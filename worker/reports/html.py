"""summary.html: the export's figures as one self-contained page a lawyer can open offline.

No script, no stylesheet, font or image from anywhere: the CSS is inline, the charts are
inline SVG (compliance/charts.py), each chart is followed by its data as a table, and status
is written in words, never shown by colour alone. Everything comes from summary.json's
content, so the page and the JSON cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from compliance.charts import Bar, bar_chart

__all__ = ["dossier_page", "opt_out_page"]

_CSS = """
body{font-family:Georgia,serif;max-width:60em;margin:2em auto;padding:0 1em;color:#000;background:#fff}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #444;padding:.25em .5em;text-align:left;
vertical-align:top;font-size:.9em}th{background:#eee}.status{border:3px solid #000;padding:.5em 1em;font-weight:bold}
code{font-size:.85em;word-break:break-all}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th scope='col'>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pairs(rows: Iterable[tuple[str, Any]]) -> str:
    return "<table><tbody>" + "".join(
        f"<tr><th scope='row'>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows
    ) + "</tbody></table>"


def _page(title: str, sections: Iterable[tuple[str, str]]) -> bytes:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
    ]
    for heading, content in sections:
        parts.append(f"<section><h2>{_e(heading)}</h2>{content}</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts).encode("utf-8")


def _integrity(summary: dict[str, Any]) -> str:
    integrity = summary["integrity"]
    if integrity["status"] == "ok":
        text = "Ledger integrity: OK. Every event in the range matched its hash and its chain."
    else:
        text = (f"Ledger integrity: INTEGRITY_FAILED. The first bad ledger sequence is {integrity['first_bad_seq']}; "
                "see chain.json for every break.")
    return f"<p class='status'>{_e(text)}</p>"


def _files(summary: dict[str, Any]) -> str:
    rows = [(name, facts.get("rows", ""), facts["bytes"], facts["sha256"]) for name, facts in summary["files"].items()]
    return table(("file", "rows", "bytes", "SHA-256"), rows) + (
        "<p>Check this export with <code>msgworker report verify FILE.zip</code>, or unzip it and run "
        "<code>sha256sum -c SHA256SUMS</code> (docs/reports.md).</p>"
    )


def _latency(label: str, stats: dict[str, Any]) -> tuple[str, str]:
    return label, f"p50 {stats['p50_s'] or '-'} s, p99 {stats['p99_s'] or '-'} s, max {stats['max_s'] or '-'} s " \
                  f"(n={stats['count']})"


def opt_out_page(summary: dict[str, Any]) -> bytes:
    """The opt-out report's page, from its summary.json content."""
    p, figures, violations = summary["parameters"], summary["figures"], summary["violations"]
    title = f"Opt-out audit report {p['from']} to {p['to']}" + (f", station {p['station']}" if p["station"] else "")
    days = [Bar(day, n) for day, n in figures["per_day"]]
    dist = [Bar(label, n) for label, n in figures["honour_latency_distribution"]]
    listed = violations["listed"]
    sections = [
        ("Status", _integrity(summary) + f"<p class='status'>{_e(violations['verdict'])}</p>"),
        ("Parameters", _pairs([
            ("received from (UTC, inclusive)", p["from"]), ("received to (UTC, inclusive)", p["to"]),
            ("station", p["station"] or "all stations"), ("phone numbers", "full" if p["unmask"] else "masked"),
            ("generated at", summary["generated_at"]), ("generator", summary["generator"]),
        ])),
        ("Figures", _pairs([
            ("revocations", figures["revocations"]),
            ("confirmations sent", figures["confirmations_sent"]),
            ("texts sent after an opt-out", figures["sends_after_opt_out"]),
            _latency("honour latency (receipt to effective)", figures["honour_latency"]),
            _latency("confirmation latency", figures["confirmation_latency"]),
        ]) + table(("detection method", "revocations"), figures["by_detection_method"].items())
           + table(("no confirmation because", "revocations"), figures["no_confirmation"].items())),
        ("Violations", table(("violation", "rows"), violations["counts"].items()) + table(
            ("seq", "station", "phone", "method", "received at", "effective at", "business days", "violations"),
            [(v["seq"], v["station"], v["phone"], v["method"], v["received_at"], v["effective_at"],
              v["business_days_to_effective"], ", ".join(v["violations"])) for v in listed],
        ) + (f"<p>The first {len(listed)} are listed; every row's violations are in opt_outs.csv.</p>"
             if violations["rows_with_violations"] > len(listed) else "")
           + "<h3>Review items open past their deadline</h3>" + table(
            ("review item", "station", "opened at", "deadline", "business days overdue"),
            [(r["review_item_id"], r["station"], r["opened_at"], r["deadline_at"], r["business_days_overdue"])
             for r in violations["overdue_reviews"]],
        )),
        ("Opt-outs per day", bar_chart(days, title="Opt-outs per day (UTC)", x_title="day received (UTC)",
                                       y_title="revocations", chart_id="per-day")
         + "<details><summary>The figures as a table</summary>" + table(("day", "revocations"),
                                                                        figures["per_day"]) + "</details>"),
        ("Honour latency", bar_chart(dist, title="Time from receipt to effective", x_title="honour latency",
                                     y_title="revocations", chart_id="latency")
         + table(("honour latency", "revocations"), figures["honour_latency_distribution"])),
        ("Files and how to check them", _files(summary)),
    ]  # fmt: skip
    return _page(title, sections)


def dossier_page(summary: dict[str, Any], events: Sequence[Sequence[Any]], outbound: Sequence[Sequence[Any]]) -> bytes:
    """The per-number dossier's page: counts, the ledger's status, the consent history and each send."""
    p = summary["parameters"]
    sections = [
        ("Status", _integrity(summary)),
        ("Number", _pairs([
            ("phone", p["phone"]), ("blind index", p["phone_index"]), ("generated at", summary["generated_at"]),
            ("consent events", summary["counts"]["consent_events"]),
            ("inbound messages", summary["counts"]["inbound_messages"]),
            ("outbound texts", summary["counts"]["outbound_texts"]),
        ])),
        ("Consent history", table(("seq", "kind", "purpose", "source", "scope", "occurred at", "recorded at"), events)),
        ("Every outbound text and why it was (not) sent", table(
            ("outbox id", "station", "purpose", "status", "decision", "reason", "decided at", "sent at",
             "consent events relied on"), outbound)),
        ("Files and how to check them", _files(summary)),
    ]  # fmt: skip
    return _page(f"Number dossier {p['phone']}", sections)
