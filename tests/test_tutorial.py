"""docs/tutorial.md, run as written: every command in order, in an empty folder.

Blocks: ```sh runs a command (its output must match the ```text block after it, where `…`
stands for anything), ```sh background starts a long-running command, and ```yaml file=PATH
writes that file.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .conftest import ROOT, _leaks

TUTORIAL = ROOT / "docs" / "tutorial.md"
BLOCK = re.compile(r"```(\w+)([^\n]*)\n(.*?)```", re.S)


def _in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _matches(expected: str, actual: str) -> bool:
    pattern = re.escape(expected.strip()).replace("…", ".+?")
    return re.fullmatch(pattern, actual.strip(), re.S) is not None


@pytest.mark.skipif(shutil.which("curl") is None, reason="the tutorial calls the gateway with curl, which is not installed")
@pytest.mark.skipif(_in_use(8001) or _in_use(8765), reason="ports 8001 and 8765, which the tutorial uses as printed, are taken")
def test_the_tutorial_runs_as_written(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    blocks = BLOCK.findall(TUTORIAL.read_text())
    background: list[subprocess.Popen] = []
    last_output: str | None = None
    ran = 0
    log = tmp_path / "serve.log"
    try:
        for kind, info, body in blocks:
            info = info.strip()
            if kind == "yaml" and info.startswith("file="):
                path = tmp_path / info[len("file="):]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(body)
            elif kind == "sh" and info == "background":
                with log.open("ab") as out:
                    background.append(subprocess.Popen(["bash", "-c", body], cwd=tmp_path, env=env,
                                                       stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
                _wait_for("http://127.0.0.1:8001/health", background[-1], log)
            elif kind == "sh":
                result = subprocess.run(["bash", "-ec", body], cwd=tmp_path, env=env, capture_output=True,
                                        text=True, timeout=120)
                assert result.returncode == 0, f"{body}\n{result.stdout}\n{result.stderr}"
                last_output = result.stdout
                ran += 1
            elif kind == "text":
                assert last_output is not None, "a text block without a command before it"
                assert _matches(body, last_output), f"expected:\n{body}\nactual:\n{last_output}"
                last_output = None
    finally:
        for proc in background:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                proc.wait(20)
    assert ran >= 8
    output = log.read_text()
    assert '"provider":"mybank"' in output
    assert not _leaks(output, {"6006491111111111", "480163", "6006495555555552", "710552", "6006492222222222"})


def _wait_for(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    pytest.fail(f"{url} did not come up: {log.read_text()}")
