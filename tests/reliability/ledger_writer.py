"""A ledger writer to be killed: appends batches of notes to the ledger at argv[1] as
writer argv[2], and prints each batch's seqs once append() returned (acknowledged)."""

import sys

from milepost.ledger import Ledger


def main() -> None:
    url, name = sys.argv[1], sys.argv[2]
    ledger = Ledger.open(url)
    batch = 0
    while True:
        records = [
            {"kind": "note", "run_id": None, "host": name, "body": {"batch": batch, "i": i}}
            for i in range(1 + batch % 7)
        ]
        seqs = ledger.append(records)
        print(" ".join(map(str, seqs)), flush=True)
        batch += 1


if __name__ == "__main__":
    main()
