"""compliance.charts: a self-contained SVG bar chart readable without colour."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from compliance.charts import Bar, bar_chart

SVG = "{http://www.w3.org/2000/svg}"


def test_chart_is_valid_svg_with_labels_and_pattern() -> None:
    """The chart parses as XML, states its title for screen readers, fills bars with a hatch and labels values."""
    svg = bar_chart([Bar("2026-11-01", 3), Bar("2026-11-02", 0), Bar("2026-11-03", 12)],
                    title="Opt-outs per day", x_title="day (UTC)", y_title="opt-outs")
    root = ET.fromstring(svg)
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Opt-outs per day"
    rects = root.findall(f"{SVG}rect")
    assert len(rects) == 3
    assert all(r.get("fill", "").startswith("url(#") for r in rects)
    assert [r.find(f"{SVG}title").text for r in rects] == ["2026-11-01: 3", "2026-11-02: 0", "2026-11-03: 12"]  # type: ignore[union-attr]
    desc = root.find(f"{SVG}desc")
    assert desc is not None
    assert desc.text == "2026-11-01: 3; 2026-11-02: 0; 2026-11-03: 12"
    assert "12" in [t.text for t in root.findall(f"{SVG}text")]


def test_text_is_escaped_and_nothing_is_fetched() -> None:
    """Labels are XML-escaped and the chart references no external resource."""
    svg = bar_chart([Bar("<script>", 1)], title="a & b", x_title="x", y_title="y")
    ET.fromstring(svg)
    assert "<script>" not in svg
    assert not re.search(r"(href|src)=\"(?!#)", svg)


def test_same_input_same_bytes_and_many_bars_thin_labels() -> None:
    """Output is deterministic; with hundreds of bars only every k-th label is drawn."""
    bars = [Bar(f"2026-01-{i:03d}", i % 7) for i in range(400)]
    a = bar_chart(bars, title="t", x_title="x", y_title="y")
    assert a == bar_chart(bars, title="t", x_title="x", y_title="y")
    labels = [t for t in ET.fromstring(a).findall(f"{SVG}text") if (t.text or "").startswith("2026-01-")]
    assert 0 < len(labels) < 100


def test_empty_series() -> None:
    """No bars still gives a valid chart that says there is no data."""
    root = ET.fromstring(bar_chart([], title="t", x_title="x", y_title="y"))
    assert root.find(f"{SVG}desc").text == "no data"  # type: ignore[union-attr]
