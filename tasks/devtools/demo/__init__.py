"""The demo library generator: `make_demo_library(engine, users, seed, today=None)`.

    builder      make_demo_library: chunks, one executemany per table, one transaction; the demo's codes
    chunk        one chunk's random stream, its day and the ids it hands out
    rows         numpy columns -> rows for executemany
    ids          explicit ids: where they start, and moving id sequences past them afterwards
    people       who the users are: names, groups, record and account types, duplicates, purge dates
    activity     how many loans, requests and fees each user has, and which are active
    catalogue    the libraries and the titles on their shelves
    contacts     addresses, e-mail addresses, phone numbers
    account      identifiers, notes, attachments, roles, blocks, statistics, proxies
    circulation  loans and requests
    fees         fees and their ledger (payments)
"""
from tasks.devtools.demo.builder import make_demo_library

__all__ = ["make_demo_library"]
