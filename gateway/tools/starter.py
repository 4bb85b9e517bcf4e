"""``gateway init [DIR]``: the shipped defaults as a starter project in a folder of your own.

It writes what ``gateway serve`` needs to serve the sandbox provider on the shipped defaults,
so an installed gateway (no repository checkout) runs them from an empty folder::

    gateway.yaml                 the repository's gateway.yaml
    mappings/sandbox.yaml        the sandbox's mapping
    mappings/sandbox.test.yaml   its offline test cases (`gateway test`)
    sandbox.key                  the sandbox's demo API key (gateway.yaml and the companion read it)

One source of truth: ``gateway/tools/starter_files/`` holds symbolic links to the repository's
``gateway.yaml`` and ``mappings/sandbox*.yaml`` (the wheel holds their contents), and the key is
the sandbox simulator's own ``simulators/sandbox/sandbox.key`` (the repository's ``sandbox.key``
links to it too). tests/test_installed_package.py checks that a wheel's starter files are the
repository's files, byte for byte.
"""

from __future__ import annotations

import shlex
import sys
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

STARTER_FILES = ("gateway.yaml", "mappings/sandbox.yaml", "mappings/sandbox.test.yaml")
KEY_FILE = "sandbox.key"


class StarterError(Exception):
    """Nothing was written; the message says why."""


def sources() -> dict[str, Traversable]:
    """Each file of the starter project (its path relative to the folder) and where it comes from."""
    starter = files("gateway.tools") / "starter_files"
    out: dict[str, Traversable] = {}
    for name in STARTER_FILES:
        source = starter
        for part in name.split("/"):
            source = source / part
        out[name] = source
    out[KEY_FILE] = files("simulators.sandbox") / "sandbox.key"
    return out


def init(folder: Path) -> list[Path]:
    """Write the starter project into ``folder`` (created if missing); never overwrites a file."""
    if folder.exists() and not folder.is_dir():
        raise StarterError(f"{folder} is not a folder")
    targets = {folder / name: source for name, source in sources().items()}
    taken = [str(path) for path in targets if path.exists() or path.is_symlink()]
    if taken:
        raise StarterError(f"{', '.join(taken)} already exist{'s' if len(taken) == 1 else ''}; nothing written "
                           "(move them away, or give another folder: gateway init DIR)")
    for path, source in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("xb") as out:  # "x": a file that appeared meanwhile is not overwritten
            out.write(source.read_bytes())
    (folder / KEY_FILE).chmod(0o600)  # a key file, even a demo one: readable by its owner only
    return list(targets)


def main(folder: Path) -> int:
    try:
        written = init(folder)
    except (StarterError, OSError) as exc:
        print(f"gateway init: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    here = folder.resolve() == Path.cwd().resolve()
    print(f"next: {'' if here else f'cd {shlex.quote(str(folder))} && '}gateway serve   "
          "(the gateway on http://127.0.0.1:8000, the sandbox provider on 127.0.0.1:8765)")
    return 0
