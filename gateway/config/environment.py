"""``${VAR}`` and ``${VAR:-default}`` in gateway.yaml, from the environment.

One gateway.yaml can then serve dev, stage and prod: ``base_url: "${ACME_BASE_URL}"``,
``store: "${GATEWAY_STORE:-sqlite:///.gateway/idempotency.sqlite3}"``, ``deadline: ${DEADLINE:-15}``.

Expansion runs on the parsed YAML scalars (values, not keys), after :mod:`.yamlpos` has recorded
where each one is written, so every diagnostic still points into the file; an unset variable
without a default is itself one, at its ``${``. A plain (unquoted) scalar is typed after
expansion as if its value had been written there (``${DEADLINE:-15}`` is the number 15); a
quoted one stays a string. ``$$`` is a literal ``$``; a ``$`` not followed by ``{`` or ``$`` is
left as is. ``${VAR:-default}`` uses the default when VAR is unset or empty, as the shell does.

Secrets do not go this way: they stay ``{env: NAME}`` / ``{file: path}`` references, which only
the upstream auth code ever reads. (A library for this -- python-dotenv, envyaml -- expands text
before YAML parses it, which loses the positions; the grammar here is one regular expression.)
"""

from __future__ import annotations

import os
import re
from typing import Any, Mapping

import yaml

from .. import diagnostics as rules
from .reader import FileContext
from .yamlpos import KeyPath

_REFERENCE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})")
_constructor = yaml.SafeLoader.__new__(yaml.SafeLoader)
yaml.constructor.SafeConstructor.__init__(_constructor)


def expand(ctx: FileContext, environ: Mapping[str, str] | None = None) -> None:
    """Expand every reference in ``ctx``'s data in place, reporting the unset and malformed ones."""
    environ = os.environ if environ is None else environ
    ctx.located.data = _walk(ctx, ctx.located.data, (), environ)


def _walk(ctx: FileContext, value: Any, path: KeyPath, environ: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _walk(ctx, v, path + (k,), environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(ctx, v, path + (i,), environ) for i, v in enumerate(value)]
    if isinstance(value, str) and "$" in value:
        return _scalar(ctx, value, path, environ)
    return value


def _scalar(ctx: FileContext, text: str, path: KeyPath, environ: Mapping[str, str]) -> Any:
    out: list[str] = []
    position = 0
    for m in _REFERENCE.finditer(text):
        out.append(text[position:m.start()])
        position = m.end()
        if m.group(1):
            out.append("$")
            continue
        name, default = m.group(2), m.group(3)
        current = environ.get(name)
        if current is None or (current == "" and default is not None):
            if default is None:
                ctx.report(path, rules.CONFIG_ENV_UNSET,
                           f"environment variable `{name}` is not set and `${{{name}}}` has no default; "
                           f"set it, or write `${{{name}:-default}}`", col_offset=m.start(), text=text)
                current = ""
            else:
                current = default
        out.append(current)
    out.append(text[position:])
    broken = text.find("${", 0)
    while broken != -1:
        if not _REFERENCE.match(text, broken) and not (broken > 0 and _escaped(text, broken)):
            ctx.report(path, rules.CONFIG_ENV_UNSET,
                       "`${` starts no reference: write `${NAME}` or `${NAME:-default}` (NAME: letters, digits, "
                       "`_`), or `$${` for a literal `${`", col_offset=broken, text=text)
            break
        broken = text.find("${", broken + 2)
    expanded = "".join(out)
    if ctx.located.styles.get(path, "'") in ("", None):  # plain scalar (libyaml: "", PyYAML: None): typed as if written so
        tag = _constructor.resolve(yaml.ScalarNode, expanded, (True, False))
        return _constructor.construct_object(yaml.ScalarNode(tag, expanded), deep=True)
    return expanded


def _escaped(text: str, index: int) -> bool:
    """Whether the ``$`` at ``index`` is the second of a ``$$`` pair (odd run of `$` before it)."""
    run = 0
    while index - run - 1 >= 0 and text[index - run - 1] == "$":
        run += 1
    return run % 2 == 1
