"""The login demo: passlib-hashed accounts, CSRF-protected login/logout, a live websocket.

Run it with `python -m demo_auth` (or `make demo-auth`); see the README's "The login demo".
"""
