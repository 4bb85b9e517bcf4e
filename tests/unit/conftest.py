"""The unit layer: every test under ``tests/unit/`` is marked ``unit`` (``pytest -m unit``).

No sockets, no subprocesses, no sleeps: mappings are compiled from text, providers are ASGI
apps called in-process through ``httpx.ASGITransport`` (the transport seam the gateway already
has), and the root conftest's autouse fixture skips starting the sandbox for ``unit`` tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before `-m unit` deselects anything
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A conftest's hook sees the whole session's items: mark only this folder's.
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.unit)
