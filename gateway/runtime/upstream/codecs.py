"""Request bodies out, response bodies in.

Encoders turn a rendered body (plain Python data) into bytes; parsers turn a response into
data JMESPath can read, chosen by the step's ``parse`` setting or else by ``Content-Type``.
Adding a kind is adding an entry to a table.
"""

from __future__ import annotations

import zlib
from typing import Any, Callable, Iterator
from urllib.parse import urlencode
from xml.parsers.expat import ExpatError

import msgspec
import xmltodict

from ...language import jsonexact


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
        return jsonexact.encode(value)
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
        return jsonexact.decode(content)
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


# --- Content-Encoding ----------------------------------------------------------------------
# Answers are decoded here rather than by httpx, whose decoders inflate each network chunk
# whole before anything can count it: one 64 KiB gzip chunk can become 64 MiB. Here every
# layer yields at most _PIECE bytes at a time and the caller stops as soon as a count passes
# its limit, so a decompression bomb costs a few pieces of memory, not its inflated size.

_PIECE = 64 * 1024


class BodyTooLarge(ValueError):
    """The answer, or one of its encoded layers, passed its limit."""


class Undecodable(ValueError):
    """An answer in a Content-Encoding that is unknown, cannot be decoded with a bound, or is
    corrupt. The message names the coding, never a byte of the body."""


class _Inflate:
    """gzip or deflate, decoded in bounded pieces. ``deflate`` is accepted zlib-wrapped (as
    RFC 9110 says) or raw (as some servers send it), as httpx does; data after the end of
    the compressed stream is ignored and a truncated stream yields what it holds, as httpx
    does too."""

    def __init__(self, coding: str) -> None:
        self._coding = coding
        self._head = b""
        gzip = coding in ("gzip", "x-gzip")  # RFC 9110 8.4.1.3: x-gzip is gzip
        self._d = zlib.decompressobj(zlib.MAX_WBITS | 16) if gzip else None

    def decode(self, data: bytes) -> Iterator[bytes]:
        if self._d is None:
            # deflate: the first two bytes tell a zlib wrapper from raw deflate.
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            self._d = zlib.decompressobj(zlib.MAX_WBITS if _zlib_header(data) else -zlib.MAX_WBITS)
        yield from self._run(data)

    def finish(self) -> Iterator[bytes]:
        if self._d is not None:
            yield from self._run(b"")  # output still held after the last input

    def _run(self, data: bytes) -> Iterator[bytes]:
        d = self._d
        assert d is not None
        while not d.eof:
            try:
                out = d.decompress(data, _PIECE)
            except zlib.error:
                raise Undecodable(f"its {self._coding} data is corrupt") from None
            if out:
                yield out
            data = d.unconsumed_tail
            if not data and len(out) < _PIECE:
                break  # input used up and no output left waiting


def _zlib_header(head: bytes) -> bool:
    """Whether two bytes open a zlib stream zlib itself accepts (RFC 1950: deflate method,
    window within 32 KiB, check bits, no preset dictionary)."""
    cmf, flg = head[0], head[1]
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0 and not flg & 0x20


def _bounded_brotli() -> Any:
    """The `brotli` module if it is installed and its decoder can bound its output (Brotli
    1.2+: ``process(data, output_buffer_limit=...)``); else None, and `br` is refused."""
    try:
        import brotli
    except ImportError:
        return None
    try:
        decompressor = brotli.Decompressor()
        decompressor.process(b"", output_buffer_limit=_PIECE)
        decompressor.can_accept_more_data()
        decompressor.is_finished()
    except Exception:  # brotlipy, or an older Brotli: it would inflate without bound
        return None
    return brotli


_brotli = _bounded_brotli()


class _Brotli:
    def __init__(self, coding: str) -> None:
        self._d = _brotli.Decompressor()

    def decode(self, data: bytes) -> Iterator[bytes]:
        # Output can still be waiting when `can_accept_more_data()` says yes: drain it with
        # empty input until none comes (brotli 1.2 wants empty input until it says yes, too).
        try:
            out, idle = self._d.process(data, output_buffer_limit=_PIECE), False
            while True:
                if out:
                    yield out
                elif self._d.can_accept_more_data() or self._d.is_finished():
                    break
                elif idle:  # neither output nor room for input: never spin
                    raise Undecodable("its br data cannot be decoded")
                idle = not out
                out = self._d.process(b"", output_buffer_limit=_PIECE)
        except _brotli.error:
            raise Undecodable("its br data is corrupt") from None

    def finish(self) -> Iterator[bytes]:
        return iter(())


_DECODERS: dict[str, Callable[[str], Any]] = {"gzip": _Inflate, "x-gzip": _Inflate, "deflate": _Inflate}
if _brotli is not None:
    _DECODERS["br"] = _Brotli

# What the gateway tells providers it can read: exactly the codings decoded above. httpx on
# its own would also offer `zstd` (with `zstandard` installed) and `br` (with any brotli),
# which cannot be decoded here with a bound and so would only be refused.
ACCEPT_ENCODING = ", ".join(coding for coding in _DECODERS if coding != "x-gzip")


class BoundedBody:
    """A response body decoded as its raw bytes arrive, refused as soon as it grows past
    ``limit`` once decoded.

    ``codings`` are the Content-Encoding values in the order they were applied; they are
    undone in reverse. The raw bytes and every intermediate layer are bounded too (each may
    be a little larger than what it encodes, by at most deflate's worst-case overhead), so
    neither a huge compressed stream nor one that inflates to next to nothing is read to its
    end. An unknown coding, or one that cannot be decoded with a bound, is refused.
    """

    def __init__(self, codings: list[str], limit: int) -> None:
        self.limit = limit
        self._encoded_limit = limit + limit // 1024 + 1024  # zlib's deflateBound, generously
        self._layers: list[Any] = []
        for value in reversed(codings):
            coding = value.strip().lower()
            if coding in ("", "identity"):
                continue
            decoder = _DECODERS.get(coding)
            if decoder is None:
                raise Undecodable(f"its Content-Encoding `{_printable(coding)}` is not supported")
            self._layers.append(decoder(coding))
        # Bytes seen at each level: the raw stream, each layer's output (the last is the body).
        self._sizes = [0] * (len(self._layers) + 1)
        self._chunks: list[bytes] = []

    def feed(self, raw: bytes) -> None:
        self._push(0, raw)

    def finish(self) -> bytes:
        for i, layer in enumerate(self._layers):
            for piece in layer.finish():
                self._push(i + 1, piece)
        return b"".join(self._chunks)

    def _push(self, level: int, data: bytes) -> None:
        self._sizes[level] += len(data)
        if level == len(self._layers):
            if self._sizes[level] > self.limit:
                raise BodyTooLarge(f"the provider's answer is larger than {self.limit} bytes")
            self._chunks.append(data)
            return
        if self._sizes[level] > self._encoded_limit:
            raise BodyTooLarge(f"the provider's answer is larger than {self.limit} bytes (still encoded)")
        for piece in self._layers[level].decode(data):
            self._push(level + 1, piece)


def _printable(coding: str) -> str:
    return coding if len(coding) <= 24 and coding.replace("-", "").isalnum() and coding.isascii() else "(unprintable)"
