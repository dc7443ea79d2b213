"""Compliance evidence: the opt-out audit report, the per-number dossier and their verifier.

Pure report rules live in compliance/; this package reads the database and writes files."""
