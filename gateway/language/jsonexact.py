"""JSON with exact decimals: the one codec for money-carrying bodies.

Numbers with a fraction decode to :class:`~decimal.Decimal`, never to float, and a Decimal
encodes as a JSON number (``50.00``, not ``"50.00"``), so an amount stays exact from NewStore's
request through the provider's answer and back. Everything that reads or writes such a body
(contracts, upstream codecs, the mapping test runner, redacted output) uses this module.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

_encoder = msgspec.json.Encoder(decimal_format="number")
_decoder = msgspec.json.Decoder(float_hook=Decimal)


def decoder(type_: Any = Any) -> msgspec.json.Decoder:
    """A decoder into ``type_`` (validating it) whose fractional numbers are Decimals."""
    return msgspec.json.Decoder(type_, float_hook=Decimal)


def decode(data: bytes | str) -> Any:
    """Untyped JSON -> Python data; raises ``msgspec.DecodeError`` on malformed input."""
    return _decoder.decode(data)


def encode(value: Any) -> bytes:
    """Python data -> compact JSON bytes; raises ``TypeError``/``msgspec.EncodeError`` when it cannot."""
    return _encoder.encode(value)
