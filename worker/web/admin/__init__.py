"""The authenticated admin API for staff tools, kept apart from the receiver's hot path.

Its routes and middleware never run for webhooks; it calls the same services as the CLI."""
