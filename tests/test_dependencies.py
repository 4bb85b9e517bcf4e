"""What the gateway relies on in its libraries beyond their APIs, pinned so an upgrade that
changes it fails here (and pyproject's upper bounds are raised only after this passes).

- msgspec: the wording of validation errors, which the config reader turns into diagnostics
  (unknown field -> GW003 with "did you mean", missing field -> GW005) and the webhook's
  400 messages quote (the ` - at `$.path`` suffix);
- Jinja: the wording of an unknown filter or test, which lint reports as GW011;
- JMESPath: the lexer position of a syntax error, which lint turns into a column.
"""

from __future__ import annotations

import jinja2
import jmespath
import msgspec
import pytest

from gateway.config.reader import _MISSING, _UNKNOWN

pytestmark = pytest.mark.unit


class Inner(msgspec.Struct, forbid_unknown_fields=True):
    count: int


class Outer(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    inner: Inner


def _error(data: object) -> str:
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.convert(data, Outer)
    return str(info.value)


def test_msgspec_unknown_field_message():
    message = _error({"name": "x", "inner": {"count": 1, "cuont": 2}})
    assert message == "Object contains unknown field `cuont` - at `$.inner`"
    assert _UNKNOWN.match(message).group("name") == "cuont"


def test_msgspec_missing_field_message():
    message = _error({"inner": {"count": 1}})
    assert message == "Object missing required field `name`"
    assert _MISSING.match(message).group("name") == "name"


def test_msgspec_wrong_type_message_and_path_suffix():
    assert _error({"name": "x", "inner": {"count": "1"}}) == "Expected `int`, got `str` - at `$.inner.count`"


def test_jinja_unknown_filter_message():
    with pytest.raises(jinja2.TemplateSyntaxError) as info:
        jinja2.Environment().from_string("{{ x | no_such_filter }}")
    assert info.value.message.startswith("No filter named 'no_such_filter'")


def test_jmespath_syntax_error_position():
    with pytest.raises(jmespath.exceptions.ParseError) as info:
        jmespath.compile("a.[")
    assert isinstance(info.value.lex_position, int) and info.value.lex_position == 3


def test_uvicorn_supervisor_dispatches_sighup_to_handle_hup():
    """gateway/http/reload.py replaces ``Multiprocess.handle_hup`` (restart every worker) with
    passing SIGHUP on to the workers; that works only while the supervisor dispatches so."""
    import inspect
    import signal

    from uvicorn.supervisors.multiprocess import SIGNALS, Multiprocess

    assert SIGNALS[signal.SIGHUP] == "HUP" and callable(Multiprocess.handle_hup)
    assert 'getattr(self, f"handle_{sig_name.lower()}"' in inspect.getsource(Multiprocess.handle_signals)
