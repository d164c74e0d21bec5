"""The web edge: the aiohttp application factory (``courtlink.web.app.create_app``), the HTTP
API, the pages and the static files.

Nothing is imported here, so that importing one module of the edge (``web.schemas`` from a
test, say) does not build the whole app.
"""
