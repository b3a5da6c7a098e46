"""A process that charges and releases answers in a loop (driven by the crash and
concurrency tests; not a test module itself).

Every answer is printed (`OK <query_id> <answer hex>`) only after `charge_and_release`
returned, i.e. after the charge committed. `--release-before-commit` is a deliberately
broken variant for the harness's own test: it prints the answer, then sleeps, then
charges, so a kill in that window leaves a released answer that the ledger lacks.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

from kernel.keyfiles import load_ed25519_private_key
from privacy.ledger.entry import ChargeRequest
from privacy.ledger.writer import Ledger
from privacy.policy import BudgetExceeded, BudgetPolicy

# Run as a script, not by pytest: put tests/ on the path for the shared test helpers.
sys.path.append(str(Path(__file__).resolve().parents[1]))
from support_ledger import charge_request

DATASET = "incidents"


def worker_charge(
    query_id: str, cost_units: int, analyst: str, dataset: str = DATASET
) -> ChargeRequest:
    """The charge this worker records for `query_id` (a count with a unique body)."""
    return charge_request(
        query_id,
        f'{{"dataset":"{dataset}","statistic":"count","id":"{query_id}"}}'.encode(),
        analyst=analyst,
        dataset=dataset,
        cost_units=cost_units,
        purpose="crash test",
        mechanism_summary='{"count":{"distribution":"gaussian","scale":1.0}}',
        snapshot_id="snapshot-1",
        signed_request=b"signed:" + query_id.encode(),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("ledger", type=Path)
    parser.add_argument("key", type=Path)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--count", type=int, default=10**9)
    parser.add_argument("--cost", type=int, default=1)
    parser.add_argument("--budget", type=int, default=10**12)
    parser.add_argument("--analyst", default="analyst-a")
    parser.add_argument("--dataset", default=DATASET, help="A child dataset (one budget).")
    parser.add_argument("--wait-for-go", action="store_true")
    parser.add_argument("--release-before-commit", action="store_true")
    args = parser.parse_args()

    ledger = Ledger.open(
        args.ledger,
        origin="npcs/test/node-a/ledger",
        signing_key=load_ed25519_private_key(args.key),
        policy=BudgetPolicy({"child": args.budget}, max_units_per_query=args.budget),
    )
    if args.wait_for_go:
        print("READY", flush=True)
        sys.stdin.readline()
    for number in range(args.count):
        query_id = f"{args.prefix}-{number}"
        answer = os.urandom(16)
        if args.release_before_commit:
            print(f"OK {query_id} {answer.hex()}", flush=True)
            time.sleep(0.5)  # the window in which a kill loses the charge
        try:
            outcome = ledger.charge_and_release(
                worker_charge(query_id, args.cost, args.analyst, args.dataset),
                functools.partial(bytes, answer),
            )
        except BudgetExceeded:
            print(f"REFUSED {query_id}", flush=True)
            continue
        if not args.release_before_commit:
            print(f"OK {query_id} {outcome.answer.hex()}", flush=True)
    ledger.close()
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
