"""msgworker web: serve the receiver and admin API."""

from __future__ import annotations

import typer
import uvicorn

from worker.cli.common import setup
from worker.metrics import prepare_multiprocess_dir


def web(
    host: str = typer.Option("127.0.0.1", help="interface to bind"),
    port: int = typer.Option(8000, help="port to bind"),
    workers: int = typer.Option(1, help="uvicorn worker processes"),
) -> None:
    """Serve the webhook receiver and admin API (ASGI, uvicorn)."""
    setup()
    # Every uvicorn worker counts into one directory; /metrics adds them up (worker/metrics.py).
    prepare_multiprocess_dir()
    uvicorn.run(
        "worker.web.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )
