"""How fast `load` takes an Alma file: generate N users (default 100,000) with identifiers, contacts,
some loans and fees, then time `load_files` (and a full `export --all`) on SQLite and, when given a
URL, on PostgreSQL.

    .venv/bin/python benchmarks/bench_load.py [--users N] [--postgres postgresql+psycopg2://…/scratch]

The PostgreSQL database should be a scratch one: the script initialises the schema there and adds
users whose ids carry a per-run prefix, so repeated runs do not collide.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tasks.alma.export import export_users  # noqa: E402
from tasks.alma.load import load_files  # noqa: E402
from tasks.db.engine import dispose_engines, get_engine, mask_url  # noqa: E402
from tasks.library.init_db import init_db  # noqa: E402

GROUPS = ["UNDERGRAD", "GRAD", "FACULTY", "STAFF", "ALUMNI", "PUBLIC"]


def make_user(i: int, prefix: str, rng: random.Random) -> dict:
    pid = f"{prefix}{i:07d}"
    user = {
        "primary_id": pid,
        "first_name": rng.choice(["Ada", "Zoë", "José", "Ngozi", "李", "Émile"]),
        "last_name": f"Surname{i}",
        "user_group": {"value": rng.choice(GROUPS)},
        "record_type": {"value": "PUBLIC", "desc": "Public"},
        "account_type": {"value": "EXTERNAL", "desc": "External"},
        "status": {"value": "ACTIVE", "desc": "Active"},
        "expiry_date": f"20{rng.randint(24, 30)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}Z",
        "purge_date": f"20{rng.randint(24, 30)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}Z",
        "contact_info": {
            "address": [{"line1": f"{i} Library Lane", "city": "Oslo", "postal_code": "0316",
                         "address_type": [{"value": "home", "desc": "Home"}], "preferred": True,
                         "segment_type": "External"}],
            "email": [{"email_address": f"{pid}@example.edu", "email_type": [{"value": "personal"}],
                       "preferred": True, "segment_type": "External"}],
        },
        "user_identifier": [{"id_type": {"value": "BARCODE"}, "value": f"B{pid}", "status": "ACTIVE",
                             "segment_type": "External"}],
        "user_role": [{"role_type": {"value": "200", "desc": "Patron"}, "scope": {"value": "MAIN"},
                       "status": {"value": "ACTIVE"}}],
        "item_loan": [],
        "fee": [],
    }
    if i % 4 == 0:
        user["item_loan"].append({"loan_id": f"L{pid}", "item_barcode": f"I{pid}", "title": "Bananboken",
                                  "loan_date": "2026-10-23T12:00:00Z", "due_date": "2026-11-20T20:00:00Z",
                                  "loan_status": "ACTIVE", "library": {"value": "MAIN"}})
    if i % 5 == 0:
        cents = rng.randint(100, 5000)
        paid = rng.randint(0, cents)
        user["fee"].append({
            "id": f"F{pid}", "type": {"value": "OVERDUEFINE"}, "status": {"value": "ACTIVE"},
            "original_amount": f"{cents / 100:.2f}", "balance": f"{(cents - paid) / 100:.2f}",
            "creation_time": "2026-10-21T12:00:00Z",
            "transaction": [{"type": {"value": "PAYMENT"}, "amount": f"{paid / 100:.2f}"}] if paid else [],
        })
    return user


def write_file(path: Path, users: int, prefix: str) -> None:
    rng = random.Random(42)
    with path.open("w", encoding="utf-8") as out:
        for i in range(users):
            out.write(json.dumps(make_user(i, prefix, rng), ensure_ascii=False) + "\n")


class _Sink:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def bench(label: str, url: str, path: Path, users: int) -> None:
    engine = get_engine(url)
    init_db(engine)
    started, cpu = time.perf_counter(), time.process_time()
    counts = load_files(engine, [str(path)])
    load_seconds, load_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    exported = export_users(engine, None, _Sink())
    export_seconds, export_cpu = time.perf_counter() - started, time.process_time() - cpu
    dispose_engines()
    print(f"{label} ({mask_url(url)}): load {counts['users']:,} users "
          f"({counts['loans']:,} loans, {counts['fees']:,} fees, {counts['transactions']:,} transactions) "
          f"in {load_seconds:.1f} s = {users / load_seconds:,.0f} users/s (loader CPU {load_cpu:.1f} s); "
          f"export --all of {exported:,} users in {export_seconds:.1f} s = {exported / export_seconds:,.0f} users/s "
          f"(exporter CPU {export_cpu:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--postgres", metavar="URL", help="also time a scratch PostgreSQL database")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        path = Path(tmp) / "users.jsonl"
        prefix = f"b{uuid.uuid4().hex[:6]}-"
        started = time.perf_counter()
        write_file(path, args.users, prefix)
        print(f"generated {args.users:,} users ({path.stat().st_size / 1e6:.0f} MB JSON Lines) "
              f"in {time.perf_counter() - started:.1f} s")
        # Wall-clock figures depend on what else the machine is doing: say so beside them.
        print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        bench("SQLite", f"sqlite:///{tmp}/bench.db", path, args.users)
        if args.postgres:
            bench("PostgreSQL", args.postgres, path, args.users)


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    main()
