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
    severity: Severity = "error"


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
        Rule("GW012", "template.undefined-name", "A template reads a top-level name that its context does not have."),
        Rule("GW013", "template.unknown-request-field", "A template reads a field that the operation's NewStore request does not carry."),
        Rule("GW014", "template.unknown-step-value", "A template reads a step that does not run before it, or a name that step does not extract."),
        Rule("GW015", "template.undeclared-var", "A template reads a variable that the mapping's `vars` does not declare."),
        Rule("GW020", "jmespath.syntax", "A JMESPath expression does not parse."),
        Rule("GW021", "jmespath.unknown-function", "A JMESPath expression calls a function that does not exist."),
        Rule("GW030", "mapping.unknown-operation", "An operation that NewStore does not have."),
        Rule("GW031", "mapping.step", "A step is malformed: its name, its target URL or its body kind."),
        Rule("GW032", "mapping.response", "An operation's response cannot produce a field NewStore requires, or names one NewStore does not have."),
        Rule("GW033", "mapping.operation", "An operation has neither steps (or a response) nor `unsupported`, or both."),
        Rule("GW034", "mapping.rule-never-matches", "An error rule that can never match: an earlier rule always wins, or its `match` is constant false.", "warning"),
        Rule("GW035", "mapping.rule-matches-everything", "An error rule with neither `status` nor `match`: it would turn every answer, successes included, into an error."),
        Rule("GW037", "mapping.operation-missing", "An operation of a NewStore contract the mapping serves (gift card, payment) is neither mapped nor declared `unsupported`.", "warning"),
        Rule("GW038", "mapping.step-never-runs", "A step whose `if` is always false, so it never runs.", "warning"),
        Rule("GW039", "mapping.error-code", "An error rule of a payment operation answers an `error_code` that NewStore's Payment Provider Webhooks do not have."),
        Rule("GW036", "mapping.unused-extract", "A step extracts a value that no later template reads.", "warning"),
        Rule("GW040", "secret.unset", "A secret is referenced but its environment variable or file is not set (a warning in lint, an error in serve)."),
        Rule("GW041", "provider.vars", "A provider's variables do not match what its mapping declares."),
        Rule("GW042", "provider.secrets", "A provider's secrets do not match what its mapping declares, or `auth` names an undeclared secret."),
        Rule("GW043", "provider.name", "A provider route name that cannot appear in a URL path."),
        Rule("GW044", "provider.duplicate", "Two providers claim the same route name."),
        Rule("GW045", "provider.base-url", "A provider's base URL is not an absolute http(s) URL."),
        Rule("GW046", "provider.insecure-base-url", "A provider's base URL is plain http to a host other than this machine.", "warning"),
        Rule("GW047", "idempotency.default-key", "No encryption key for stored responses is configured, so one is generated into a local file.", "warning"),
        Rule("GW048", "idempotency.store", "The idempotency store URL is not understood, a shared store has no encryption keys, or the lease is shorter than a deadline."),
        Rule("GW049", "idempotency.key", "An encryption key that is not base64 of 16, 24 or 32 bytes, or an id used twice."),
        Rule("GW050", "secret.literal", "A header or body value that looks like a credential written literally in the mapping.", "warning"),
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
