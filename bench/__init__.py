"""Benchmarks for aiohttp_session_ws: `python -m bench [scenario] [--quick]`."""
