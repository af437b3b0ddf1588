"""The demo users' fees and their ledger: fines and charges of each type, open, partly paid, in dispute
or paid, and the payments that brought each balance to what it is."""
from __future__ import annotations

import numpy as np

from tasks.devtools.demo.activity import Activity
from tasks.devtools.demo.catalogue import LIBRARY, LIBRARY_SHARE, TITLE
from tasks.devtools.demo.chunk import Chunk
from tasks.devtools.demo.people import People
from tasks.devtools.demo.rows import expand, records, where

# fee type, share of fees, and how its amount is drawn (in cents)
_FEE_TYPES = np.array(["OVERDUEFINE", "LOSTITEMREPLACEMENTFEE", "LOSTITEMPROCESSFEE", "DAMAGEDITEMFINE",
                       "CARDRENEWAL"], dtype=object)
_FEE_TYPE_SHARE = (0.55, 0.10, 0.10, 0.10, 0.15)
FEE_FULL, FEE_PARTLY_PAID, FEE_IN_DISPUTE, FEE_PAID = 0, 1, 2, 3
_PAYMENT_COMMENTS = np.array(["Paid at the circulation desk", "Paid online", "Paid at the self-service kiosk"],
                             dtype=object)


def fees_and_ledger(chunk: Chunk, who: People, activity: Activity) -> dict[str, list[dict]]:
    """Rows for `fees` and `fee_transactions`: every balance is the amount less the payments."""
    rng = chunk.rng
    owner, ordinal = expand(activity.n_fees)
    size = owner.size
    ids = chunk.ids("fees", size)
    state = rng.choice(4, size=size, p=(0.6, 0.15, 0.03, 0.22))
    owes = activity.owes[owner]
    state = np.where(owes, state, FEE_PAID)
    # A user who owes has at least one fee still open.
    state = np.where(owes & (ordinal == 0) & (state == FEE_PAID), FEE_FULL, state)

    kind = rng.choice(len(_FEE_TYPES), size=size, p=_FEE_TYPE_SHARE)
    overdue_fine = 50 + 25 * np.minimum(rng.exponential(12, size).astype(np.int64), 98)   # 0.50 .. 25.00
    replacement = 100 * rng.integers(25, 151, size)                                       # 25.00 .. 150.00
    process = 500 * rng.integers(1, 5, size)                                              # 5.00 .. 20.00
    damage = 100 * rng.integers(5, 81, size)                                              # 5.00 .. 80.00
    renewal = 500 * rng.integers(1, 3, size)                                              # 5.00 or 10.00
    amount = np.choose(kind, [overdue_fine, replacement, process, damage, renewal])

    # Paid fees are settled in one payment or two; partly paid ones have had one payment.
    two_payments = (state == FEE_PAID) & (rng.random(size) < 0.2)
    part = np.clip((amount * rng.uniform(0.1, 0.9, size)).astype(np.int64), 1, amount - 1)
    first_payment = np.where(state == FEE_PAID, np.where(two_payments, part, amount), part)
    second_payment = amount - part
    n_payments = np.select([two_payments, state == FEE_PAID, state == FEE_PARTLY_PAID], [2, 1, 1], 0)
    balance = np.select([state == FEE_PAID, state == FEE_PARTLY_PAID], [0, amount - part], amount)

    creation_day = who.history_end[owner] - chunk.days(1, 700, size)
    creation = chunk.time(creation_day)
    item_fee = _FEE_TYPES[kind] != "CARDRENEWAL"
    fees = records(
        id=ids,
        user_id=who.user_id[owner],
        fee_id=[f"F{k:09d}" for k in ids.tolist()],
        fee_type=_FEE_TYPES[kind],
        status=np.select([state == FEE_PAID, state == FEE_IN_DISPUTE], ["CLOSED", "INDISPUTE"], "ACTIVE").astype(object),
        balance_minor=balance,
        original_amount_minor=amount,
        creation_time=creation,
        comment=where(state == FEE_IN_DISPUTE, "Patron disputes the charge"),
        owner=chunk.pick(LIBRARY, size, LIBRARY_SHARE),
        barcode=where(item_fee, np.array([f"I{k:09d}" for k in rng.integers(0, 10**9, size).tolist()], dtype=object)),
        title=where(item_fee, chunk.pick(TITLE, size)),
    )

    fee, nth = expand(n_payments)
    count = fee.size
    paid_day = np.minimum(creation_day[fee] + chunk.days(1, 60, count) * (nth + 1), -1)
    paid_at = np.maximum(chunk.time(paid_day), creation[fee] + np.timedelta64(3600, "s"))
    transactions = records(
        id=chunk.ids("fee_transactions", count),
        fee_id=ids[fee],
        type="PAYMENT",
        amount_minor=np.where(nth == 0, first_payment[fee], second_payment[fee]),
        comment=chunk.pick(_PAYMENT_COMMENTS, count),
        transaction_time=paid_at,
    )
    return {"fees": fees, "fee_transactions": transactions}
