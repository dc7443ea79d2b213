"""The consent engine: the hash-chained ledger, its state projection, replies and the review queue.

It reaches the send path only through worker.outbox (enqueue, cancel), never worker.outbound."""

