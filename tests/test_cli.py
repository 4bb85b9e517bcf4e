"""`gateway serve` as a user runs it: the README's command and curls, and a refusal to start."""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from .conftest import ROOT, _leaks
from .newstore_spec import check_error, check_response

GATEWAY = [sys.executable, "-m", "gateway.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def readme_curls() -> list[tuple[str, dict, str]]:
    """(operation, request body, documented output) for every curl in the README's Try-it section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Try it", 1)[1].split("\n## ", 1)[0]
    out = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for command, expected in re.findall(r"(curl .*?)\n# (.*?)\n", block.replace("\\\n", " "), re.S):
            args = shlex.split(command)
            url = args[args.index("-X") + 2] if args[args.index("-X") + 1] == "POST" else None
            body = json.loads(args[args.index("-d") + 1])
            out.append((url, body, expected))
    return out


def test_serve_refuses_a_broken_config_and_says_where(tmp_path):
    (tmp_path / "m.yaml").write_text("base_url: https://x.example\noperations:\n  balance:\n    steps: []\n")
    (tmp_path / "gateway.yaml").write_text("providers:\n  p:\n    mapping: m.yaml\n    inbound: none\n")
    result = subprocess.run(GATEWAY + ["serve", "--config", "gateway.yaml", "--port", str(_free_port())],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "error: m.yaml:4:5: GW033 operation `balance` has no `steps`; map it or declare it `unsupported: <reason>` (at operations.balance)" in result.stderr
    assert "gateway: gateway.yaml has errors; not starting" in result.stderr


@pytest.mark.skipif(_port_in_use(8765), reason="port 8765, where the shipped config starts the sandbox, is taken on this machine")
@contextlib.contextmanager
def shipped_gateway(tmp_path):
    """`gateway serve` on the shipped gateway.yaml (sandbox companion included), on a free port."""
    with shipped_gateway(tmp_path) as (base, log):
        result = subprocess.run(["bash", "-ec", script.replace("http://localhost:8000", base)], cwd=tmp_path,
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    actual = [line for line in result.stdout.splitlines() if line]
    assert len(actual) == len(expected), actual
    for want, got in zip(expected, actual):
        assert re.fullmatch(re.escape(want).replace("…", "[^\"]+"), got), (want, got)
    assert not _leaks(log.read_text(), {"6006491111111111", "480163"})
