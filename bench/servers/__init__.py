"""Server apps, one process each. Run as scripts (not as package modules), so the
baseline venv imports its own `aiohttp_session_ws` 1.1.1 and never this checkout."""
