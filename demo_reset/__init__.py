"""The reset demo: one page, a live websocket counter and a "reset session" button."""
