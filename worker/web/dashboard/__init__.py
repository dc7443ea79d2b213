"""The compliance dashboard: server-rendered pages for compliance staff and station managers at /dashboard.

It owns sign-in (API token, or staff e-mail and argon2 password), server-side sessions with a
CSRF token, and the pages (overview, number lookup, review queue, campaigns, reports); each
page runs in one transaction as the admin API's database role under row-level security and
calls the same services as the CLI and the API (docs/dashboard.md).
"""
