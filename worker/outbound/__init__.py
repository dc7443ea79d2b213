"""The send path, from a due outbox row to Twilio: release, facts, decide, send, results.

Delivery callbacks, reconciliation of unknown outcomes, held texts and the rate limit live here too."""
