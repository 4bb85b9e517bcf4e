"""The Litestar app of a simulator: provider routes behind the gate, plus the ``/_sim`` test controls."""

from __future__ import annotations

import logging
import traceback
from typing import Annotated, Any, Callable, Iterable, Sequence

import msgspec
from litestar import Litestar, Request, Response, delete, get, post
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.types import ControllerRouterHandler, Receive, Scope, Send

from .core import Fault, FaultMode, SimCore
from .dialect import Dialect, ReplyError, SimError
from .gate import Gate, Reply
from .validation import decode_neutral

MAX_BODY_BYTES = 1024 * 1024
SIM_PREFIX = "/_sim"


def prefix_matcher(prefix: str) -> Callable[[str], bool]:
    """Paths at or under ``prefix`` are the provider API."""
    prefix = prefix.rstrip("/")
    return lambda path: path == prefix or path.startswith(prefix + "/")


def everything_but_sim(path: str) -> bool:
    """Every path except ``/_sim/*`` is the provider API (so a wrong base path is recorded too)."""
    return not (path == SIM_PREFIX or path.startswith(SIM_PREFIX + "/"))


def reply_response(reply: Reply) -> Response[bytes]:
    return Response(
        reply.content, status_code=reply.status, media_type="application/json", headers=reply.headers or None
    )


class FaultRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    mode: FaultMode
    times: Annotated[int, msgspec.Meta(ge=1)] = 1
    seconds: Annotated[float, msgspec.Meta(ge=0, le=300)] | None = None
    status: Annotated[int, msgspec.Meta(ge=400, le=599)] | None = None

    def __post_init__(self) -> None:
        # msgspec turns a ValueError raised here into a ValidationError, hence a 400.
        if (self.mode == "delay") != (self.seconds is not None):
            raise ValueError("`seconds` is required for mode 'delay' and only allowed there")
        if (self.mode == "status") != (self.status is not None):
            raise ValueError("`status` is required for mode 'status' and only allowed there")


# --- /_sim: test controls (no auth, never recorded) ---------------------------------------------


@get(f"{SIM_PREFIX}/health")
async def sim_health() -> dict[str, str]:
    return {"status": "ok"}


@get(f"{SIM_PREFIX}/calls")
async def sim_list_calls(sim: SimCore) -> dict[str, Any]:
    return {"calls": sim.calls}


@delete(f"{SIM_PREFIX}/calls")
async def sim_clear_calls(sim: SimCore) -> None:
    sim.calls.clear()


@post(f"{SIM_PREFIX}/faults")
async def sim_queue_fault(request: Request[Any, Any, Any], sim: SimCore) -> dict[str, Any]:
    body = decode_neutral(request.headers.get("content-type"), await request.body(), FaultRequest)
    sim.faults.append(Fault(body.mode, body.times, body.seconds or 0.0, body.status or 0))
    return {"faults": [fault.describe() for fault in sim.faults]}


@delete(f"{SIM_PREFIX}/faults")
async def sim_clear_faults(sim: SimCore) -> None:
    sim.faults.clear()


@post(f"{SIM_PREFIX}/reset", status_code=204)
async def sim_reset(sim: SimCore) -> None:
    async with sim.lock:
        sim.reset()


@get(f"{SIM_PREFIX}/cards")
async def sim_list_cards(sim: SimCore) -> dict[str, Any]:
    return {"cards": sim.card_views()}


@post(f"{SIM_PREFIX}/cards")
async def sim_put_card(request: Request[Any, Any, Any], sim: SimCore) -> dict[str, Any]:
    body = decode_neutral(request.headers.get("content-type"), await request.body(), sim.card_schema)
    async with sim.lock:
        return {"card": sim.put_card_from(body)}


SIM_ROUTES: list[ControllerRouterHandler] = [
    sim_health,
    sim_list_calls,
    sim_clear_calls,
    sim_queue_fault,
    sim_clear_faults,
    sim_reset,
    sim_list_cards,
    sim_put_card,
]


# --- the app -------------------------------------------------------------------------------------


class SimApp(Litestar):
    """Litestar with the gate wrapped around its router for API paths (see ``gate.py`` for why)."""

    gate: Gate
    dialect: Dialect
    neutral: Dialect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[override]
        if scope["type"] == "http" and self.gate.is_api_path(scope["path"]):
            await self.gate(scope, receive, send, super().__call__)
        else:
            await super().__call__(scope, receive, send)

    def dialect_for(self, path: str) -> Dialect:
        return self.dialect if self.gate.is_api_path(path) else self.neutral


def _sim_error(_: Request[Any, Any, Any], exc: SimError) -> Response[bytes]:
    return reply_response(exc.reply())


def _reply_error(_: Request[Any, Any, Any], exc: ReplyError) -> Response[bytes]:
    return reply_response(exc.reply)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    app: SimApp = request.app  # type: ignore[assignment]
    return reply_response(app.dialect_for(request.url.path).http_error(exc.status_code, exc.detail))


def _unexpected_error(logger: logging.Logger) -> Callable[[Request[Any, Any, Any], Exception], Response[bytes]]:
    def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
        # Only the exception type and code locations: messages, paths and even source lines (seed
        # tables) may carry card numbers or PINs.
        frames = "".join(f"  {f.filename}:{f.lineno} in {f.name}\n" for f in traceback.extract_tb(exc.__traceback__))
        logger.error("internal error %s\n%s", type(exc).__name__, frames)
        app: SimApp = request.app  # type: ignore[assignment]
        return reply_response(app.dialect_for(request.url.path).internal_error())

    return handle


def create_sim_app(
    *,
    core: SimCore,
    dialect: Dialect,
    route_handlers: Sequence[ControllerRouterHandler],
    logger_name: str,
    api_paths: str | Callable[[str], bool] = everything_but_sim,
    masked_headers: Iterable[str] = (),
    max_body_bytes: int = MAX_BODY_BYTES,
    reject_options: bool = True,
) -> SimApp:
    """A simulator app: ``route_handlers`` (the provider API) behind the gate, plus ``/_sim``.

    - ``core``: the simulator's state; handlers get it injected as the ``sim`` parameter, and it is
      also ``app.state.simulator``.
    - ``dialect``: the provider's error shapes and pre-routing ``check`` (auth, headers).
    - ``api_paths``: a path prefix (``"/v1"``) or a predicate; the default treats every path but
      ``/_sim/*`` as API, so calls to a wrong base path are recorded, faulted and authenticated.
    - ``masked_headers``: header names shown as ``"***"`` in the call log (credentials).
    """
    is_api_path = prefix_matcher(api_paths) if isinstance(api_paths, str) else api_paths
    app = SimApp(
        route_handlers=[*route_handlers, *SIM_ROUTES],
        dependencies={"sim": Provide(lambda: core, sync_to_thread=False)},
        exception_handlers={
            SimError: _sim_error,
            ReplyError: _reply_error,
            HTTPException: _http_error,
            Exception: _unexpected_error(logging.getLogger(logger_name)),
        },
        request_max_body_size=max_body_bytes,
        openapi_config=None,
        # No Litestar logging: its exception logs include request paths, which may contain card numbers.
        logging_config=None,
        debug=False,
    )
    app.gate = Gate(
        core,
        dialect,
        is_api_path=is_api_path,
        masked_headers=masked_headers,
        max_body_bytes=max_body_bytes,
        reject_options=reject_options,
    )
    app.dialect = dialect
    app.neutral = Dialect()
    app.state.simulator = core
    return app
