"""Diagnostics: what the loader says about a configuration, and where.

Every problem found while loading ``gateway.yaml`` or a mapping is a :class:`Diagnostic` with
the file the user edits, a 1-based line and column, a stable code from :data:`RULES` and a
message a newcomer understands. ``gateway serve`` refuses to start on any error; ``gateway lint``
prints the same list. A code is never reused for another meaning.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    summary: str
    severity: Severity = "error"


# Every rule, by the name its call sites use; codes are stable and never reused.
YAML_SYNTAX = Rule("GW001", "yaml.syntax", "The file is not valid YAML.")
YAML_DUPLICATE_KEY = Rule("GW002", "yaml.duplicate-key", "A key appears twice in the same mapping; YAML would silently keep the last one.")
CONFIG_UNKNOWN_FIELD = Rule("GW003", "config.unknown-field", "A field that this place does not accept (often a typo).")
CONFIG_WRONG_TYPE = Rule("GW004", "config.wrong-type", "A value of the wrong type or outside its allowed values.")
CONFIG_MISSING_FIELD = Rule("GW005", "config.missing-field", "A required field is missing.")
CONFIG_MISSING_FILE = Rule("GW006", "config.missing-file", "A file named by the configuration does not exist or cannot be read.")
TEMPLATE_SYNTAX = Rule("GW010", "template.syntax", "A Jinja template does not parse.")
TEMPLATE_UNKNOWN_FILTER = Rule("GW011", "template.unknown-filter", "A template uses a filter that does not exist.")
TEMPLATE_UNDEFINED_NAME = Rule("GW012", "template.undefined-name", "A template reads a top-level name that its context does not have.")
TEMPLATE_UNKNOWN_REQUEST_FIELD = Rule("GW013", "template.unknown-request-field", "A template reads a field that the operation's NewStore request does not carry.")
TEMPLATE_UNKNOWN_STEP_VALUE = Rule("GW014", "template.unknown-step-value", "A template reads a step that does not run before it, or a name that step does not extract.")
TEMPLATE_UNDECLARED_VAR = Rule("GW015", "template.undeclared-var", "A template reads a variable that the mapping's `vars` does not declare.")
JMESPATH_SYNTAX = Rule("GW020", "jmespath.syntax", "A JMESPath expression does not parse.")
JMESPATH_UNKNOWN_FUNCTION = Rule("GW021", "jmespath.unknown-function", "A JMESPath expression calls a function that does not exist.")
MAPPING_UNKNOWN_OPERATION = Rule("GW030", "mapping.unknown-operation", "An operation that NewStore does not have.")
MAPPING_STEP = Rule("GW031", "mapping.step", "A step is malformed: its name, its target URL or its body kind.")
MAPPING_RESPONSE = Rule("GW032", "mapping.response", "An operation's response cannot produce a field NewStore requires, or names one NewStore does not have.")
MAPPING_OPERATION = Rule("GW033", "mapping.operation", "An operation has neither steps (or a response) nor `unsupported`, or both.")
MAPPING_RULE_NEVER_MATCHES = Rule("GW034", "mapping.rule-never-matches", "An error rule that can never match: an earlier rule always wins, or its `match` is constant false.", "warning")
MAPPING_RULE_MATCHES_EVERYTHING = Rule("GW035", "mapping.rule-matches-everything", "An error rule with neither `status` nor `match`: it would turn every answer, successes included, into an error.")
MAPPING_OPERATION_MISSING = Rule("GW037", "mapping.operation-missing", "An operation of a NewStore contract the mapping serves (gift card, payment) is neither mapped nor declared `unsupported`.", "warning")
MAPPING_STEP_NEVER_RUNS = Rule("GW038", "mapping.step-never-runs", "A step whose `if` is always false, so it never runs.", "warning")
MAPPING_ERROR_CODE = Rule("GW039", "mapping.error-code", "An error rule of a payment operation answers an `error_code` that NewStore's Payment Provider Webhooks do not have.")
MAPPING_UNUSED_EXTRACT = Rule("GW036", "mapping.unused-extract", "A step extracts a value that no later template reads.", "warning")
SECRET_UNSET = Rule("GW040", "secret.unset", "A secret is referenced but its environment variable or file is not set (a warning in lint, an error in serve).")
PROVIDER_VARS = Rule("GW041", "provider.vars", "A provider's variables do not match what its mapping declares.")
PROVIDER_SECRETS = Rule("GW042", "provider.secrets", "A provider's secrets do not match what its mapping declares, or `auth` names an undeclared secret.")
PROVIDER_NAME = Rule("GW043", "provider.name", "A provider route name that cannot appear in a URL path, or that the gateway's own endpoints use (health, livez, readyz, metrics, schema).")
PROVIDER_DUPLICATE = Rule("GW044", "provider.duplicate", "Two providers claim the same route name.")
PROVIDER_BASE_URL = Rule("GW045", "provider.base-url", "A provider's base URL is not an absolute http(s) URL.")
PROVIDER_INSECURE_BASE_URL = Rule("GW046", "provider.insecure-base-url", "A provider's base URL is plain http to a host other than this machine.", "warning")
IDEMPOTENCY_DEFAULT_KEY = Rule("GW047", "idempotency.default-key", "No encryption key for stored responses is configured, so one is generated into a local file.", "warning")
IDEMPOTENCY_STORE = Rule("GW048", "idempotency.store", "The idempotency store URL is not understood, a shared store has no encryption keys, or the lease is shorter than a deadline.")
IDEMPOTENCY_KEY = Rule("GW049", "idempotency.key", "An encryption key that is not base64 of 16, 24 or 32 bytes, or an id used twice.")
CONFIG_ENV_UNSET = Rule("GW052", "config.env-unset", "gateway.yaml reads an environment variable (`${NAME}`) that is not set and has no default (`${NAME:-default}`), or a `${` that is not a reference.")
SECRET_LITERAL = Rule("GW050", "secret.literal", "A header or body value that looks like a credential written literally in the mapping.", "warning")
MAPPING_RETRY = Rule("GW051", "mapping.retry", "A step marked `idempotent` that sends the provider no key to recognise a repeat by (a retry could act twice), or an `idempotent` that no `retry` uses.", "warning")

RULES: dict[str, Rule] = {r.code: r for r in (
    YAML_SYNTAX,
    YAML_DUPLICATE_KEY,
    CONFIG_UNKNOWN_FIELD,
    CONFIG_WRONG_TYPE,
    CONFIG_MISSING_FIELD,
    CONFIG_MISSING_FILE,
    TEMPLATE_SYNTAX,
    TEMPLATE_UNKNOWN_FILTER,
    TEMPLATE_UNDEFINED_NAME,
    TEMPLATE_UNKNOWN_REQUEST_FIELD,
    TEMPLATE_UNKNOWN_STEP_VALUE,
    TEMPLATE_UNDECLARED_VAR,
    JMESPATH_SYNTAX,
    JMESPATH_UNKNOWN_FUNCTION,
    MAPPING_UNKNOWN_OPERATION,
    MAPPING_STEP,
    MAPPING_RESPONSE,
    MAPPING_OPERATION,
    MAPPING_RULE_NEVER_MATCHES,
    MAPPING_RULE_MATCHES_EVERYTHING,
    MAPPING_OPERATION_MISSING,
    MAPPING_STEP_NEVER_RUNS,
    MAPPING_ERROR_CODE,
    MAPPING_UNUSED_EXTRACT,
    SECRET_UNSET,
    PROVIDER_VARS,
    PROVIDER_SECRETS,
    PROVIDER_NAME,
    PROVIDER_DUPLICATE,
    PROVIDER_BASE_URL,
    PROVIDER_INSECURE_BASE_URL,
    IDEMPOTENCY_DEFAULT_KEY,
    IDEMPOTENCY_STORE,
    IDEMPOTENCY_KEY,
    SECRET_LITERAL,
    MAPPING_RETRY,
    CONFIG_ENV_UNSET,
)}


@dataclass(frozen=True)
class Diagnostic:
    """One problem. Built from a :class:`Rule` (``code``); its severity is the rule's unless the
    caller says otherwise (a secret unset where lint runs is a warning, an error in serve)."""

    file: str
    line: int
    col: int
    code: str
    message: str
    keypath: str = ""
    severity: Severity = None  # type: ignore[assignment]  # None: the rule's

    def __post_init__(self) -> None:
        rule = self.code if isinstance(self.code, Rule) else RULES[self.code]
        object.__setattr__(self, "code", rule.code)
        if self.severity is None:
            object.__setattr__(self, "severity", rule.severity)

    @property
    def name(self) -> str:
        return RULES[self.code].name

    def __str__(self) -> str:
        where = f" (at {self.keypath})" if self.keypath else ""
        return f"{self.file}:{self.line}:{self.col}: {self.code} {self.message}{where}"


def errors(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.severity == "error"]


def suggest(word: object, candidates: Iterable[object], otherwise: str = "", *, prefix: str = "") -> str:
    """The tail of a message about an unknown name: ``"; did you mean `x`?"`` naming the candidate
    closest to ``word`` (shown after ``prefix``, as in ``vars.x``), else ``"; " + otherwise``, else "".

    Every "did you mean" the loader prints comes from here, so they all read the same.
    """
    close = closest(word, candidates)
    if close is not None:
        return f"; did you mean `{prefix}{close}`?"
    return f"; {otherwise}" if otherwise else ""


def closest(word: object, candidates: Iterable[object], *, cutoff: float = 0.6) -> str | None:
    """The candidate most like ``word`` (as text), if any is close enough: the one similarity
    measure behind every suggestion (``difflib``'s ratio; a higher ``cutoff`` for short values)."""
    close = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1, cutoff=cutoff)
    return close[0] if close else None
