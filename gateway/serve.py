"""The ASGI entry point uvicorn imports in each worker process."""

from __future__ import annotations

import os

from litestar import Litestar

from . import logs
from .app import create_app
from .errors import ConfigError
from .load import load


def app_from_environment() -> Litestar:
    logs.configure(os.environ.get("GATEWAY_LOG_LEVEL", "INFO"))
    plan, diagnostics = load(os.environ.get("GATEWAY_CONFIG", "gateway.yaml"))
    if plan is None:
        raise ConfigError([d for d in diagnostics if d.severity == "error"])
    return create_app(plan)
