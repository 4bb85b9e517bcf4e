"""Mapping test cases: the YAML files kept beside each mapping (``mappings/<name>.test.yaml``).

A case gives NewStore's request, the provider's canned answer to each step (or a fault), the
requests the mapping must send, and the response NewStore must get. See the README's
"Testing a mapping offline" for the format.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import msgspec

from ...config import reader
from ...config.reader import FileContext
from ...diagnostics import Diagnostic


class Base(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class Canned(Base, kw_only=True):
    """The provider's answer to one step: a response, or a fault a socket would give."""

    status: int = 200
    headers: dict[str, str] = {}
    body: Any = None
    fault: Literal["timeout", "unreachable", "reset"] | None = None


class ExpectedRequest(Base, kw_only=True):
    method: str | None = None
    url: str | None = None
    headers: dict[str, str] = {}  # a subset: these headers with these values
    json: Any = msgspec.UNSET
    form: dict[str, str] | None = None
    text: str | None = None
    match: Literal["exact", "subset"] = "exact"  # for `json`: the whole body, or only what is listed


class ExpectedResponse(Base, kw_only=True):
    status: int = 200
    body: Any = msgspec.UNSET
    match: Literal["exact", "subset"] = "exact"


class Case(Base, kw_only=True):
    name: str
    operation: str
    request: Any
    instrument_id: str | None = None  # payment operations: the financial_instrument_id in the URL
    headers: dict[str, str] = {}
    provider: dict[str, Canned] = {}
    requests: dict[str, ExpectedRequest] = {}
    expect: ExpectedResponse


class CaseFile(Base, kw_only=True):
    mapping: str | None = None  # default: this file's name without `.test`
    vars: dict[str, Any] = {}
    secrets: dict[str, str] = {}  # test values only: never real credentials
    cases: list[Case]


def load(path: Path, diagnostics: list[Diagnostic]) -> tuple[FileContext, CaseFile] | None:
    ctx = reader.read(path, diagnostics)
    if ctx is None:
        return None
    # YAML 1.1 reads an unquoted 2026-11-22T10:00:00Z as a datetime; in a case it means the text.
    ctx.located.data = _dates_as_text(ctx.located.data)
    cases = reader.convert(ctx, CaseFile, hint="a test file needs `cases:`")
    if cases is None:
        return None
    return ctx, cases


def _dates_as_text(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _dates_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates_as_text(v) for v in value]
    if isinstance(value, dt.datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def mapping_path(path: Path, case_file: CaseFile) -> Path:
    if case_file.mapping:
        return (path.parent / case_file.mapping).resolve()
    return path.with_name(path.name.replace(".test.yaml", ".yaml").replace(".test.yml", ".yml"))
