"""docs/grafana-dashboard.json parses, its panels are laid out without overlap, and every metric a panel
queries is one the code exposes (a renamed metric would otherwise leave an empty panel)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from worker.metrics import COUNTED_FAMILIES
from worker.metrics_worker import DATABASE_GAUGES

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
HISTOGRAM_PARTS = ("_bucket", "_sum", "_count")


def panels() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["panels"]
    return found


def family(name: str) -> str:
    for part in HISTOGRAM_PARTS:
        if name.endswith(part) and name.removesuffix(part) in COUNTED_FAMILIES:
            return name.removesuffix(part)
    return name


def metrics_of(expr: str) -> set[str]:
    return {family(n) for n in re.findall(r"\bmsgworker_[a-z_]+", expr)}


def test_every_panel_queries_metrics_the_code_exposes() -> None:
    known = set(COUNTED_FAMILIES) | set(DATABASE_GAUGES)
    assert panels()
    for panel in panels():
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metrics_of(target["expr"])
            assert names, (panel["title"], target["expr"])
            assert names <= known, (panel["title"], names - known)


def test_every_exposed_metric_has_a_panel() -> None:
    shown = set().union(*(metrics_of(t["expr"]) for p in panels() for t in p["targets"]))
    assert (set(COUNTED_FAMILIES) | set(DATABASE_GAUGES)) - shown == set()


def test_the_reader_finds_names_and_can_fail() -> None:
    assert metrics_of("histogram_quantile(0.5, rate(msgworker_opt_out_honour_seconds_bucket[5m]))") == {
        "msgworker_opt_out_honour_seconds"
    }
    # A misspelt name is read as itself, and is not a known family: the first test would name it.
    assert metrics_of("rate(msgworker_webhook_total[5m])") == {"msgworker_webhook_total"}
    assert "msgworker_webhook_total" not in set(COUNTED_FAMILIES) | set(DATABASE_GAUGES)


def test_panels_have_unique_ids_and_do_not_overlap() -> None:
    ids = [p["id"] for p in panels()]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in panels():
        g = p["gridPos"]
        assert g["x"] >= 0
        assert g["x"] + g["w"] <= 24
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, p["title"]
        cells |= mine
