"""Diagnostics: what the loader says about a configuration, and where.

Every problem found while loading ``gateway.yaml`` or a mapping is a :class:`Diagnostic` with
the file the user edits, a 1-based line and column, a stable code from :data:`RULES` and a
message a newcomer understands. ``gateway serve`` refuses to start on any error; ``gateway lint``
prints the same list. A code is never reused for another meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    summary: str


RULES: dict[str, Rule] = {
    r.code: r
    for r in (
        Rule("GW001", "yaml.syntax", "The file is not valid YAML."),
        Rule("GW002", "yaml.duplicate-key", "A key appears twice in the same mapping; YAML would silently keep the last one."),
        Rule("GW003", "config.unknown-field", "A field that this place does not accept (often a typo)."),
        Rule("GW004", "config.wrong-type", "A value of the wrong type or outside its allowed values."),
        Rule("GW005", "config.missing-field", "A required field is missing."),
        Rule("GW006", "config.missing-file", "A file named by the configuration does not exist or cannot be read."),
        Rule("GW010", "template.syntax", "A Jinja template does not parse."),
        Rule("GW011", "template.unknown-filter", "A template uses a filter that does not exist."),
        Rule("GW012", "template.undefined-name", "A template reads a name that does not exist in its context."),
        Rule("GW020", "jmespath.syntax", "A JMESPath expression does not parse."),
        Rule("GW021", "jmespath.unknown-function", "A JMESPath expression calls a function that does not exist."),
        Rule("GW030", "mapping.unknown-operation", "An operation that NewStore does not have."),
        Rule("GW031", "mapping.step", "A step is malformed (name, target URL or body kind)."),
        Rule("GW032", "mapping.response", "An operation's response cannot produce a field NewStore requires."),
        Rule("GW033", "mapping.operation", "An operation has neither steps nor `unsupported`, or both."),
        Rule("GW034", "mapping.error-rule", "An error rule that can never match."),
        Rule("GW040", "secret.unset", "A secret is referenced but its environment variable or file is not set."),
        Rule("GW041", "provider.vars", "A provider's variables do not match what its mapping declares."),
        Rule("GW042", "provider.secrets", "A provider's secrets do not match what its mapping declares."),
        Rule("GW043", "provider.name", "A provider route name that cannot appear in a URL path."),
        Rule("GW044", "provider.inbound", "A provider's inbound authentication is missing or malformed."),
        Rule("GW045", "provider.base-url", "A provider's base URL is not an absolute http(s) URL."),
    )
}


@dataclass(frozen=True)
class Diagnostic:
    file: str
    line: int
    col: int
    code: str
    message: str
    keypath: str = ""
    severity: Severity = "error"

    @property
    def name(self) -> str:
        return RULES[self.code].name

    def __str__(self) -> str:
        where = f" (at {self.keypath})" if self.keypath else ""
        return f"{self.file}:{self.line}:{self.col}: {self.code} {self.message}{where}"


def errors(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.severity == "error"]
