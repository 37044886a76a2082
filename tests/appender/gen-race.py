#!/usr/bin/env python3
"""Writes commands for the racing-appenders test, one broker envelope per
line, for COUNT elections (in ELECTIONS, one id a line):

  SETUP  ElectionCreated, VoterRegistered (alice), ElectionOpened
  WARM   ElectionDescriptionChanged (so that both appenders hold the
         election in their caches before the race)
  X, Y   a BallotCreated each for the same voter with different ballot ids:
         published to two appenders at once, exactly one may be accepted.

Usage: gen-race.py DIR COUNT   (writes DIR/setup, DIR/warm-a, DIR/warm-b,
DIR/x, DIR/y, DIR/elections)"""

import json
import os
import sys
import time
import uuid

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_last = [0]


def ulid():
    ms = int(time.time() * 1000)
    if ms <= _last[0]:
        ms = _last[0] + 1
    _last[0] = ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(CROCKFORD[(value >> (5 * (25 - i))) & 31] for i in range(26))


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000Z"


def cmd(kind, user, eid, **data):
    return json.dumps({
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "data": dict(election_id=eid, **data),
        "metadata": {"user": user, "admin": False, "at": now()},
    }, separators=(",", ":"))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    out, count = sys.argv[1], int(sys.argv[2])
    files = {k: [] for k in ("setup", "warm-a", "warm-b", "x", "y", "elections")}
    for _ in range(count):
        eid, voter = ulid(), ulid()
        owner, mail = "owner-%s@example.org" % eid.lower(), "alice@example.org"
        files["elections"].append(eid)
        files["setup"].append(cmd("ElectionCreated", owner, eid, name="Race"))
        files["setup"].append(cmd("VoterRegistered", owner, eid, voter_id=voter, name="Alice",
                                  email=mail))
        files["setup"].append(cmd("ElectionOpened", owner, eid, open_date=now()))
        files["warm-a"].append(cmd("ElectionDescriptionChanged", owner, eid, description="a"))
        files["warm-b"].append(cmd("ElectionDescriptionChanged", owner, eid, description="b"))
        files["x"].append(cmd("BallotCreated", mail, eid, ballot_id=ulid(), voter_id=voter))
        files["y"].append(cmd("BallotCreated", mail, eid, ballot_id=ulid(), voter_id=voter))
    for name, lines in files.items():
        with open(os.path.join(out, name), "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))


main()
