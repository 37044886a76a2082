#!/usr/bin/env python3
"""Writes the events of whole, valid elections as broker envelopes, one JSON
line each (EVENTS), for pv-projector-tool append; the election ids go to
ELECTIONS, one a line.

Usage: gen-events.py EVENTS ELECTIONS [--elections N] [--voters V]
                     [--deleted K] [--seed S] [--candidates C]
                     [--description-bytes B] [--ratings R]

Each election: created, renamed, two competitions with C + 1 candidates
each (default 2 + 1; the last removed again while in draft, the second with
an image; the first described, or every one with a description of B bytes
of UTF-8, at most 2,000 characters),
V voters, opened, a ballot per voter rating one to three candidates (some
re-rated), or R distinct candidates across the competitions with --ratings,
90 % of them cast, closed.  The first K elections are deleted at the end.
Elections are interleaved event by event, so one feed page holds several."""

import argparse
import json
import os
import random
import time
import uuid

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(rng):
    ms = int(time.time() * 1000)
    value = (ms << 80) | rng.getrandbits(80)
    return "".join(CROCKFORD[(value >> (5 * (25 - i))) & 31] for i in range(26))


def stamp(offset):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1700000000 + offset)) + ".000Z"


def election(rng, voters, deleted, ncand=2, dbytes=0, nratings=0):
    eid = ulid(rng)
    owner = "owner-%s@example.org" % eid.lower()
    out = []

    def ev(kind, user, **data):
        out.append({
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "type": kind,
            "data": dict(election_id=eid, **data),
            "metadata": {"user": user, "admin": False, "at": stamp(len(out))},
        })

    ev("ElectionCreated", owner, name="Contest " + eid[-6:], description="Generated")
    ev("ElectionNameChanged", owner, name="Photo contest " + eid[-6:])
    comps = []
    for c in range(2):
        cid = ulid(rng)
        ev("CompetitionAdded", owner, competition_id=cid, name="Competition %d" % c)
        cands = []
        for k in range(ncand + 1):
            kid = ulid(rng)
            extra = {}
            if k == 1:
                extra = {"image_url": "https://example.org/%s.jpg" % kid.lower(),
                         "image_caption": "Picture %d" % k}
            ev("CandidateAdded", owner, competition_id=cid, candidate_id=kid,
               name="Candidate %d.%d" % (c, k), **extra)
            cands.append(kid)
        removed = cands.pop()
        ev("CandidateRemoved", owner, competition_id=cid, candidate_id=removed)
        for kid in cands if dbytes else cands[:1]:
            text = "A fine picture"
            if dbytes:
                # B bytes of UTF-8 in fewer characters than the domain's 2,000.
                words = "%s vue à l'aube, lumière dorée; " % kid.lower()
                raw = (words * (dbytes // len(words) + 1)).encode()[:dbytes]
                text = raw.decode(errors="ignore")
                text += "x" * (dbytes - len(text.encode()))
            ev("CandidateDescriptionChanged", owner, competition_id=cid, candidate_id=kid,
               description=text)
        comps.append((cid, cands))
    people = []
    for v in range(voters):
        vid = ulid(rng)
        mail = "voter%d-%s@example.org" % (v, eid[-6:].lower())
        ev("VoterRegistered", owner, voter_id=vid, name="Voter %d" % v, email=mail)
        people.append((vid, mail))
    ev("ElectionOpened", owner, open_date=stamp(0))
    for vid, mail in people:
        bid = ulid(rng)
        ev("BallotCreated", mail, ballot_id=bid, voter_id=vid)
        if nratings:
            pairs = [(cid, kid) for cid, cands in comps for kid in cands]
            for cid, kid in rng.sample(pairs, min(nratings, len(pairs))):
                ev("BallotCandidateRated", mail, ballot_id=bid, competition_id=cid,
                   candidate_id=kid, rating=rng.randint(1, 5))
        for cid, cands in [] if nratings else rng.sample(comps, rng.randint(1, len(comps))):
            kid = rng.choice(cands)
            ev("BallotCandidateRated", mail, ballot_id=bid, competition_id=cid,
               candidate_id=kid, rating=rng.randint(1, 5))
            if rng.random() < 0.2:
                ev("BallotCandidateRated", mail, ballot_id=bid, competition_id=cid,
                   candidate_id=kid, rating=rng.randint(1, 5))
        if rng.random() < 0.9:
            ev("BallotCast", mail, ballot_id=bid)
    ev("ElectionClosed", owner, close_date=stamp(100000))
    if deleted:
        ev("ElectionDeleted", owner)
    return eid, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("events")
    ap.add_argument("elections")
    ap.add_argument("--elections", dest="count", type=int, default=3)
    ap.add_argument("--voters", type=int, default=5)
    ap.add_argument("--deleted", type=int, default=0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--candidates", type=int, default=2)
    ap.add_argument("--description-bytes", dest="dbytes", type=int, default=0)
    ap.add_argument("--ratings", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed if args.seed is not None else os.urandom(8))
    made = [election(rng, args.voters, i < args.deleted, args.candidates, args.dbytes,
                     args.ratings) for i in range(args.count)]
    with open(args.elections, "w", encoding="utf-8") as f:
        f.write("".join(eid + "\n" for eid, _ in made))
    with open(args.events, "w", encoding="utf-8") as f:
        streams = [events for _, events in made]
        i = 0
        while any(i < len(s) for s in streams):
            for s in streams:
                if i < len(s):
                    f.write(json.dumps(s[i], separators=(",", ":")) + "\n")
            i += 1


main()
