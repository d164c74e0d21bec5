"""The web edge: the aiohttp application factory (``courtlink.web.app.create_app``), the HTTP
API, the pages and the static files.

Nothing is imported here: papers/ uses web/filters.py for its templates, and importing the
whole app with it would close an import cycle (papers -> web -> app -> keys -> papers).
"""
