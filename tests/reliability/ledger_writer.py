"""A ledger writer: appends batches of notes to the ledger at argv[1] as writer argv[2]
(argv[3] batches, or until killed) and prints each batch's seqs once append() returned
(acknowledged)."""

import sys

from milepost.ledger import Ledger


def main() -> None:
    url, name = sys.argv[1], sys.argv[2]
    batches = int(sys.argv[3]) if len(sys.argv) > 3 else None
    ledger = Ledger.open(url)
    batch = 0
    while batches is None or batch < batches:
        records = [
            {"kind": "note", "run_id": None, "host": name, "body": {"batch": batch, "i": i}}
            for i in range(1 + batch % 7)
        ]
        seqs = ledger.append(records)
        print(" ".join(map(str, seqs)), flush=True)
        batch += 1


if __name__ == "__main__":
    main()
