"""Starlette's TestClient, imported without its httpx deprecation warning.

Starlette now prefers the ``httpx2`` package for its TestClient and warns (an error under
our ``filterwarnings = error``) when it falls back to ``httpx``, which is what is installed
and works. The warning is about a future dependency switch, not about our code.
"""

from __future__ import annotations

import warnings

from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r".*starlette\.testclient.*", category=StarletteDeprecationWarning)
    from starlette.testclient import TestClient

__all__ = ["TestClient"]
