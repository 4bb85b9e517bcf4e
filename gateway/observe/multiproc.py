"""The per-run directory prometheus-client's multiprocess mode keeps its files in.

``gateway serve --workers N`` (N > 1) makes a fresh, private directory, points
``PROMETHEUS_MULTIPROC_DIR`` at it before uvicorn starts the workers (prometheus-client reads
the variable when a worker first imports it), and removes it when serve stops. Fresh per run:
files left by an earlier run would add its counts to this one's. A directory the operator set
in the environment is replaced too, for the same reason.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from typing import Iterator

from .metrics import MULTIPROC_ENV


@contextmanager
def metrics_directory(needed: bool) -> Iterator[str | None]:
    if not needed:
        yield None
        return
    directory = tempfile.mkdtemp(prefix="gateway-metrics-")
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
