"""compliance/'s own data tables: the one file access its pure rules allow.

Each table is a CSV shipped in ``compliance/data/``; lines starting with ``#`` say where it came
from and how to rebuild it, so the provenance travels with the data.
"""

from __future__ import annotations

import csv
from importlib import resources

__all__ = ["read_table"]


def read_table(name: str) -> list[dict[str, str]]:
    """The rows of ``compliance/data/<name>``, comment lines left out."""
    text = resources.files("compliance").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
