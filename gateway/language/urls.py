"""A step's `path` or `url` template -> the URL it calls, such that no value can change the endpoint.

A path template such as ``/v1/cards/{{ request.card_number | urlsegment }}/activate`` is written
by the mapping; the values it interpolates are not. Left alone, a card number ``..`` would make
``/v1/cards/../activate``, which the HTTP client collapses to ``/v1/activate``: another endpoint,
called with the provider's credentials. So every interpolated value is kept apart from the text
around it while the template renders (Jinja's ``finalize`` hook replaces it with a placeholder)
and is checked for the place it lands in:

- in the path, a value may fill (part of) one segment: it may not add a ``/``, ``?``, ``#``,
  ``\\`` or control character, and the segment it lands in may not become empty, ``.`` or ``..``
  (percent-encoded dots count: servers decode them);
- in a query string the mapping wrote inline, a value may not add ``&`` or ``#``;
- the whole URL stays under 8 KiB, which servers accept;
- in the scheme and host of a ``url``, no value from NewStore may appear at all. A ``url`` that
  *starts* with a value from a provider's answer or the configuration (a link to follow) is
  allowed: credentials still go only to the provider's own origin.

Who wrote the value decides the answer when it breaks a rule: a value that reads NewStore's
request is unusable input (400, nothing sent); one from a provider's answer is a bad answer
(502); values from ``vars`` are the operator's configuration and are trusted. A ``null`` in a
URL is never turned into the text ``None``: it is a mapping error naming the step.
"""

from __future__ import annotations

import contextvars
import re
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import unquote

from jinja2 import nodes

from .templating import ENV, NullRendered, Text, Value, make_env, parse

MAX_URL_LENGTH = 8192  # what common servers accept in a request line; httpx refuses far longer ones
_OPEN, _CLOSE = "\ue000", "\ue001"  # private-use characters: cannot come from a mapping's YAML text
_captured: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("gateway_url_values", default=None)

# Where a value comes from decides who is at fault when it is refused. Only the mapping's own
# configuration is trusted; every other name (``request``, and each name a contract derives from
# NewStore's request: ``idempotence_key``, ``instrument_id``, ``idempotency_key``, ...) counts as
# NewStore's input, so a name a new contract adds is checked without anyone listing it here.
_TRUSTED = frozenset({"vars", "now", "webhook_id"})
_FROM_ANSWER = frozenset({"steps"})


def _finalize(value: Any) -> Any:
    if value is None:
        raise NullRendered("null")
    values = _captured.get()
    if values is None:  # constant folding at compile time: the mapping's own text
        return value
    values.append(value)
    return f"{_OPEN}{len(values) - 1}{_CLOSE}"


URL_ENV = make_env(autoescape=False, finalize=_finalize)

_ABSOLUTE_HTTP = re.compile(r"https?://[^/\s]+")


def is_absolute_http(url: str) -> bool:
    """``http://host…`` or ``https://host…``: what a base URL, a token URL and a rendered step
    URL must be (a scheme this gateway speaks and a host)."""
    return _ABSOLUTE_HTTP.match(url) is not None


class UrlRefused(Exception):
    """A rendered URL breaks a rule above. ``source`` is ``request`` or ``answer``."""

    def __init__(self, message: str, source: str) -> None:
        super().__init__(message)
        self.message = message
        self.source = source


class NullInUrl(Exception):
    """A value rendered into the URL is null (e.g. an earlier step extracted nothing)."""


@dataclass(frozen=True)
class UrlTemplate:
    """A compiled ``path`` (joined to the base URL) or ``url`` (absolute) template."""

    value: Value
    is_path: bool
    sources: tuple[str, ...] | None  # per interpolation, in order: request | answer | config

    @property
    def route(self) -> str:
        """The ``path``/``url`` as the mapping writes it, templates unrendered."""
        source = getattr(self.value, "source", None)
        return source if isinstance(source, str) else str(self.value.render({}))

    def render(self, ctx: Mapping[str, Any], base_url: str) -> str:
        base = base_url if self.is_path else ""
        if not self.value.has_templates:  # the mapping's own text
            return base + str(self.value.render(ctx))
        values: list[Any] = []
        if isinstance(self.value, Text):
            token = _captured.set(values)
            try:
                rendered = self.value.render(ctx)
            finally:
                _captured.reset(token)
        else:  # a single `{{ expression }}`: the whole target is one value
            values.append(self.value.render(ctx))
            rendered = f"{_OPEN}0{_CLOSE}"
        sources = self.sources if self.sources is not None and len(self.sources) == len(values) else None
        return _assemble(base, rendered, values, sources, self.is_path)


def compile_sources(source: str) -> tuple[str, ...] | None:
    """Who wrote each interpolation of ``source``, in the order they render; ``None`` when the
    order is not static (loops, conditionals): every value is then treated as NewStore's."""
    parsed = parse(source, URL_ENV)
    if parsed.expression is not None:
        return (_source_of(parsed.tree),)
    out: list[str] = []
    for node in parsed.tree.body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                continue
            try:
                child.as_const(nodes.EvalContext(ENV))
                continue  # folded into the text at compile time
            except Exception:  # noqa: BLE001 - Impossible or any failure: evaluated at run time
                pass
            out.append(_source_of(child))
    return tuple(out)


def _source_of(node: nodes.Node) -> str:
    names = {n.name for n in node.find_all(nodes.Name) if n.ctx == "load"}
    if isinstance(node, nodes.Name) and node.ctx == "load":
        names.add(node.name)
    if names - _TRUSTED - _FROM_ANSWER:
        return "request"
    if names & _FROM_ANSWER:
        return "answer"
    return "config"


def _assemble(base: str, rendered: str, values: list[Any], sources: tuple[str, ...] | None, is_path: bool) -> str:
    # Pieces of the final URL: (text, source) with source None for the mapping's own text.
    pieces: list[tuple[str, str | None]] = [(base, None)] if base else []
    rest = rendered
    while True:
        start = rest.find(_OPEN)
        if start < 0:
            pieces.append((rest, None))
            break
        end = rest.index(_CLOSE, start)
        pieces.append((rest[:start], None))
        index = int(rest[start + 1:end])
        text = _text(values[index])
        pieces.append((text, sources[index] if sources is not None else "request"))
        rest = rest[end + 1:]
    pieces = [(t, s) for t, s in pieces if t or s not in (None, "config")]

    if not is_path and pieces and pieces[0][1] in ("answer", "config"):
        # A URL that starts with a value (a link from an answer, a configured URL): its own text.
        pieces[0] = (pieces[0][0], None)
    url = "".join(t for t, _ in pieces)
    path_start = _path_start(url)
    # Offsets of each untrusted piece in the final URL.
    offset = 0
    spans: list[tuple[int, int, str]] = []
    for text, source in pieces:
        if source in ("request", "answer"):
            spans.append((offset, offset + len(text), source))
        offset += len(text)
    if len(url) > MAX_URL_LENGTH and spans:
        longest = max(spans, key=lambda s: s[1] - s[0])
        raise UrlRefused(f"a value would make the provider's URL longer than {MAX_URL_LENGTH} characters", longest[2])
    query_start = _first_of(url, "?#", path_start, spans)
    for start, end, source in spans:
        text = url[start:end]
        if start < path_start:
            raise UrlRefused("a value would change the provider's host", source)
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
            raise UrlRefused("a value would put control characters into the provider's URL", source)
        if start >= query_start:
            if "#" in text or "&" in text:
                raise UrlRefused("a value would add query parameters to the provider's URL", source)
            continue
        for bad, what in (("/", "a path segment"), ("\\", "a path segment"), ("?", "a query string"), ("#", "a fragment")):
            if bad in text:
                raise UrlRefused(f"a value would add {what} to the provider's URL", source)
    _check_segments(url, path_start, query_start, spans)
    return url


def _check_segments(url: str, path_start: int, query_start: int, spans: list[tuple[int, int, str]]) -> None:
    position = path_start
    for segment in url[path_start:query_start].split("/"):
        seg_start, seg_end = position, position + len(segment)
        position = seg_end + 1
        touching = [s for s in spans
                    if (s[0] < seg_end and s[1] > seg_start) or (s[0] == s[1] and seg_start <= s[0] <= seg_end)]
        if not touching:
            continue
        source = "request" if any(s[2] == "request" for s in touching) else "answer"
        if segment == "":
            raise UrlRefused("a value is empty where the provider's URL needs a path segment", source)
        if unquote(segment) in (".", ".."):
            raise UrlRefused("a value would make a `.` or `..` path segment in the provider's URL", source)


def _path_start(url: str) -> int:
    scheme = url.find("://")
    if scheme < 0:
        return 0
    slash = url.find("/", scheme + 3)
    others = [i for i in (url.find("?", scheme + 3), url.find("#", scheme + 3), slash) if i >= 0]
    return min(others) if others else len(url)


def _first_of(url: str, chars: str, start: int, spans: list[tuple[int, int, str]]) -> int:
    """The first of ``chars`` at or after ``start`` that the mapping wrote (not inside a value)."""
    for i in range(start, len(url)):
        if url[i] in chars and not any(s <= i < e for s, e, _ in spans):
            return i
    return len(url)


def _text(value: Any) -> str:
    if value is None:
        raise NullInUrl("null")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
