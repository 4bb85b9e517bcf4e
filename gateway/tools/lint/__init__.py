"""``gateway lint``: the loader's diagnostics for a set of files, nothing more and nothing less.

Lint runs exactly the loader that ``gateway serve`` runs, so it cannot pass a configuration
that serve rejects. The one difference is the environment: a secret that is not set where lint
runs (CI rarely has production secrets) is a warning here and an error in serve.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ... import diagnostics as rules
from ...compile.gateway_file import load, load_mapping
from ...diagnostics import Diagnostic
from ...http.startup import check_store
from ...plan import IdempotencyPlan


class UsageError(Exception):
    """A path on the command line that does not exist: exit status 2."""


def lint(paths: list[Path], *, config: Path | None = None, online: bool = False) -> list[Diagnostic]:
    """Diagnostics for ``paths`` (files or folders of YAML), or, with none, for ``config``
    (default ``gateway.yaml``) and every mapping in the ``mappings/`` folder beside it.

    ``online`` also opens each gateway.yaml's idempotency store once, as ``gateway serve`` will
    at startup: one that does not answer from here is a warning at ``idempotency.store`` (CI
    may well not reach production's store, so it cannot be an error)."""
    files = _targets(paths, config)
    done: set[Path] = set()
    diagnostics: list[Diagnostic] = []
    configs = [f for f in files if _is_gateway_config(f)]
    for file in configs:
        plan, found = load(file, require_secrets=False, eager=False, mappings_read=done)
        diagnostics.extend(found)
        if online and plan is not None and plan.idempotency is not None:
            diagnostics.extend(_store_reachable(plan.idempotency))
        done.add(file.resolve())
    standalone = []
    for file in files:
        if file.resolve() not in done:
            done.add(file.resolve())
            standalone.append(file)
    for found in _map(_lint_mapping, standalone):
        diagnostics.extend(found)
    unique = list(dict.fromkeys(diagnostics))
    return sorted(unique, key=lambda d: (d.file, d.line, d.col, d.code))


def _store_reachable(settings: IdempotencyPlan) -> list[Diagnostic]:
    problem = check_store(dataclasses.replace(settings, where=""))
    if problem is None:
        return []
    file, line, col = settings.where.rsplit(":", 2)
    return [Diagnostic(file, int(line), int(col), rules.IDEMPOTENCY_STORE, problem, "idempotency.store",
                       severity="warning")]


def _lint_mapping(file: Path) -> list[Diagnostic]:
    return load_mapping(file, eager=False)[1]


_PARALLEL_FROM = 48  # files; below this, starting workers costs more than it saves


def _map(fn, files: list[Path]) -> list[list[Diagnostic]]:
    """Lint files independently: in worker processes when there are many and several cores."""
    workers = min(os.cpu_count() or 1, 8)
    if len(files) < _PARALLEL_FROM or workers < 2 or "fork" not in mp.get_all_start_methods():
        return [fn(f) for f in files]
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork")) as pool:
        return list(pool.map(fn, files, chunksize=max(1, len(files) // (workers * 4))))


def _targets(paths: list[Path], config: Path | None) -> list[Path]:
    if not paths:
        config = config or Path("gateway.yaml")
        if not config.exists():
            raise UsageError(f"{config} does not exist; pass --config or the files to lint")
        folder = config.parent / "mappings"
        return [config] + ([p for p in sorted(folder.glob("*.y*ml")) if not _is_test_file(p)] if folder.is_dir() else [])
    out: list[Path] = [config] if config else []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
                              and not _is_test_file(p)))
        elif path.exists():
            out.append(path)
        else:
            raise UsageError(f"{path} does not exist")
    return out


def _is_test_file(path: Path) -> bool:
    """Mapping test cases (`gateway test`) live beside mappings; they are not mappings."""
    return path.name.endswith((".test.yaml", ".test.yml"))


_PROVIDERS_KEY = re.compile(r"^providers\s*:", re.M)


def _is_gateway_config(path: Path) -> bool:
    """A gateway config has a top-level `providers:` key; anything else is linted as a mapping."""
    try:
        return bool(_PROVIDERS_KEY.search(path.read_text(encoding="utf-8", errors="replace")))
    except OSError:
        return False
