"""Rules of the house that a review would otherwise have to check by eye."""

import ast
import re
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
