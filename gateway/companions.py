"""Companion processes: started before the gateway serves, stopped when it exits.

Meant for local development (the shipped config starts the sandbox provider this way), so the
README's first command needs no second terminal. ``{python}`` in a command is the interpreter
running the gateway, so the companion uses the same virtual environment.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Iterable

import httpx

from .plan import CompanionPlan


class CompanionFailed(RuntimeError):
    pass


class Companions:
    def __init__(self, plans: Iterable[CompanionPlan]) -> None:
        self.plans = tuple(plans)
        self.processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Companions:
        try:
            for plan in self.plans:
                command = [sys.executable if part == "{python}" else part for part in plan.command]
                process = subprocess.Popen(command, cwd=plan.cwd)
                self.processes.append(process)
                if plan.ready_url:
                    _wait_ready(plan, process)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes.clear()


def _wait_ready(plan: CompanionPlan, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + plan.ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CompanionFailed(f"companion `{plan.name}` exited with status {process.returncode} before it was ready")
        try:
            if httpx.get(plan.ready_url, timeout=1.0).status_code < 500:  # type: ignore[arg-type]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise CompanionFailed(f"companion `{plan.name}` was not ready at {plan.ready_url} within {plan.ready_timeout:g}s")
