"""Inbound ingest: webhook inbox rows into customers, threads, messages and delivery events.

The receiver (worker/web/webhooks.py) stores each provider POST as a row in
core.webhook_inbox; the drain (worker/ingest/drain.py) claims pending rows in batches and
processes each in its own savepoint. See /work/notes/inbound.md for the operator's view.
"""
