"""The ceiling: the smallest useful ASGI application, served by Granian like Strongroom.

    python -m granian --interface asgi --factory --workers 1 hello_asgi:create_app

(run from ``benchmarks/``; ``benchmarks/suite.py`` starts it with the same Granian flags as
``strongroom serve``). Every HTTP request answers ``200`` with a small JSON body; whatever a
Strongroom request costs above this is the application's own work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

BODY = b'{"hello":"world"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def create_app() -> Callable[[dict[str, Any], Receive, Send], Awaitable[None]]:
    """Granian's factory target (``strongroom serve`` runs Granian with ``--factory`` too)."""
    return app
