"""Balance webhook by hand: FastAPI + httpx (one default ``httpx.AsyncClient``, pydantic models).

    PROVIDER_URL=http://127.0.0.1:18081 uvicorn benchmarks.hotpath.adapters.fastapi_httpx:app
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

PROVIDER_URL = os.environ.get("PROVIDER_URL", "http://127.0.0.1:18081")


class Identifier(BaseModel):
    number: str
    pin: str | None = None


class BalanceRequest(BaseModel):
    identifier: Identifier
    metadata: dict | None = None


class BalanceResponse(BaseModel):
    value: float
    currency: str


client = httpx.AsyncClient(base_url=PROVIDER_URL, timeout=10)  # httpx's default limits


@asynccontextmanager
async def lifespan(_app: FastAPI):  # type: ignore[no-untyped-def]
    yield
    await client.aclose()


app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)


@app.post("/{provider}/gift_card/balance", response_model=BalanceResponse)
async def balance(provider: str, body: BalanceRequest) -> BalanceResponse:
    payload = {"number": body.identifier.number.replace(" ", "").replace("-", "").upper()}
    if body.identifier.pin:
        payload["pin"] = body.identifier.pin
    response = await client.post("/v1/cards/lookup", json=payload)
    if response.status_code != 200:
        raise HTTPException(status_code=502, detail=f"provider answered {response.status_code}")
    answer = response.json()
    if answer.get("result") != "ok":
        raise HTTPException(status_code=400, detail="card refused")
    money = answer["card"]["balance"]
    return BalanceResponse(value=money["amount_minor"] / 100, currency=money["currency"])
