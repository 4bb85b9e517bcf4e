"""``GATEWAY_<FLAG>`` environment variables as defaults for command-line flags.

``--drain-timeout`` reads ``GATEWAY_DRAIN_TIMEOUT``, ``--no-companions`` reads
``GATEWAY_NO_COMPANIONS`` (``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/``off``), and
so on for every flag of the commands this is applied to: a flag on the command line wins over
the variable, the variable over the built-in default. A value the flag would refuse is refused
the same way, naming the variable. (argparse has no such feature; configargparse would add one
at the cost of a dependency and its own config-file syntax, for twenty lines here.)
"""

from __future__ import annotations

import argparse
import os
from typing import Mapping

PREFIX = "GATEWAY_"
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def variable(option: str) -> str:
    """``--drain-timeout`` -> ``GATEWAY_DRAIN_TIMEOUT``."""
    return PREFIX + option.lstrip("-").replace("-", "_").upper()


def flags(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
    """The (variable, action) pairs of a parser's ``--long`` options (not --help)."""
    out = []
    for action in parser._actions:  # argparse offers no public way to list them
        longs = [o for o in action.option_strings if o.startswith("--")]
        if longs and not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            out.append((variable(longs[0]), action))
    return out


def apply(parser: argparse.ArgumentParser, environ: Mapping[str, str] | None = None) -> None:
    """Take the defaults of ``parser``'s flags from the environment; mention each in --help."""
    environ = os.environ if environ is None else environ
    for name, action in flags(parser):
        action.help = f"{action.help or ''} [env: {name}]".strip()
        if name not in environ:
            continue
        text = environ[name]
        try:
            action.default = _convert(action, text)
        except (argparse.ArgumentTypeError, ValueError) as exc:
            parser.error(f"environment variable {name}={text!r}: {exc}")


def _convert(action: argparse.Action, text: str) -> object:
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        word = text.strip().lower()
        if word not in _TRUE | _FALSE:
            raise ValueError("expected one of 1, true, yes, on, 0, false, no, off")
        on = word in _TRUE
        return on if isinstance(action, argparse._StoreTrueAction) else not on
    value: object = action.type(text) if callable(action.type) else text
    if action.choices is not None:
        if isinstance(value, str) and value not in action.choices and value.lower() in action.choices:
            value = value.lower()
        if value not in action.choices:
            raise ValueError(f"expected one of {', '.join(map(str, action.choices))}")
    return value
