"""Money at the edges: Decimal amounts in files, parameters and reports; integer minor units inside."""
from __future__ import annotations

from decimal import Decimal

CENT = Decimal("0.01")


def to_minor(amount: Decimal | int | str) -> int:
    """Decimal("12.50") -> 1250. Refuses amounts with more than two decimal places instead of rounding
    someone's money silently."""
    value = Decimal(str(amount))
    minor = value * 100
    if minor != minor.to_integral_value():
        raise ValueError(f"amount {amount} has more than two decimal places")
    return int(minor)


def from_minor(minor: int) -> Decimal:
    return (Decimal(int(minor)) / 100).quantize(CENT)


def format_amount(minor: int) -> str:
    """The contract's amount form: a decimal string such as "12.50"."""
    return str(from_minor(minor))


def money(amount: Decimal | str | int, currency: str | None = None) -> str:
    """An amount as people write it: "5,076.16 EUR" (the library's currency unless given)."""
    from tasks.library.settings import library_currency

    return f"{Decimal(str(amount)).quantize(CENT):,} {currency or library_currency()}"
