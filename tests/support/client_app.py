"""`python -m tests.support.client_app --port P --node NAME`: a page driving the browser client.

A real aiohttp app on the library (`session_ws`, `add_client_route`, the origin
allow-list, shutdown with 1001). The page (`GET /`) imports the shipped client
and records every hook call in `window.events`; the test starts the client with
`page.evaluate("start(options)")`. Server-side behaviour is driven by:

- messages on the socket: `close:CODE` (the handler closes with CODE from its own
  task), `abort` (TCP dropped without a close frame: the browser sees 1006);
- `POST /reset`: close this session's sockets with 4001 after the response and
  rotate its id (a logout); `POST /revoke-all`: close every session's sockets
  with 4001 without rotating (the browser keeps a revoked, stale cookie);
- `POST /on-connect?code=C&count=N`: the next N sockets are closed with C at once.
"""

from __future__ import annotations

import argparse
import json
import time

import aiohttp_session
from aiohttp import WSMsgType, web

from aiohttp_session_ws import (
    SessionWSRegistry,
    add_client_route,
    get_registry,
    new_session_ws_id,
    schedule_close_all_session_ws,
    session_ws,
    session_ws_middleware,
    setup,
)

NODE = web.AppKey("node", str)
CLIENT_URL = web.AppKey("client_url", str)
ON_CONNECT = web.AppKey("on_connect", list)  # [code, remaining]
CONNECTS = web.AppKey("connects", list)  # monotonic times of accepted upgrades

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>client test</title></head>
<body data-node="{node}">
<pre id="state">idle</pre>
<script type="module">
import {{ SessionSocket, DEFAULT_STOP_CODES, retryDelay }} from "{client}";
window.events = [];
const record = (type, extra) => window.events.push({{
  type, t: performance.now(), now: Date.now(), state: window.live && window.live.state, ...extra,
}});
window.DEFAULT_STOP_CODES = DEFAULT_STOP_CODES;
window.retryDelay = retryDelay;
window.start = (options = {{}}) => {{
  window.live = new SessionSocket(options.url || "/ws", {{
    ...options,
    onOpen: () => record("open"),
    onMessage: (event) => record("message", {{ data: JSON.parse(event.data) }}),
    onClose: (close) => record("close", {{ close: {{ ...close }} }}),
    onSessionEnded: async (close) => {{
      record("sessionended", {{ code: close.code }});
      if (options.hookDelay) await new Promise((r) => setTimeout(r, options.hookDelay));
      record("hookdone");
    }},
    onChange: (client) => {{
      document.getElementById("state").textContent = client.state;
      record("change", {{ next: client.nextRetryAt, pause: client.pauseReason }});
    }},
    onStop: (client) => record("stop", {{ reason: client.stopReason }}),
  }});
  window.live.start();
}};
window.ready = true;
</script>
</body></html>
"""


async def page(request: web.Request) -> web.Response:
    await aiohttp_session.get_session(request)
    html = PAGE.format(node=request.app[NODE], client=request.app[CLIENT_URL])
    return web.Response(text=html, content_type="text/html")


async def websocket(request: web.Request) -> web.WebSocketResponse:
    app = request.app
    async with session_ws(request) as ws:
        if ws.closed:  # a revoked id: closed with 4001 already
            return ws
        app[CONNECTS].append(time.monotonic())
        await ws.send_json({"node": app[NODE], "connects": len(app[CONNECTS])})
        code, remaining = app[ON_CONNECT]
        if remaining > 0:
            app[ON_CONNECT][1] -= 1
            await ws.close(code=code, message=b"on-connect")
            return ws
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            if msg.data.startswith("close:"):
                await ws.close(code=int(msg.data[6:]), message=b"asked")
            elif msg.data == "abort" and request.transport is not None:
                request.transport.abort()
            elif msg.data == "ping":
                await ws.send_json({"pong": True})
    return ws


async def reset(request: web.Request) -> web.Response:
    response = web.json_response({"reset": True})
    await schedule_close_all_session_ws(request, response)
    await new_session_ws_id(request)
    return response


async def revoke_all(request: web.Request) -> web.Response:
    registry = get_registry(request)
    closed = sum([await registry.close_all_session(key) for key in list(registry)])
    return web.json_response({"closed": closed})


async def on_connect(request: web.Request) -> web.Response:
    request.app[ON_CONNECT][:] = [int(request.query["code"]), int(request.query["count"])]
    return web.json_response({"ok": True})


async def connects(request: web.Request) -> web.Response:
    return web.json_response(request.app[CONNECTS])


def make_app(node: str, origins: list[str]) -> web.Application:
    app = web.Application(
        middlewares=[
            aiohttp_session.session_middleware(aiohttp_session.SimpleCookieStorage()),
            session_ws_middleware,
        ]
    )
    app[NODE] = node
    app[ON_CONNECT] = [1000, 0]
    app[CONNECTS] = []
    app[CLIENT_URL] = add_client_route(app)
    app.router.add_get("/", page)
    app.router.add_get("/ws", websocket)
    app.router.add_post("/reset", reset)
    app.router.add_post("/revoke-all", revoke_all)
    app.router.add_post("/on-connect", on_connect)
    app.router.add_get("/connects", connects)
    app.router.add_get("/healthz", lambda request: web.json_response({"node": node}))
    setup(app, SessionWSRegistry(allowed_origins=origins or None, close_timeout=1.0))
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--node", default="A")
    parser.add_argument("--origin", action="append", default=[])
    args = parser.parse_args()
    print(json.dumps({"node": args.node, "port": args.port}), flush=True)
    web.run_app(make_app(args.node, args.origin), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
