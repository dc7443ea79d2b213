"""The consent classifier's public interface (compliance.keywords)."""

from __future__ import annotations

import json

import pytest

from compliance.keywords import CLASSIFIER_VERSION, Intent, classify


@pytest.mark.parametrize("text", ["STOP", "stop", "Stop.", "ＳＴＯＰ", "  sToP  ", "stooop"])
def test_exact_stop_is_opt_out(text: str) -> None:
    """STOP in any casing, width or punctuation is an opt-out by the exact-keyword rule."""
    result = classify(text)
    assert result.intent is Intent.OPT_OUT
    assert result.rule == "exact_keyword"
    assert result.matched == "stop"


def test_evidence_is_json() -> None:
    """as_evidence() is JSON-serialisable and carries the classifier version."""
    evidence = classify("STOPALL").as_evidence()
    assert json.loads(json.dumps(evidence))["classifier_version"] == CLASSIFIER_VERSION
    assert evidence["scope_all"] is True
