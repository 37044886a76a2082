#!/usr/bin/env python3
"""Writes the commands of whole elections as broker envelopes, one JSON line
each (MESSAGES), and the verdict the appender must reach for each, in the
same order: "<event_id> appended" or "<event_id> rejected <rule>" (EXPECTED),
plus "<election_id>" lines in ELECTIONS.

Usage: gen-election.py MESSAGES EXPECTED ELECTIONS [COUNT]

Each election walks the whole life cycle, with rejected commands mixed in:
a change by a stranger, a ballot before opening, a second ballot for one
voter, a duplicate email, a ballot by someone else, a ballot after close."""

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


def now(offset=0):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + offset)) + ".000Z"


def election(out, expect):
    eid = ulid()
    owner = "owner-%s@example.org" % eid.lower()
    comp, cand1, cand2 = ulid(), ulid(), ulid()
    alice, bob = ulid(), ulid()
    alice_mail, bob_mail = "alice@example.org", "bob@example.org"
    b1, b2, bx = ulid(), ulid(), ulid()

    def cmd(kind, user, verdict, **data):
        ev = {
            "event_id": str(uuid.uuid4()),
            "type": kind,
            "data": dict(election_id=eid, **data),
            "metadata": {"user": user, "admin": False, "at": now(),
                         "correlation_id": str(uuid.uuid4()), "source": "127.0.0.1"},
        }
        out.append(json.dumps(ev, separators=(",", ":")))
        expect.append(ev["event_id"] + " " + verdict)

    ok = "appended"
    cmd("ElectionCreated", owner, ok, name="Photo contest", description="A test")
    cmd("ElectionCreated", owner, "rejected election_exists", name="Again")
    cmd("CompetitionAdded", owner, ok, competition_id=comp, name="Landscapes")
    cmd("CandidateAdded", owner, ok, competition_id=comp, candidate_id=cand1, name="Hills")
    cmd("CandidateAdded", owner, ok, competition_id=comp, candidate_id=cand2, name="Lake",
        image_url="https://example.org/lake.jpg", image_caption="The lake")
    cmd("ElectionNameChanged", "mallory@example.org", "rejected not_owner", name="Mine")
    cmd("VoterRegistered", owner, ok, voter_id=alice, name="Alice", email=alice_mail)
    cmd("VoterRegistered", owner, ok, voter_id=bob, name="Bob", email=bob_mail)
    cmd("VoterRegistered", owner, "rejected email_already_registered", voter_id=ulid(),
        name="Alice again", email=alice_mail)
    cmd("BallotCreated", alice_mail, "rejected election_not_open", ballot_id=bx,
        voter_id=alice)
    cmd("ElectionOpened", owner, ok, open_date=now())
    cmd("CandidateAdded", owner, "rejected not_draft", competition_id=comp,
        candidate_id=ulid(), name="Late")
    cmd("BallotCreated", alice_mail, ok, ballot_id=b1, voter_id=alice)
    cmd("BallotCreated", alice_mail, "rejected already_voted", ballot_id=ulid(),
        voter_id=alice)
    cmd("BallotCreated", alice_mail, "rejected not_voter", ballot_id=ulid(), voter_id=bob)
    cmd("BallotCandidateRated", alice_mail, ok, ballot_id=b1, competition_id=comp,
        candidate_id=cand1, rating=4)
    cmd("BallotCandidateRated", alice_mail, ok, ballot_id=b1, competition_id=comp,
        candidate_id=cand1, rating=5)
    cmd("BallotCast", alice_mail, ok, ballot_id=b1)
    cmd("BallotCreated", bob_mail, ok, ballot_id=b2, voter_id=bob)
    cmd("BallotCandidateRated", bob_mail, ok, ballot_id=b2, competition_id=comp,
        candidate_id=cand2, rating=3)
    cmd("BallotCast", bob_mail, ok, ballot_id=b2)
    cmd("ElectionClosed", owner, ok, close_date=now(60))
    cmd("BallotCandidateRated", bob_mail, "rejected election_closed", ballot_id=b2,
        competition_id=comp, candidate_id=cand1, rating=1)
    cmd("ElectionNameChanged", owner, "rejected election_closed", name="Renamed")
    return eid


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    count = int(sys.argv[4]) if len(sys.argv) == 5 else 1
    out, expect, ids = [], [], []
    for _ in range(count):
        ids.append(election(out, expect))
    for path, lines in ((sys.argv[1], out), (sys.argv[2], expect), (sys.argv[3], ids)):
        with open(path, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))


main()
