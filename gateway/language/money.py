"""Money with the currency's ISO 4217 exponent, in ``Decimal``, never ``float``.

Providers want amounts as minor-unit integers (USD 10.50 -> 1050, JPY 1000 -> 1000, KWD 1.234
-> 1234), as decimal strings ("10.50"), or scaled by a fixed factor regardless of currency.
Conversions that would lose precision raise instead of rounding: a gateway must never move an
amount that differs from the one NewStore asked for.
"""

from __future__ import annotations

from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow, Rounded

# Arithmetic that raises instead of rounding. Amounts are bounded when they are decoded
# (contracts.giftcard), so 60 significant digits always suffice.
_EXACT = Context(prec=60, traps=[Inexact, Rounded, InvalidOperation, Overflow])
MAX_DIGITS_BEFORE_POINT = 15
MAX_DECIMAL_PLACES = 12

# ISO 4217 active alpha-3 codes (list 2025). Exponent 2 unless listed in _EXPONENTS.
_CODES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN
    BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN
    ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD
    JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT
    MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG
    QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT
    TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XOF
    XPF YER ZAR ZMW ZWG
    """.split()
)
_EXPONENTS = {
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}


class MoneyError(ValueError):
    """A conversion that cannot be done exactly; the message never contains the amount."""


def exponent(currency_or_exponent: str | int) -> int:
    """The number of minor-unit digits of a currency, or the exponent itself if given as int."""
    if isinstance(currency_or_exponent, bool):
        raise MoneyError("an exponent must be a whole number")
    if isinstance(currency_or_exponent, int):
        if not 0 <= currency_or_exponent <= 8:
            raise MoneyError("an exponent must be between 0 and 8")
        return currency_or_exponent
    code = str(currency_or_exponent).upper()
    if code not in _CODES:
        raise MoneyError(f"`{currency_or_exponent}` is not an ISO 4217 currency code")
    return _EXPONENTS.get(code, 2)


def to_decimal(value: object) -> Decimal:
    """A JSON number or a decimal string as ``Decimal``; floats go through their shortest repr."""
    if isinstance(value, bool):
        raise MoneyError("a boolean is not an amount")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise MoneyError("the value is not a decimal number") from None
    else:
        raise MoneyError(f"a {type(value).__name__} is not an amount")
    if not result.is_finite():
        raise MoneyError("an amount must be a finite number")
    _check_magnitude(result, 40, 40)  # minor units included; keeps the arithmetic below cheap
    return result


def check_bounds(value: Decimal) -> None:
    """Refuse amounts no gift card holds (NewStore's amounts are checked with this on decode)."""
    _check_magnitude(value, MAX_DIGITS_BEFORE_POINT, MAX_DECIMAL_PLACES)


def _check_magnitude(value: Decimal, digits: int, places: int) -> None:
    exponent = value.as_tuple().exponent
    # Look at the raw exponent first: normalising 1E-999999999 would itself be the problem.
    if isinstance(exponent, int) and exponent < -(places + 60):
        raise MoneyError(f"an amount may have at most {places} decimal places")
    if value != 0 and value.adjusted() >= digits:
        raise MoneyError(f"an amount must be below 10^{digits}")
    if decimal_places(value) > places:
        raise MoneyError(f"an amount may have at most {places} decimal places")


def decimal_places(value: Decimal) -> int:
    """Significant decimal places: 10.50 -> 1, 10 -> 0, 1E+2 -> 0."""
    if value == 0:
        return 0
    exponent = value.normalize(_EXACT).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def to_minor(value: object, currency_or_exponent: str | int) -> int:
    """10.5 USD -> 1050. Raises if the amount has more decimals than the currency allows."""
    exp = exponent(currency_or_exponent)
    amount = to_decimal(value)
    if decimal_places(amount) > exp:
        raise MoneyError(f"the amount has more decimal places than {_label(currency_or_exponent)} allows ({exp})")
    return int(amount.scaleb(exp, _EXACT))


_QUANTA = [Decimal(1).scaleb(-places) for places in range(9)]  # by exponent (0..8)
_WHOLE_LIMIT = 10**40  # what to_decimal accepts of a whole number


def from_minor(value: object, currency_or_exponent: str | int) -> Decimal:
    """1050 USD -> Decimal("10.50")."""
    exp = exponent(currency_or_exponent)
    if type(value) is int and -_WHOLE_LIMIT < value < _WHOLE_LIMIT:  # the common case, none of the checks below can fail
        return Decimal(value).scaleb(-exp, _EXACT).quantize(_QUANTA[exp], context=_EXACT)
    minor = to_decimal(value)
    if decimal_places(minor) > 0:
        raise MoneyError("a minor-unit amount must be a whole number")
    return minor.scaleb(-exp, _EXACT).quantize(_QUANTA[exp], context=_EXACT)


def to_decimal_string(value: object, currency_or_exponent: str | int) -> str:
    """10.5 USD -> "10.50"; JPY 1000 -> "1000". Raises instead of rounding."""
    exp = exponent(currency_or_exponent)
    amount = to_decimal(value)
    if decimal_places(amount) > exp:
        raise MoneyError(f"the amount has more decimal places than {_label(currency_or_exponent)} allows ({exp})")
    return f"{amount.quantize(_QUANTA[exp], context=_EXACT):f}"


def _label(currency_or_exponent: str | int) -> str:
    return f"exponent {currency_or_exponent}" if isinstance(currency_or_exponent, int) else str(currency_or_exponent).upper()
