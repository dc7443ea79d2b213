"""docs/alerts.yml is tested by Prometheus' own rule engine: ``promtool test rules`` (Debian package
prometheus, installed by scripts/lib.sh) feeds it series and checks which alerts fire, and when.

Every rule has a case where it must stay quiet and one where it must fire; the last test breaks a
threshold on purpose and expects promtool to say so, so the cases can fail.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from worker.metrics import COUNTED_FAMILIES
from worker.metrics_worker import DATABASE_GAUGES

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "docs" / "alerts.yml"
PAGE = {"severity": "page"}


def _alert(name: str, eval_time: str, *, fires: bool, labels: dict[str, str] = PAGE,
           annotations: dict[str, str] | None = None) -> dict[str, Any]:
    expected = [{"exp_labels": labels, "exp_annotations": annotations or {}}] if fires else []
    return {"eval_time": eval_time, "alertname": name, "exp_alerts": expected}


def _annotations(name: str, value_text: str) -> dict[str, str]:
    """The rule's annotations with {{ $value ... }} rendered as Prometheus renders this case's value."""
    rule = next(r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if r["alert"] == name)
    return {k: re.sub(r"\{\{ \$value[^}]*\}\}", value_text, v) for k, v in rule["annotations"].items()}


def cases() -> list[dict[str, Any]]:
    return [
        {   # Inbox lag: 60 s is fine, 61 s on either worker fires; it clears when the row is processed.
            "interval": "1m",
            "input_series": [
                {"series": 'msgworker_inbox_oldest_pending_age_seconds{instance="w1"}', "values": "0 30 60 61 0"},
                {"series": 'msgworker_inbox_oldest_pending_age_seconds{instance="w2"}', "values": "0 30 60 61 0"},
            ],
            "alert_rule_test": [
                _alert("MsgworkerInboxLag", "2m", fires=False),
                _alert("MsgworkerInboxLag", "3m", fires=True, annotations=_annotations("MsgworkerInboxLag", "1m 1s")),
                _alert("MsgworkerInboxLag", "4m", fires=False),
            ],
        },
        {   # A confirmation not accepted after 300 s is fine at 300, fires at 301.
            "interval": "1m",
            "input_series": [
                {"series": "msgworker_confirmation_oldest_unsent_age_seconds", "values": "0 300 301"},
            ],
            "alert_rule_test": [
                _alert("MsgworkerConfirmationNotSent", "1m", fires=False),
                _alert("MsgworkerConfirmationNotSent", "2m", fires=True,
                       annotations=_annotations("MsgworkerConfirmationNotSent", "5m 1s")),
            ],
        },
        {   # Due review items are normal; one overdue fires.
            "interval": "1m",
            "input_series": [
                {"series": 'msgworker_review_items{state="due"}', "values": "5 5 5"},
                {"series": 'msgworker_review_items{state="overdue"}', "values": "0 0 1"},
            ],
            "alert_rule_test": [
                _alert("MsgworkerReviewItemOverdue", "1m", fires=False),
                _alert("MsgworkerReviewItemOverdue", "2m", fires=True,
                       annotations=_annotations("MsgworkerReviewItemOverdue", "1")),
            ],
        },
        {   # Confirmations to opted-out numbers are the permitted case; one "other" send fires at once.
            "interval": "1m",
            "input_series": [
                {"series": 'msgworker_sends_allowed_while_opted_out_total{kind="confirmation",instance="w1"}',
                 "values": "0 3 9 20 40 60"},
                {"series": 'msgworker_sends_allowed_while_opted_out_total{kind="other",instance="w1"}',
                 "values": "0 0 0 0 1 1"},
                {"series": 'msgworker_sends_allowed_while_opted_out_total{kind="repeat_confirmation",instance="w1"}',
                 "values": "0 0 0 0 0 0"},
            ],
            "alert_rule_test": [
                _alert("MsgworkerSendAllowedToOptedOutNumber", "3m", fires=False),
                _alert("MsgworkerSendAllowedToOptedOutNumber", "4m", fires=True,
                       annotations=_annotations("MsgworkerSendAllowedToOptedOutNumber", "")),
            ],
        },
        {   # The gauges down for less than 2 minutes is a blip; for 2 minutes, a warning.
            "interval": "1m",
            "input_series": [{"series": "msgworker_database_gauges_up", "values": "1 0 0 0"}],
            "alert_rule_test": [
                _alert("MsgworkerMetricsDatabaseGaugesDown", "2m", fires=False),
                _alert("MsgworkerMetricsDatabaseGaugesDown", "3m", fires=True, labels={"severity": "warn"},
                       annotations=_annotations("MsgworkerMetricsDatabaseGaugesDown", "")),
            ],
        },
    ]


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: install Debian's prometheus package (scripts/lib.sh ensure_promtool)")
    return found


def run_promtool(tmp_path: Path, rules_text: str) -> subprocess.CompletedProcess[str]:
    rules = tmp_path / "alerts.yml"
    rules.write_text(rules_text)
    spec = tmp_path / "alerts_test.yml"
    spec.write_text(yaml.safe_dump({"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": cases()}))
    return subprocess.run([promtool(), "test", "rules", str(spec)], capture_output=True, text=True, timeout=60,
                          check=False)


def test_promtool_accepts_the_rules() -> None:
    run = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    names = [r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert {case["alertname"] for c in cases() for case in c["alert_rule_test"]} == set(names)


def test_each_rule_fires_when_it_should_and_not_before(tmp_path: Path) -> None:
    run = run_promtool(tmp_path, RULES.read_text())
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize(("original", "broken"), [
    ("msgworker_inbox_oldest_pending_age_seconds) > 60", "msgworker_inbox_oldest_pending_age_seconds) > 600"),
    ('{kind!="confirmation"}', '{kind="other",kind="repeat_confirmation"}'),
])
def test_a_broken_rule_is_caught(tmp_path: Path, original: str, broken: str) -> None:
    text = RULES.read_text()
    assert original in text
    run = run_promtool(tmp_path, text.replace(original, broken))
    assert run.returncode != 0


def test_every_metric_a_rule_reads_exists() -> None:
    known = set(COUNTED_FAMILIES) | set(DATABASE_GAUGES)
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            for name in re.findall(r"\bmsgworker_[a-z_]+", rule["expr"]):
                assert name in known, (rule["alert"], name)
