"""The installed package, not the source tree: README.md's promise for `pip install .`.

A wheel is built from a copy of this repository (`pip wheel --no-deps`), installed NOT editable
into a fresh venv in a temporary folder (its dependencies come from the venv running the tests,
through a `.pth` file; `gateway` and `simulators` themselves come from the wheel alone, which the
test checks), then, from an empty folder with no repository on any path, `gateway init` and
`gateway serve` run and the curls of README.md's "Try it" answer as printed.

The one liberty taken: the ports. The starter's `gateway.yaml` puts the sandbox on 8765 and
`serve` binds 8000; other runs may hold those, so the test moves both to free ports.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path
from typing import Iterator, NamedTuple

import httpx
import pytest

from gateway.cli import main as gateway_main
from gateway.tools.starter import KEY_FILE, STARTER_FILES

from .conftest import ROOT, SANDBOX_KEY_FILE, _leaks

# What the starter writes, and the repository file each must equal byte for byte.
STARTER = {**{name: ROOT / name for name in STARTER_FILES}, KEY_FILE: SANDBOX_KEY_FILE}
# Never part of a build: virtual environments (any folder holding pyvenv.cfg), caches, outputs.
SKIP = {".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache", ".gateway", ".hypothesis"}


class Installed(NamedTuple):
    wheel: Path
    bin: Path  # the fresh venv's bin folder


def _ignore(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n in SKIP or n.endswith(".egg-info")
            or (Path(folder, n) / "pyvenv.cfg").exists()}


def _run(command: list[str], **kw) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, **kw)
    assert result.returncode == 0, f"{command}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def _clean_env() -> dict[str, str]:
    """No way back to the source tree: no PYTHONPATH, no active venv."""
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("installed")
    # Build from a copy: an in-tree build would write build/ into the checkout, and a stale
    # build/lib from an earlier build would end up in the wheel. Links are copied as links (the
    # starter files are links into the repository; the build reads through them).
    src = tmp / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=_ignore)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(tmp / "dist"), str(src)])
    (wheel,) = (tmp / "dist").glob("*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    # The dependencies (litestar, uvicorn, ...): the test venv's site-packages, appended to sys.path.
    # Its own .pth files (the editable install's finder among them) are not run from there.
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "gateway-test-dependencies.pth").write_text("".join(f"{d}\n" for d in sorted(deps)))
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet", str(wheel)])
    return Installed(wheel, venv / "bin")


def test_the_wheel_holds_the_simulators_their_files_and_the_starter(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        shipped = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "simulators").rglob("*")
                         if p.is_file() and "__pycache__" not in p.parts)
        assert "simulators/sandbox/__main__.py" in shipped and "simulators/sandbox/sandbox.key" in shipped
        assert [name for name in shipped if name not in names] == []
        for name in STARTER_FILES:  # the contents of the repository's files, not links
            assert wheel.read(f"gateway/tools/starter_files/{name}") == (ROOT / name).read_bytes(), name
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"gateway", "simulators"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _readme_curls() -> list[tuple[str, str, str]]:
    """The curls of README.md's "Try it": (path, body, the answer printed under it)."""
    section = (ROOT / "README.md").read_text().split("\n## Try it\n", 1)[1].split("\n## ", 1)[0]
    curls = re.findall(r"curl -s -X POST http://localhost:8000(/\S+) -H 'Content-Type: application/json' \\\n"
                       r"\s+-d '([^']*)'\n# (.+)\n", section)
    assert len(curls) >= 5 and curls[0][0] == "/sandbox/gift_card/balance", curls
    return curls


def _matches(printed: str, actual: str) -> bool:
    return re.fullmatch(re.escape(printed.strip()).replace("…", ".+?"), actual.strip(), re.S) is not None


@pytest.fixture
def served(installed: Installed, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """README: `mkdir demo && cd demo && gateway init && gateway serve`, with the installed gateway."""
    demo = tmp_path / "demo"
    demo.mkdir()
    env = _clean_env()
    where = _run([str(installed.bin / "python"), "-c", "import gateway, simulators; "
                  "print(gateway.__file__); print(simulators.__file__)"], cwd=demo, env=env).stdout.split()
    assert all(Path(p).is_relative_to(installed.bin.parent) for p in where), where  # from the wheel

    init = _run([str(installed.bin / "gateway"), "init"], cwd=demo, env=env)
    assert init.stdout.splitlines()[:len(STARTER)] == [f"wrote {name}" for name in STARTER]
    for name, source in STARTER.items():
        assert (demo / name).read_bytes() == source.read_bytes(), name

    config = (demo / "gateway.yaml").read_text()
    sim_port, port = _free_port(), _free_port()
    assert config.count("8765") == 3  # base_url, the companion's --port, its ready_url
    (demo / "gateway.yaml").write_text(config.replace("8765", str(sim_port)))

    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(installed.bin / "gateway"), "serve", "--port", str(port)], cwd=demo, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"gateway serve exited {proc.returncode}:\n{log.read_text()}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"gateway serve not ready in 30 s:\n{log.read_text()}"
            time.sleep(0.1)
        yield port, log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # `serve` stops its companion on SIGTERM
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def test_gateway_init_then_serve_from_an_empty_folder_answers_the_readme_curls(served: tuple[int, Path]) -> None:
    port, log = served
    for path, body, printed in _readme_curls():
        response = httpx.post(f"http://127.0.0.1:{port}{path}", content=body,
                              headers={"Content-Type": "application/json"}, timeout=10)
        assert _matches(printed, response.text), f"POST {path}: README prints {printed}, got {response.text}"
    output = log.read_text()
    assert "sandbox provider listening on" in output and '"provider":"sandbox"' in output
    assert not _leaks(output, {"6006491111111111", "480163", "6006495555555551", "710551", "6006496666666666"})


@pytest.mark.unit
def test_init_writes_the_repository_defaults_and_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    demo = tmp_path / "new folder"
    assert gateway_main(["init", str(demo)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:len(STARTER)] == [f"wrote {demo / name}" for name in STARTER]
    assert out[-1].startswith(f"next: cd '{demo}' && gateway serve")
    for name, source in STARTER.items():
        assert (demo / name).read_bytes() == source.read_bytes(), name
    assert (demo / KEY_FILE).stat().st_mode & 0o777 == 0o600

    (demo / "gateway.yaml").write_text("mine\n")
    assert gateway_main(["init", str(demo)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gateway init: ") and "gateway.yaml" in err and "nothing written" in err
    assert (demo / "gateway.yaml").read_text() == "mine\n"

    other = tmp_path / "other"
    (other / "mappings").mkdir(parents=True)
    (other / "mappings" / "sandbox.yaml").write_text("mine\n")
    assert gateway_main(["init", str(other)]) == 2
    assert "mappings/sandbox.yaml already exists" in capsys.readouterr().err
    assert sorted(p.name for p in other.rglob("*")) == ["mappings", "sandbox.yaml"]  # nothing else written
