"""The admin API's routes, one module per concern, each exporting ``router``.

To add a concern (campaigns, reports, ...): write ``routes/<name>.py`` with an ``APIRouter``
whose every operation depends on ``access(<roles>)`` and calls the concern's service inside
``access.transaction()``; list it in ``ROUTERS`` (worker/web/admin/app.py); grant the API role
its tables and write their policies in a migration (see 0005); add the operations to the role
table in tests/integration/web/admin/test_roles.py and docs/admin-api.md.
"""
