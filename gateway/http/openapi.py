"""``/schema``: the inbound webhooks as an OpenAPI 3.1 document, built from the contracts.

Every schema comes from the msgspec types in :mod:`gateway.contracts` (the same types that
decode requests and validate responses), every path from the contracts' routes, every status
from what the contracts and the app answer, and the ``provider`` path parameter is an enum of
the providers this gateway serves now (after a reload, the new plan's): the document cannot
drift from what the gateway does.

The webhook handlers read raw bytes (admission decodes them), so Litestar's own OpenAPI
generator would see nothing to describe; the document is built here and served as it is, with
Litestar's Swagger UI page around it at ``/schema``.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import msgspec
from litestar import Request, Response, get
from litestar.openapi.plugins import SwaggerRenderPlugin

from .. import contracts
from ..contracts import giftcard, payment
from ..observe import metrics
from ..plan import GatewayPlan

_PARAM = re.compile(r"\{(\w+):str\}")
_REF = "#/components/schemas/{name}"
# msgspec names the two ErrorBody types by their module; OpenAPI readers want short names.
_RENAME = {"gateway.contracts.giftcard.ErrorBody": "ErrorBody", "gateway.contracts.payment.ErrorBody": "PaymentErrorBody"}

# What each status means, per contract (README "How a webhook is handled" and "Pay with a gift card").
_GIFT_CARD_STATUSES = {
    400: "invalid_request (malformed JSON, a missing or invalid field), unknown_provider, unknown_operation, "
         "unsupported_operation, or the provider's rejection per the mapping's error rules",
    401: "unauthorized: the inbound API key is missing or wrong",
    404: "not_found: no such route",
    405: "method_not_allowed: webhooks are POST",
    408: "request_timeout: the body did not arrive in time",
    413: "request_too_large: the body is larger than max_body_bytes",
    415: "unsupported_media_type: the body is not application/json",
    500: "internal_error: a bug in the gateway; the outcome is unknown",
    502: "provider_unreachable, provider_error, provider_bad_response, provider_unexpected_response or mapping_error",
    503: "request_in_progress (a duplicate still running), idempotency_unavailable, or an error rule with retry: true",
    504: "provider_timeout or gateway_deadline_exceeded",
}
_PAYMENT_STATUSES = {
    400: "NewStore will not retry: failed_command (invalid body, unknown provider or operation), instrument_error, "
         "fraud_error, psp_api_error (outcome unknown: reconcile), internal_error (the mapping rendered something invalid)",
    401: "failed_command: the inbound API key is missing or wrong",
    404: "not_found: no such route (answered by the router, in the gift card Error body)",
    405: "method_not_allowed: webhooks are POST (answered by the router, in the gift card Error body)",
    408: "failed_command: the body did not arrive in time",
    413: "failed_command: the body is larger than max_body_bytes",
    415: "failed_command: the body is not application/json",
    500: "retrying with the same idempotency_key may work: retry_error, rate_limit, internal_error",
}


def document(plan: GatewayPlan) -> dict[str, Any]:
    """The OpenAPI document of ``plan``'s webhooks."""
    ops = list(contracts.OPERATIONS.values())
    types = [op.request_type for op in ops] + [op.response_type for op in ops] + [giftcard.ErrorBody, payment.ErrorBody]
    _, components = msgspec.json.schema_components(types, ref_template=_REF)
    paths: dict[str, Any] = {}
    for op in ops:
        route = "/{provider}" + _PARAM.sub(r"{\1}", op.route)
        paths[route] = {"post": _operation(op, sorted(plan.providers))}
    doc = {
        "openapi": "3.1.0",
        "info": {
            "title": "NewStore gift card gateway",
            "version": metrics.version(),
            "description": "NewStore's Gift Card Provider Webhooks and Payment Provider Webhooks, served for each "
                           "configured provider. A provider with an inbound key expects it in the header its "
                           "gateway.yaml names (default `Authorization: Bearer <key>`).",
        },
        "paths": paths,
        "components": {"schemas": components},
    }
    text = msgspec.json.encode(doc).decode()
    for long, short in _RENAME.items():
        text = text.replace(f'"{long}"', f'"{short}"').replace(_REF.format(name=long), _REF.format(name=short))
    return msgspec.json.decode(text)


def _operation(op: contracts.Operation, providers: list[str]) -> dict[str, Any]:
    contract = contracts.CONTRACTS[op.contract]
    params: list[dict[str, Any]] = [{
        "name": "provider", "in": "path", "required": True,
        "description": "A provider route name from gateway.yaml",
        "schema": {"type": "string", "enum": providers},
    }]
    if op.path_param:
        params.append({"name": op.path_param, "in": "path", "required": True,
                       "schema": {"type": "string", "minLength": 1}})
    success = _ref(op.item_type, array=True) if op.item_type else _ref(op.response_type)
    responses: dict[str, Any] = {"200": {"description": "Success", "content": {"application/json": {"schema": success}}}}
    gift_error = _ref(giftcard.ErrorBody)
    if op.contract == "payment":
        for status, meaning in _PAYMENT_STATUSES.items():
            schema = _ref(payment.ErrorBody)
            if status in (404, 405):
                schema = gift_error
            elif status == 500:  # a bug surfaces in the gift card Error body, whatever the route
                schema = {"anyOf": [_ref(payment.ErrorBody), gift_error]}
            responses[str(status)] = {"description": meaning, "content": {"application/json": {"schema": schema}}}
    else:
        for status, meaning in _GIFT_CARD_STATUSES.items():
            responses[str(status)] = {"description": meaning, "content": {"application/json": {"schema": gift_error}}}
    return {
        "operationId": op.name,
        "summary": op.summary,
        "tags": [contract.title],
        "parameters": params,
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(op.request_type),
                                                                           "example": op.example}}},
        "responses": responses,
    }


def _ref(cls: Any, array: bool = False) -> dict[str, Any]:
    name = getattr(cls, "__name__", str(cls))
    if cls in (giftcard.ErrorBody, payment.ErrorBody):
        name = f"{cls.__module__}.{cls.__qualname__}"
    ref = {"$ref": _REF.format(name=name)}
    return {"type": "array", "items": ref} if array else ref


def routes(current: Callable[[], GatewayPlan]) -> list[Any]:
    """``/schema`` and ``/schema/openapi.json`` for the plan ``current()`` returns (the one serving
    now: a reload that adds or removes a provider changes the ``provider`` enum), the document
    built once per plan."""
    built: list[Any] = [None, None, b""]  # the plan, its document, the document as JSON
    ui = SwaggerRenderPlugin(path="/schema")

    def spec() -> tuple[dict[str, Any], bytes]:
        plan = current()
        if built[0] is not plan:
            doc = document(plan)
            built[:] = [plan, doc, msgspec.json.encode(doc)]
        return built[1], built[2]

    @get("/schema/openapi.json", include_in_schema=False)
    async def openapi_json() -> Response[bytes]:
        return Response(spec()[1], media_type="application/vnd.oai.openapi+json")

    @get("/schema", include_in_schema=False)
    async def openapi_ui(request: Request[Any, Any, Any]) -> Response[bytes]:
        return Response(ui.render(request, spec()[0]), media_type="text/html")

    return [openapi_json, openapi_ui]
