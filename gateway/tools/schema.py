"""JSON Schemas for gateway.yaml and mapping files, generated from the loader's own types.

Never written by hand: ``gateway schema`` prints them and ``docs/schema/*.schema.json`` are the
same output, committed so editors (yaml-language-server) can use them; a test keeps them equal.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from ..config.model import GatewayFile, MappingFile
from ..contracts import OPERATIONS

KINDS: dict[str, tuple[type, str]] = {
    "mapping": (MappingFile, "NewStore gift card gateway: a provider mapping"),
    "gateway": (GatewayFile, "NewStore gift card gateway: gateway.yaml"),
}


def schema(kind: str) -> dict[str, Any]:
    type_, title = KINDS[kind]
    out = msgspec.json.schema(type_)
    if kind == "mapping":
        # The operation names come from NewStore's contracts, not from the config types.
        operations = out["$defs"]["MappingFile"]["properties"]["operations"]
        operations["propertyNames"] = {"enum": list(OPERATIONS)}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title, **out}


def text(kind: str) -> str:
    return json.dumps(schema(kind), indent=2, sort_keys=False) + "\n"
