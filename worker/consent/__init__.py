"""Consent service: the ledger, state projection, replies, review queue (worker side)."""
