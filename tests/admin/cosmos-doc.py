#!/usr/bin/env python3
"""Damages the read model behind the projector's back, for the rebuild tests,
by talking to the Cosmos DB stand-in (which does not check authorization).

Usage: cosmos-doc.py URL DATABASE delete ELECTION DOC_ID
       cosmos-doc.py URL DATABASE rename ELECTION NAME

delete removes one document of the election's partition; rename changes the
"name" of the election's head document in place (an upsert)."""

import json
import sys
import urllib.error
import urllib.request


def call(method, url, election, body=None, upsert=False):
    headers = {
        "x-ms-version": "2018-12-31",
        "authorization": "type%3Dmaster%26ver%3D1.0%26sig%3Dx",
        "x-ms-date": "Thu, 01 Jan 2026 00:00:00 GMT",
        "x-ms-documentdb-partitionkey": json.dumps([election]),
        "content-type": "application/json",
    }
    if upsert:
        headers["x-ms-documentdb-is-upsert"] = "True"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as resp:
        text = resp.read()
        return json.loads(text) if text else None


def main():
    if len(sys.argv) != 6 or sys.argv[3] not in ("delete", "rename"):
        sys.exit(__doc__)
    base, db, verb, election, arg = sys.argv[1:]
    docs = "%s/dbs/%s/colls/elections/docs" % (base.rstrip("/"), db)
    try:
        if verb == "delete":
            call("DELETE", "%s/%s" % (docs, arg), election)
        else:
            head = call("GET", "%s/%s" % (docs, election), election)
            head["name"] = arg
            for key in [k for k in head if k.startswith("_")]:
                del head[key]
            call("POST", docs, election, head, upsert=True)
    except urllib.error.HTTPError as e:
        sys.exit("cosmos-doc.py: %s %s: %s" % (verb, arg, e))


main()
