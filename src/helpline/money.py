"""Amounts of money as customers read them."""

from __future__ import annotations

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
