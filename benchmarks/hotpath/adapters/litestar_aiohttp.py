"""Balance webhook by hand: Litestar + aiohttp (one ClientSession for the process).

    PROVIDER_URL=http://127.0.0.1:18081 uvicorn benchmarks.hotpath.adapters.litestar_aiohttp:app
"""

from __future__ import annotations

import os

import aiohttp
import msgspec
from litestar import Litestar, post
from litestar.exceptions import HTTPException

PROVIDER_URL = os.environ.get("PROVIDER_URL", "http://127.0.0.1:18081")


class Identifier(msgspec.Struct):
    number: str
    pin: str | None = None


class BalanceRequest(msgspec.Struct):
    identifier: Identifier
    metadata: dict | None = None


session: aiohttp.ClientSession | None = None


async def open_session() -> None:
    global session
    session = aiohttp.ClientSession(PROVIDER_URL, timeout=aiohttp.ClientTimeout(total=10))


async def close_session() -> None:
    if session is not None:
        await session.close()


@post("/{provider:str}/gift_card/balance", status_code=200)
async def balance(provider: str, data: BalanceRequest) -> dict:
    payload = {"number": data.identifier.number.replace(" ", "").replace("-", "").upper()}
    if data.identifier.pin:
        payload["pin"] = data.identifier.pin
    async with session.post("/v1/cards/lookup", json=payload) as response:  # type: ignore[union-attr]
        if response.status != 200:
            raise HTTPException(status_code=502, detail=f"provider answered {response.status}")
        answer = await response.json()
    if answer.get("result") != "ok":
        raise HTTPException(status_code=400, detail="card refused")
    money = answer["card"]["balance"]
    return {"value": money["amount_minor"] / 100, "currency": money["currency"]}


app = Litestar([balance], on_startup=[open_session], on_shutdown=[close_session], openapi_config=None)
