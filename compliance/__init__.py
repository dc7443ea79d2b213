"""Compliance rules as plain Python: no Celery, no broker, as little I/O as possible."""
