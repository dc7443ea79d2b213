"""The HTTP side: the webhook receiver (plain Starlette routes, group commit) and the admin API.

The receiver stores and answers; it never imports the consent engine."""

