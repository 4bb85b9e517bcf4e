"""Lint output: ``text`` for people, ``json`` for machines, ``github`` for workflow annotations."""

from __future__ import annotations

import json

from ...diagnostics import Diagnostic

FORMATS = ("text", "json", "github")


def render(diagnostics: list[Diagnostic], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([_record(d) for d in diagnostics], indent=2) + "\n"
    if fmt == "github":
        return "".join(_github(d) + "\n" for d in diagnostics) + _summary(diagnostics) + "\n"
    lines = [f"{d}{'' if d.severity == 'error' else ' [warning]'}" for d in diagnostics]
    return "".join(line + "\n" for line in lines) + _summary(diagnostics) + "\n"


def _record(d: Diagnostic) -> dict[str, object]:
    """The stable JSON shape: these keys, in this order, for every diagnostic."""
    return {
        "file": d.file,
        "line": d.line,
        "col": d.col,
        "code": d.code,
        "name": d.name,
        "severity": d.severity,
        "message": d.message,
        "keypath": d.keypath,
    }


def _github(d: Diagnostic) -> str:
    def escape(text: str, prop: bool = False) -> str:
        text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return text.replace(":", "%3A").replace(",", "%2C") if prop else text

    kind = "error" if d.severity == "error" else "warning"
    title = escape(f"{d.code} {d.name}", prop=True)
    return f"::{kind} file={escape(d.file, True)},line={d.line},col={d.col},title={title}::{escape(d.message)}"


def _summary(diagnostics: list[Diagnostic]) -> str:
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    if not diagnostics:
        return "no problems found"
    return f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
