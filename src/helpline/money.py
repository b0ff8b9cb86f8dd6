"""Amounts of money as customers read them."""

from __future__ import annotations

from decimal import Decimal

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "CAD": "CA$", "AUD": "A$"}
_ZERO_DECIMAL = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF"})


def format_money(cents: int, currency: str) -> str:
    """``2347, "USD"`` → ``$23.47``; unknown currencies keep their code (``23.47 CHF``)."""
    code = currency.upper()
    if code in _ZERO_DECIMAL:
        amount = f"{cents:,}"
    else:
        sign = "-" if cents < 0 else ""
        amount = f"{sign}{abs(cents) // 100:,}.{abs(cents) % 100:02d}"
    symbol = _SYMBOLS.get(code)
    return f"{symbol}{amount}" if symbol else f"{amount} {code}"


def minor_units(amount: Decimal, currency: str) -> int:
    """``Decimal("20.00"), "EUR"`` → ``2000``: an amount as written, in the cents amounts use."""
    scale = 1 if currency.upper() in _ZERO_DECIMAL else 100
    return int((amount * scale).to_integral_value())
