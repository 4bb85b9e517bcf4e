"""Request bodies out, response bodies in.

Encoders turn a rendered body (plain Python data) into bytes; parsers turn a response into
data JMESPath can read, chosen by the step's ``parse`` setting or else by ``Content-Type``.
Adding a kind is adding an entry to a table.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable
from urllib.parse import urlencode
from xml.parsers.expat import ExpatError

import msgspec
import xmltodict

_json_encoder = msgspec.json.Encoder(decimal_format="number")
_json_decoder = msgspec.json.Decoder(float_hook=Decimal)


class BodyError(ValueError):
    """A rendered body that cannot be encoded as its kind requires."""


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise BodyError("a form field must be a scalar, not a mapping or list")
    return str(value)


def encode_json(value: Any) -> bytes:
    try:
        return _json_encoder.encode(value)
    except (TypeError, msgspec.EncodeError) as exc:
        raise BodyError(f"the JSON body cannot be encoded: {exc}") from None


def encode_form(value: Any) -> bytes:
    if not isinstance(value, dict):
        raise BodyError("a form body must render to a mapping of fields")
    pairs = []
    for key, item in value.items():
        if item is None:
            continue  # absent optional fields are left out, not sent empty
        if isinstance(item, list):
            pairs.extend((key, _form_value(v)) for v in item)
        else:
            pairs.append((key, _form_value(item)))
    return urlencode(pairs).encode()


def encode_text(value: Any) -> bytes:
    return str(value).encode("utf-8")


ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "json": encode_json,
    "graphql": encode_json,
    "form": encode_form,
    "text": encode_text,
    "xml": encode_text,
}


class ParseFailure(ValueError):
    pass


def parse_json(content: bytes) -> Any:
    if not content.strip():
        return None
    try:
        return _json_decoder.decode(content)
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise ParseFailure("the body is not valid JSON") from None
    except RecursionError:
        raise ParseFailure("the body's JSON is nested too deeply") from None


def parse_text(content: bytes) -> Any:
    return content.decode("utf-8", errors="replace")


def parse_xml(content: bytes) -> Any:
    """XML as nested objects JMESPath can read: child elements by name, attributes as
    ``"@name"`` and an element's text, when it also has attributes, as ``"#text"``
    (``BalanceAmount."@currencyCode"``). Entities are refused (no entity-expansion bombs)."""
    if not content.strip():
        return None
    try:
        return xmltodict.parse(content, disable_entities=True, process_namespaces=False)
    except (ExpatError, ValueError):
        raise ParseFailure("the body is not well-formed XML") from None


PARSERS: dict[str, Callable[[bytes], Any]] = {"json": parse_json, "text": parse_text, "xml": parse_xml}


def parser_for(setting: str, content_type: str | None) -> str:
    """The parser name for a response: the step's explicit setting, else by media type."""
    if setting != "auto":
        return setting
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return "json"
    if media in ("application/xml", "text/xml") or media.endswith("+xml"):
        return "xml"
    if media.startswith("text/"):
        return "text"
    return "json" if not media else "text"
