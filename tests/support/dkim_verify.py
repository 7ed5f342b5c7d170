#!/usr/bin/python3
"""Independent DKIM verifier for test_dkim: python3-dkim checks every DKIM-Signature of a message.

usage: dkim_verify.py MESSAGE EXPECTED_SIGNATURES RECORD_FILE...

Each RECORD_FILE holds the zone-file line `sluice dkim keygen` prints
(`sel._domainkey.example.com. IN TXT ( "v=DKIM1; ..." ... )`); the verifier's DNS lookups are
answered from these files only. Exits 0 when the message carries exactly EXPECTED_SIGNATURES
signatures and every one verifies, 1 otherwise (with the reason on stderr).
"""
import re
import sys

import dkim


def load_records(paths):
    records = {}
    for path in paths:
        with open(path, encoding="ascii") as f:
            text = f.read()
        name = text.split()[0].lower()
        records[name] = "".join(re.findall(r'"([^"]*)"', text)).encode("ascii")
    return records


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], "rb") as f:
        message = f.read()
    expected = int(sys.argv[2])
    records = load_records(sys.argv[3:])

    def dnsfunc(name, timeout=5):
        return records.get(name.decode("ascii").lower())

    d = dkim.DKIM(message)
    count = sum(1 for k, _ in d.headers if k.lower() == b"dkim-signature")
    if count != expected:
        print(f"dkim_verify: {count} signatures, expected {expected}", file=sys.stderr)
        return 1
    for idx in range(count):
        try:
            ok = d.verify(idx=idx, dnsfunc=dnsfunc)
            reason = "does not verify"
        except dkim.DKIMException as e:
            ok, reason = False, str(e)
        if not ok:
            print(f"dkim_verify: signature {idx}: {reason}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
