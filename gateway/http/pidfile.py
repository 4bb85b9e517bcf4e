"""The pid file ``gateway serve`` writes, and ``gateway reload``, which signals through it.

The file holds the pid of the ``gateway serve`` process: the server itself with one worker,
uvicorn's supervisor with several (which passes SIGHUP on to each worker: reload.py). It is
removed when serve stops, unless another serve has written its own pid there meanwhile.
"""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

DEFAULT_NAME = ".gateway/gateway.pid"  # next to gateway.yaml, like the SQLite store


def default_path(config: str | Path) -> Path:
    return Path(config).resolve().parent / DEFAULT_NAME


@contextmanager
def written(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    mine = str(os.getpid())
    path.write_text(mine + "\n")
    try:
        yield
    finally:
        try:
            if path.read_text().strip() == mine:
                path.unlink()
        except OSError:
            pass


def send_reload(path: Path) -> tuple[int, str]:
    """SIGHUP to the gateway serve named in ``path``: (exit status, one line for the operator)."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return 1, (f"no pid file at {path}: is `gateway serve` running, with this --config or --pid-file "
                   "(GATEWAY_PID_FILE)?")
    except OSError as exc:
        return 1, f"cannot read the pid file {path}: {exc.strerror}"
    if not text.isdigit():
        return 1, f"the pid file {path} does not hold a pid ({text[:20]!r}); remove it and restart gateway serve"
    pid = int(text)
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return 1, f"no process {pid} (from {path}): gateway serve is not running; remove the stale pid file"
    except PermissionError:
        return 1, f"not allowed to signal process {pid} (from {path}): run gateway reload as the user running gateway serve"
    return 0, (f"sent SIGHUP to gateway serve (pid {pid}); each worker reloads its configuration and logs "
               "`reloaded …`, or the errors that kept the running configuration")
