"""``python -m worker.cli``: the same as the ``msgworker`` script (``msgworker run`` starts children this way)."""

from worker.cli import main

main()
