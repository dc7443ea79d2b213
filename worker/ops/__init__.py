"""Operator tooling that is not part of a flow: doctor, demo, the development stack, PII rotation.

Nothing on the request or send path imports from here."""
