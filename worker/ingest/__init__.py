"""Inbound ingest: webhook inbox rows into customers, threads, messages and delivery events.

The drain claims stored rows in batches and hands SMS texts to worker.consent.inbound."""

