"""Balance webhook by hand: Litestar + httpx (one default ``httpx.AsyncClient`` for the process).

    PROVIDER_URL=http://127.0.0.1:18081 uvicorn benchmarks.hotpath.adapters.litestar_httpx:app
"""

from __future__ import annotations

import os

import httpx
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


client = httpx.AsyncClient(base_url=PROVIDER_URL, timeout=10)  # httpx's default limits


async def close_client() -> None:
    await client.aclose()


@post("/{provider:str}/gift_card/balance", status_code=200)
async def balance(provider: str, data: BalanceRequest) -> dict:
    payload = {"number": data.identifier.number.replace(" ", "").replace("-", "").upper()}
    if data.identifier.pin:
        payload["pin"] = data.identifier.pin
    response = await client.post("/v1/cards/lookup", json=payload)
    if response.status_code != 200:
        raise HTTPException(status_code=502, detail=f"provider answered {response.status_code}")
    answer = response.json()
    if answer.get("result") != "ok":
        raise HTTPException(status_code=400, detail="card refused")
    money = answer["card"]["balance"]
    return {"value": money["amount_minor"] / 100, "currency": money["currency"]}


app = Litestar([balance], on_shutdown=[close_client], openapi_config=None)
