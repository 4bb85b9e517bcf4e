"""The fake gift card provider: a raw ASGI app (no framework), one fixed JSON answer.

    python -m uvicorn benchmarks.hotpath.fake_provider:app --http httptools --port 18081

Every request (POST or GET, any path) gets the same 200 JSON body, after the request body is
read: it carries what every benchmark mapping and adapter extracts (a balance, a card number and
PIN for issue), so the provider costs the same, and as little as possible, for every target.
"""

from __future__ import annotations

import json

CARD_NUMBER = "6006491111111111"
CARD_PIN = "480163"
BALANCE_MINOR = 5000
CURRENCY = "USD"

BODY = json.dumps({
    "result": "ok",
    "card": {
        "number": CARD_NUMBER,
        "pin": CARD_PIN,
        "balance": {"amount_minor": BALANCE_MINOR, "currency": CURRENCY},
    },
}, separators=(",", ":")).encode()

_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())],
}
_BODY = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:  # read (and drop) the request body, as a real server would
        message = await receive()
        more = message.get("more_body", False)
    await send(_START)
    await send(_BODY)
