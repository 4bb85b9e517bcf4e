"""Rules of the house that a review would otherwise have to check by eye."""

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"
CODE = re.compile(r"GW\d{3}")


def _modules():
    return sorted(p for p in GATEWAY.rglob("*.py"))


def test_diagnostic_codes_are_written_only_in_the_rule_registry():
    """Every rule is a constant of gateway/diagnostics.py; code elsewhere names the constant."""
    offenders = []
    for path in _modules():
        if path == GATEWAY / "diagnostics.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE.search(node.value):
                offenders.append(f"{path.relative_to(GATEWAY.parent)}:{node.lineno}")
    assert offenders == []


def _imports(path: Path) -> set[str]:
    """The gateway packages a module imports, as top-level parts (``runtime``, ``compile``, ...)."""
    package = list(path.relative_to(GATEWAY).parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            target = [*base, *(node.module.split(".") if node.module else [])]
            out.add((target or [a.name for a in node.names])[0])
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gateway."):
            out.add(node.module.split(".")[1])
    return out


def test_the_runtime_never_reaches_back_into_compile_tools_or_http():
    """The webhook path reads top-down: runtime/ is served by http/ and never imports it, nor the
    compiler or the integrator's tools."""
    for path in (GATEWAY / "runtime").rglob("*.py"):
        assert not _imports(path) & {"compile", "tools", "http", "cli"}, path


def test_the_compiler_and_the_language_never_import_the_http_side():
    for folder in ("compile", "language", "config", "contracts", "auth"):
        for path in (GATEWAY / folder).rglob("*.py"):
            assert not _imports(path) & {"http", "tools", "cli"}, path


def test_no_module_of_the_runtime_imports_a_web_framework():
    for path in (GATEWAY / "runtime").rglob("*.py"):
        assert not re.search(r"^\s*(from|import) (litestar|starlette|fastapi)\b", path.read_text(), re.M), path


def _optional(tree: ast.AST) -> set[int]:
    """The import statements inside a ``try`` that handles their ``ImportError``: optional ones."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError") for h in node.handlers):
            guarded |= {id(inner) for statement in node.body for inner in ast.walk(statement)}
    return guarded


def _libraries(path: Path) -> dict[str, int]:
    """The top-level modules outside the standard library and the project that a module imports,
    with the line of their first import (conditional and function-level imports included, not
    those that handle the module's absence)."""
    found: dict[str, int] = {}
    tree = ast.parse(path.read_text())
    optional = _optional(tree)
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top not in ("gateway", "simulators"):
                found.setdefault(top, node.lineno)
    return found


def test_every_library_the_package_imports_is_a_declared_dependency():
    """A module imported by the gateway or its simulators comes from a distribution pyproject.toml
    installs (`dependencies`, or the `otel` extra the tracing module imports only when asked):
    installed with `pip install .`, an undeclared import fails only in production; an optional one
    (brotli) handles its absence. (aiohttp is no longer a dependency: wire.py carries every
    provider request.)"""
    project = tomllib.loads((GATEWAY.parent / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0].lower().replace("_", "-")
                for spec in [*project["dependencies"], *project["optional-dependencies"]["otel"]]}
    distributions = importlib.metadata.packages_distributions()
    offenders = []
    for path in [*_modules(), *sorted((GATEWAY.parent / "simulators").rglob("*.py"))]:
        for module, line in _libraries(path).items():
            owners = {name.lower().replace("_", "-") for name in distributions.get(module, [])}
            if not owners & declared:
                offenders.append(f"{path.relative_to(GATEWAY.parent)}:{line}: {module} (from {sorted(owners) or 'nothing installed'})")
    assert offenders == []
