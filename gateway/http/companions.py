"""Companion processes: started before the gateway serves, stopped when it exits.

Meant for local development (the shipped config starts the sandbox provider this way), so the
README's first command needs no second terminal. ``{python}`` in a command is the interpreter
running the gateway, so the companion uses the same virtual environment.

A companion must never outlive the gateway: each runs in its own process group, which is
stopped as a whole (SIGTERM, then SIGKILL after a grace period) when the ``with`` block ends,
whether by a normal return, an exception or a signal turned into one (``gateway serve`` does
that for SIGTERM and SIGINT). On Linux each companion also asks the kernel for SIGTERM when the
gateway dies (``PR_SET_PDEATHSIG``), so even a SIGKILLed gateway takes its companions with it.

A companion whose ``ready_url`` port is already taken is refused before it starts: otherwise
the readiness check would be answered by whatever holds the port (typically a companion left
running by an earlier gateway) and the gateway would serve against that stale process.

A companion's output (stdout and stderr) is relayed line by line as the gateway's own log lines
(logger ``gateway.companion.<name>``), so the process prints one format only.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Callable, Iterable
from urllib.parse import urlsplit

import httpx

from ..plan import CompanionPlan

STOP_GRACE = 5.0  # seconds a companion gets to exit after SIGTERM before SIGKILL
_PR_SET_PDEATHSIG = 1


class CompanionFailed(RuntimeError):
    """A companion could not be started; the message is one line meant for the operator."""


class Companions:
    def __init__(self, plans: Iterable[CompanionPlan]) -> None:
        self.plans = tuple(plans)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.relays: dict[int, threading.Thread] = {}

    def __enter__(self) -> Companions:
        try:
            for plan in self.plans:
                _refuse_taken_port(plan)
                command = [sys.executable if part == "{python}" else part for part in plan.command]
                try:
                    process = subprocess.Popen(command, cwd=plan.cwd, process_group=0, preexec_fn=_die_with_parent(),
                                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                except OSError as exc:
                    raise CompanionFailed(
                        f"companion `{plan.name}` could not be started ({command[0]}: {exc.strerror}); "
                        "fix its `command` in the config, or start with --no-companions") from None
                self.processes.append(process)
                self.relays[process.pid] = _relay(plan.name, process)
                if plan.ready_url:
                    _wait_ready(plan, process, self.relays[process.pid])
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        with _signals_deferred():
            for process in reversed(self.processes):
                _stop(process)
                relay = self.relays.pop(process.pid, None)
                if relay is not None:
                    relay.join(timeout=1.0)  # its last lines, before the gateway's own last ones
            self.processes.clear()


def _relay(name: str, process: subprocess.Popen[bytes]) -> threading.Thread:
    """Log each line the companion prints, until it closes its output (it exits)."""
    log = logging.getLogger(f"gateway.companion.{name}")
    stream = process.stdout
    assert stream is not None

    def pump() -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                log.info("%s", line)
        stream.close()

    thread = threading.Thread(target=pump, name=f"companion-{name}-output", daemon=True)
    thread.start()
    return thread


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the companion's process group, SIGKILL it after ``STOP_GRACE``; reap the leader."""
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            pass
    # Whatever else the companion started in its group goes too, even if the leader is gone.
    _signal_group(process, signal.SIGKILL)
    if process.poll() is None:
        process.wait()


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # process_group=0: the group id is the leader's pid
    except (ProcessLookupError, PermissionError):
        pass


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when the gateway dies (None elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:  # runs in the child between fork and exec: no imports, no locks
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the gateway died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


class _signals_deferred:
    """Hold SIGINT/SIGTERM while companions are being stopped, so a second Ctrl-C cannot cut the
    cleanup short; they are delivered (to the previous handlers) once it is done."""

    def __enter__(self) -> None:
        self.pending: list[int] = []
        self.saved: dict[int, object] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, lambda s, _f: self.pending.append(s))

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        if exc[0] is None:
            for sig in dict.fromkeys(self.pending):
                signal.raise_signal(sig)


def _endpoint(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _refuse_taken_port(plan: CompanionPlan) -> None:
    endpoint = _endpoint(plan.ready_url) if plan.ready_url else None
    if endpoint is None:
        return
    host, port = endpoint
    try:
        with socket.create_connection((host, port), timeout=1.0):
            pass
    except OSError:
        return  # nothing listens there: the companion can take the port
    raise CompanionFailed(
        f"companion `{plan.name}` not started: port {port} ({plan.ready_url}) is already in use, "
        f"probably by a companion left running by an earlier gateway; stop that process "
        f"(`ss -ltnp 'sport = :{port}'` shows it) or start with --no-companions")


def _wait_ready(plan: CompanionPlan, process: subprocess.Popen[bytes], relay: threading.Thread) -> None:
    deadline = time.monotonic() + plan.ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            relay.join(timeout=1.0)  # its last words are logged before the gateway's
            raise CompanionFailed(
                f"companion `{plan.name}` exited with status {process.returncode} before it was ready at "
                f"{plan.ready_url} (its own output is above); is that port free? "
                "Fix it, or start with --no-companions")
        try:
            if httpx.get(plan.ready_url, timeout=1.0).status_code < 500:  # type: ignore[arg-type]
                if process.poll() is None:
                    return
                continue  # answered by someone else while ours died: reported above on the next turn
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise CompanionFailed(
        f"companion `{plan.name}` was not ready at {plan.ready_url} within {plan.ready_timeout:g}s; "
        "check its output above, or start with --no-companions")
