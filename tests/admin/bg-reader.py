#!/usr/bin/env python3
"""Reads elections through the API in a loop until a stop file appears, for
the blue-green test: every answer must be 200 (an election that exists is
never missing once it was seen, whichever container serves it; a 404 before
that is an election not projected yet) and an election's version must never
go back (no reader sees a container behind the one it saw).

Usage: bg-reader.py BASE_URL AUTH_HEADER IDS_FILE STOP_FILE OUT_FILE

OUT_FILE gets one line: "reads N failed F regressions R", then one line per
failure or regression (at most 20)."""

import json
import os
import sys
import urllib.error
import urllib.request


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    base, auth, ids_file, stop, out = sys.argv[1:]
    name, _, value = auth.partition(": ")
    with open(ids_file) as f:
        ids = [line.strip() for line in f if line.strip()]
    seen = {}
    reads = failed = regressions = 0
    notes = []
    i = 0
    while not os.path.exists(stop):
        eid = ids[i % len(ids)]
        i += 1
        path = "/elections/" + eid if i % 7 else "/elections?limit=5"
        req = urllib.request.Request(base + path, headers={name: value})
        reads += 1
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as e:
            if e.code == 404 and eid not in seen and i % 7:
                continue
            failed += 1
            notes.append("%s: HTTP %d %s" % (path, e.code, e.read()[:200]))
            continue
        except Exception as e:  # a connection that failed is a failed read too
            failed += 1
            notes.append("%s: %s" % (path, e))
            continue
        if "version" not in body:
            continue
        if body["version"] < seen.get(eid, -1):
            regressions += 1
            notes.append("%s: version %d after %d" % (eid, body["version"], seen[eid]))
        seen[eid] = max(seen.get(eid, -1), body["version"])
    with open(out, "w") as f:
        f.write("reads %d failed %d regressions %d\n" % (reads, failed, regressions))
        for n in notes[:20]:
            f.write(n + "\n")


if __name__ == "__main__":
    main()
