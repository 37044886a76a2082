#!/usr/bin/env python3
"""The chaos driver (Python 3, standard library only), run by tests/chaos/chaos.sh.

Runs the programs of the stack on the servers chaos.sh started (the EventStoreDB stand-in with
a data file when the backend is esdb, the KurrentDB gRPC stand-in with one when it is
kurrentdb, lighttpd in front of two photovote.fcgi processes, two appenders on two partition
queues with single active consumer, the projector), drives realistic commands at a fixed rate
and injects seeded random faults meanwhile.  Afterwards it checks and prints, as TAP:

  ledger    every write answered 2xx is in its stream exactly once or rejected in the audit
            log with a reason; a 503 naming an event id ("may have been published") is there
            once or not at all; nothing else appeared: per election and event type, the events
            the ledger cannot name are at most the writes whose fate the client never learnt
  audit     every audit row agrees with its stream (number, id, type; numbers without gaps)
  replay    an independent replay of every stream (this file's own fold of domain.md's
            invariants, authorization included) finds no event that breaks a rule
  projection the live Cosmos DB documents equal `photovote-admin rebuild --all` into another
            database, and pv-projector-tool's fold of each stream
  commands  every GET /commands/{id} agrees with the audit log
  recovery  per fault kind: the writes that failed, seconds until writes were answered 2xx
            again, how long the fault's steps took, the longest wait for a verdict

The operator's part: programs killed with SIGKILL are started again after RESTART_DELAY, as
systemd's Restart=on-failure would; after the Cosmos DB stand-in restarts (it keeps its data
in memory, so it comes back empty) the operator runs `photovote-admin rebuild --all`, the
documented way to rebuild the read model, while the projector keeps running.

Seeded: the seed fixes the fault schedule (kinds, order, gaps, down times) and every
election's script; timing still varies between runs."""

import argparse
import base64
import collections
import datetime
import http.client
import itertools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RESTART_DELAY = 0.5
RETRY_SECONDS = 90
COSMOS_KEY = "Y2hhb3MtdGVzdC1zdGFuZC1pbi1rZXktbm90LWEtc2VjcmV0"
WRITE_OK = (200, 201, 202)
REJECT_STATUS = (403, 409, 422)

ARGS = None
T0 = time.monotonic()
PRINT_LOCK = threading.Lock()


def now():
    return time.monotonic() - T0


def note(msg):
    with PRINT_LOCK:
        print("# " + msg, flush=True)


def ulid(rng):
    value = (int(time.time() * 1000) << 80) | rng.getrandbits(80)
    return "".join(CROCKFORD[(value >> (5 * (25 - i))) & 31] for i in range(26))


def free_port():
    """A free loopback port below the ephemeral range (as servers.sh picks them): a port the
    kernel hands out for outgoing connections could be taken by one when a server restarts."""
    for _ in range(500):
        port = random.SystemRandom().randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port found in 20000-31999")


def store_port():
    """The event-store stand-in's port, kept across its restarts: chaos.sh's pick (below the
    ephemeral range), or any free one."""
    return int(os.environ.get("PV_CHAOS_STORE_PORT") or free_port())


# ---- the servers chaos.sh owns ------------------------------------------------------------

class Ctl:
    """Requests to chaos.sh, one at a time: "VERB SERVER" -> exit status."""

    def __init__(self, work):
        self.lock = threading.Lock()
        self.req = open(os.path.join(work, "ctl.req"), "w")
        self.ack = open(os.path.join(work, "ctl.ack"), "r")

    def __call__(self, verb, server):
        with self.lock:
            self.req.write("%s %s\n" % (verb, server))
            self.req.flush()
            line = self.ack.readline()
        return int(line.strip() or 1)


# ---- the programs this driver runs ---------------------------------------------------------

class Proc:
    def __init__(self, name, argv, env, log, cwd=None):
        self.name, self.argv, self.env, self.log, self.cwd = name, argv, env, log, cwd
        self.p = None
        self.lock = threading.Lock()
        self.held = False          # a fault or the end has it: the supervisor keeps off
        self.unexpected = []       # exit statuses nobody asked for

    def start(self):
        with open(self.log, "ab") as out:
            out.write(("==== %.3f start %s\n" % (now(), " ".join(self.argv))).encode())
            out.flush()
            self.p = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL,
                                      stdout=out, stderr=subprocess.STDOUT, cwd=self.cwd,
                                      start_new_session=True)

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def kill9(self):
        if self.alive():
            os.kill(self.p.pid, signal.SIGKILL)
        self.p.wait()

    def stop(self, seconds=20):
        if not self.alive():
            return self.p.returncode if self.p else 0
        os.kill(self.p.pid, signal.SIGTERM)
        try:
            return self.p.wait(seconds)
        except subprocess.TimeoutExpired:
            os.kill(self.p.pid, signal.SIGKILL)
            self.p.wait()
            return "killed after %ds" % seconds


class Stack:
    def __init__(self, work, backend, ctl):
        self.work, self.backend, self.ctl = work, backend, ctl
        b = ARGS.builddir
        self.bin = {
            "fcgi": os.path.join(b, "fcgi/photovote.fcgi"),
            "token": os.path.join(b, "fcgi/photovote-token"),
            "appender": os.path.join(b, "workers/photovote-appender"),
            "projector": os.path.join(b, "workers/photovote-projector"),
            "admin": os.path.join(b, "admin/photovote-admin"),
            "ptool": os.path.join(b, "tests/projector/pv-projector-tool"),
        }
        self.conninfo = os.environ["PV_TEST_PG_CONNINFO"]
        self.procs = {}
        self.http_port = free_port()
        self.api = "/api"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOVOTE_")}
        env.update({
            "PHOTOVOTE_LOG_LEVEL": "info",
            "PHOTOVOTE_HTTP_AUTH_MODE": "token",
            "PHOTOVOTE_HTTP_MAX_WAIT": "10",
            "PHOTOVOTE_AMQP_HOST": "127.0.0.1",
            "PHOTOVOTE_AMQP_PORT": os.environ["PV_TEST_AMQP_PORT"],
            "PHOTOVOTE_AMQP_PARTITIONS": "2",
            "PHOTOVOTE_POSTGRES_CONNINFO": self.conninfo,
            "PHOTOVOTE_EVENTSTORE_BACKEND": backend,
            "PHOTOVOTE_COSMOS_ENDPOINT": os.environ["PV_TEST_COSMOS_URL"],
            "PHOTOVOTE_COSMOS_KEY": COSMOS_KEY,
            "PHOTOVOTE_COSMOS_DATABASE": "chaos",
            "PHOTOVOTE_COSMOS_EMULATOR_QUIRKS": "true",
            "PHOTOVOTE_PROJECTOR_POLL_WAIT_MS": "500",
        })
        if backend == "esdb":
            self.esdb_port = store_port()
            env["PHOTOVOTE_EVENTSTORE_URL"] = "http://127.0.0.1:%d" % self.esdb_port
        if backend == "kurrentdb":
            self.kdb_port = store_port()
            self.kdb_url = "kurrentdb://127.0.0.1:%d?tls=false" % self.kdb_port
            env["PHOTOVOTE_EVENTSTORE_URL"] = self.kdb_url
        self.env = env
        # An empty configuration file: everything comes from the environment above.
        self.conf = os.path.join(work, "photovote.conf")
        open(self.conf, "w").close()

    def log(self, name):
        return os.path.join(self.work, name + ".log")

    def add(self, name, argv, cwd=None):
        self.procs[name] = Proc(name, argv, self.env, self.log(name), cwd)
        return self.procs[name]

    def kdb_wait(self):
        """Until the KurrentDB stand-in accepts connections (Node's start takes a while)."""
        wait_for(lambda: tcp_ok("127.0.0.1", self.kdb_port), 60, "the KurrentDB stand-in")

    def run(self, argv, env=None, timeout=300):
        e = dict(self.env)
        e.update(env or {})
        return subprocess.run(argv, env=e, capture_output=True, text=True, timeout=timeout)

    def start(self):
        if self.backend == "esdb":
            self.add("esdb", [sys.executable,
                              os.path.join(ARGS.srcdir, "tests/esdb-standin/esdb-standin.py"),
                              "--data", os.path.join(self.work, "esdb.data"),
                              str(self.esdb_port)]).start()
            wait_for(lambda: http_ok("127.0.0.1", self.esdb_port, "/info"), 30,
                     "the EventStoreDB stand-in")
        if self.backend == "kurrentdb":
            # Node resolves the stand-in's packages from the folder chaos.sh installed them
            # in (tests/kurrentdb/standin.sh's pv_kdb_dir).
            self.add("kurrentdb", ["node", os.path.join(ARGS.srcdir,
                                                        "tests/kurrentdb/kurrentdb-standin.js"),
                                   "--data", os.path.join(self.work, "kurrentdb.data"),
                                   str(self.kdb_port)], cwd=os.environ["PV_KDB_DIR"]).start()
            self.kdb_wait()
        # Migrations and an empty first projection.
        r = self.run([self.bin["projector"], "-c", self.conf, "--migrate",
                      os.path.join(ARGS.srcdir, "sql"), "--once"])
        if r.returncode != 0:
            raise RuntimeError("photovote-projector --migrate --once: %s" % r.stderr[-2000:])
        for i in (1, 2):
            sock = os.path.join(self.work, "fcgi%d.sock" % i)
            self.add("fcgi%d" % i, [self.bin["fcgi"], "-c", self.conf, "--listen", sock]).start()
        for i in (1, 2):
            self.add("appender%d" % i, [self.bin["appender"], "-c", self.conf]).start()
        self.add("projector", [self.bin["projector"], "-c", self.conf]).start()
        www = os.path.join(self.work, "www")
        os.makedirs(www, exist_ok=True)
        lconf = os.path.join(self.work, "lighttpd.conf")
        backends = ",\n".join(
            '\t("socket" => "%s", "check-local" => "disable", "disable-time" => 1)'
            % os.path.join(self.work, "fcgi%d.sock" % i) for i in (1, 2))
        with open(lconf, "w") as f:
            f.write('server.document-root = "%s"\nserver.bind = "127.0.0.1"\n'
                    'server.port = %d\nserver.modules = ("mod_fastcgi")\n'
                    'fastcgi.server = ("/api" => (\n%s\n))\n' % (www, self.http_port, backends))
        lighttpd = shutil.which("lighttpd") or "/usr/sbin/lighttpd"
        self.add("lighttpd", [lighttpd, "-D", "-f", lconf]).start()
        wait_for(lambda: http_ok("127.0.0.1", self.http_port, "/api/healthz"), 60,
                 "GET /api/healthz")

    def token(self, user, admin=False):
        argv = [self.bin["token"], "-c", self.conf, "create", user] + (["--admin"] if admin else [])
        r = self.run(argv)
        if r.returncode != 0:
            raise RuntimeError("photovote-token create %s: %s" % (user, r.stderr.strip()))
        return r.stdout.strip()

    def supervise(self, stop):
        """Starts again, after RESTART_DELAY, any program that exits while no fault holds it."""
        while not stop.is_set():
            for p in list(self.procs.values()):
                with p.lock:
                    if p.held or p.alive():
                        continue
                    p.unexpected.append(p.p.returncode)
                    note("%.1fs: %s exited by itself (status %s); starting it again"
                         % (now(), p.name, p.p.returncode))
                    time.sleep(RESTART_DELAY)
                    p.start()
            stop.wait(0.2)

    def stop_all(self):
        out = {}
        for name in ["lighttpd", "fcgi1", "fcgi2", "projector", "appender1", "appender2", "esdb",
                     "kurrentdb"]:
            p = self.procs.get(name)
            if p is None:
                continue
            with p.lock:
                p.held = True
                out[name] = p.stop()
        return out


def http_ok(host, port, path):
    try:
        c = http.client.HTTPConnection(host, port, timeout=3)
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        c.close()
        return r.status == 200
    except OSError:
        return False


def tcp_ok(host, port):
    try:
        socket.create_connection((host, port), timeout=3).close()
        return True
    except OSError:
        return False


def wait_for(cond, seconds, what):
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError("%s did not answer within %ds" % (what, seconds))
        time.sleep(0.2)


# ---- the client and its ledger -------------------------------------------------------------

class Pacer:
    """One request every 1/rate seconds, across all threads."""

    def __init__(self, rate):
        self.gap = 1.0 / rate
        self.lock = threading.Lock()
        self.next = time.monotonic()

    def wait(self):
        with self.lock:
            t = max(self.next, time.monotonic())
            self.next = t + self.gap
        d = t - time.monotonic()
        if d > 0:
            time.sleep(d)


class Ledger:
    def __init__(self, path, existing=False):
        """A new ledger in PATH, or (existing) the rows of one written before, to read."""
        self.lock = threading.Lock()
        self.rows = []
        self.file = None
        if not existing:
            self.file = open(path, "w")
            return
        with open(path) as f:
            self.rows = [json.loads(line) for line in f if line.endswith("\n")]

    def add(self, row):
        with self.lock:
            row["seq"] = len(self.rows)
            self.rows.append(row)
            self.file.write(json.dumps(row) + "\n")


class Client:
    def __init__(self, port, ledger, pacer):
        self.port, self.ledger, self.pacer = port, ledger, pacer
        self.stop = threading.Event()

    def request(self, method, path, token, body=None, headers=None, timeout=30):
        h = {"Authorization": "Bearer " + token}
        h.update(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            c.request(method, "/api" + path, body=data, headers=h)
            r = c.getresponse()
            raw = r.read()
            c.close()
        except (OSError, http.client.HTTPException) as e:
            return 0, None, {}, type(e).__name__
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = None
        return r.status, doc, {k.lower(): v for k, v in r.getheaders()}, \
            None if doc is not None or not raw else raw[:80].decode("utf-8", "replace")

    def write(self, el, etype, method, path, token, body, key=None, wait=None, expect=None):
        """One write attempt, paced and written to the ledger; returns the row."""
        self.pacer.wait()
        h = {}
        if key:
            h["Idempotency-Key"] = key
        if wait:
            h["Prefer"] = "wait=%d" % wait
        t = now()
        status, doc, headers, raw = self.request(method, path, token, body, h)
        row = {"t": t, "dt": now() - t, "election": el, "type": etype, "method": method,
               "path": path, "key": key, "wait": wait, "status": status}
        if expect:
            row["expect"] = expect
        err = doc.get("error") if isinstance(doc, dict) else None
        src = err if isinstance(err, dict) else doc if isinstance(doc, dict) else {}
        eid = src.get("event_id")
        loc = headers.get("location", "")
        if not eid and "/commands/" in loc:
            eid = loc.rsplit("/", 1)[1]
        row["event_id"] = eid
        if isinstance(err, dict):
            row["code"] = err.get("code")
            if "published" in err:
                row["published"] = err.get("published")
        if isinstance(doc, dict) and "published" in doc:
            row["published"] = doc.get("published")
        if isinstance(doc, dict):
            row["answer_status"] = src.get("status")
            if "number" in src:
                row["number"] = src.get("number")
        if raw:
            row["raw"] = raw
        self.ledger.add(row)
        return row

    def command(self, el, rng, etype, method, path, token, body, expect=None):
        """A client's whole effort for one command: a key on about half of them, retries of
        5xx and lost answers for up to RETRY_SECONDS, as a careful client would make them.
        Returns the last row."""
        key = "k-%s" % ulid(rng) if rng.random() < 0.5 else None
        wait = 5 if rng.random() < 0.3 else None
        give_up = time.monotonic() + RETRY_SECONDS
        for attempt in itertools.count():
            row = self.write(el, etype, method, path, token, body, key, wait, expect)
            s = row["status"]
            busy = s == 409 and row.get("code") == "idempotency_key_in_progress"
            if s in WRITE_OK or (400 <= s < 500 and not busy):
                return row
            if self.stop.is_set() or time.monotonic() > give_up:
                return row
            time.sleep(min(0.2 * (attempt + 1), 1.0))
            if key:
                continue            # the same key: the same event id, published at most once
            if row.get("event_id") and self.settle(row["event_id"], token):
                return row          # it was published after all: settled, not retried
            # No key and nothing known to be published: a new request, a new event id.

    def settle(self, event_id, token):
        """GET /commands/{id} until it has a verdict or says the id is unknown: True when the
        command turned out to be published (so a retry would duplicate it)."""
        for _ in range(20):
            s, doc, _, _ = self.request("GET", "/commands/" + event_id, token)
            if s == 200 and isinstance(doc, dict) and doc.get("status") in ("appended",
                                                                             "rejected"):
                return True
            if s == 404:
                return False        # unknown_command: never published
            time.sleep(0.25)
        return True                 # still pending: better not create a second one


# ---- the load: elections played by their owners and voters --------------------------------

VOTERS = 6


class Election:
    def __init__(self, n, client, users, seed):
        self.n, self.c, self.users = n, client, users
        self.rng = random.Random("%s/election/%d" % (seed, n))
        self.rlock = threading.Lock()
        self.id = self.ulid()
        self.owner = users["owners"][n % len(users["owners"])]

    def ulid(self):
        with self.rlock:
            return ulid(self.rng)

    def cmd(self, etype, method, path, token, body, expect=None):
        with self.rlock:
            sub = random.Random(self.rng.getrandbits(64))
        return self.c.command(self.id, sub, etype, method, "/elections/" + self.id + path,
                              token, body, expect)

    def play(self):
        o = self.owner[1]
        rng = self.rng
        p = ""
        if self.c.stop.is_set():
            return
        self.c.command(self.id, random.Random(rng.getrandbits(64)), "ElectionCreated", "POST",
                       "/elections", o, {"election_id": self.id,
                                         "name": "Chaos %d" % self.n,
                                         "description": "seeded election %d" % self.n})
        comps = []
        for ci in range(2):
            cid = self.ulid()
            self.cmd("CompetitionAdded", "POST", p + "/competitions", o,
                     {"competition_id": cid, "name": "Competition %d" % ci})
            kids = []
            for ki in range(3):
                kid = self.ulid()
                self.cmd("CandidateAdded", "POST", "/competitions/%s/candidates" % cid, o,
                         {"candidate_id": kid, "name": "Photo %d.%d" % (ci, ki),
                          "image_url": "https://example.org/%s.jpg" % kid.lower()})
                kids.append(kid)
            comps.append((cid, kids))
        self.cmd("ElectionNameChanged", "PUT", "/name", o, {"name": "Chaos %d (renamed)" % self.n})
        voters = []
        for vi in range(VOTERS):
            vid = self.ulid()
            email, tok = self.users["voters"][vi]
            self.cmd("VoterRegistered", "POST", "/voters", o,
                     {"voter_id": vid, "name": "Voter %d" % vi, "email": email})
            voters.append((vid, email, tok))
        # Rejected by the appender: an email registered twice; a ballot before the opening;
        # a stranger renaming the election.
        self.cmd("VoterRegistered", "POST", "/voters", o,
                 {"voter_id": self.ulid(), "name": "Twice", "email": voters[0][1]},
                 "email_already_registered")
        self.cmd("BallotCreated", "POST", "/ballots", voters[1][2],
                 {"ballot_id": self.ulid(), "voter_id": voters[1][0]}, "election_not_open")
        self.cmd("ElectionNameChanged", "PUT", "/name", self.users["intruder"][1],
                 {"name": "Taken over"}, "not_owner")
        self.cmd("ElectionOpened", "POST", "/open", o, {})
        self.cmd("CompetitionAdded", "POST", "/competitions", o,
                 {"competition_id": self.ulid(), "name": "Too late"}, "not_draft")
        # Ballots, rated and cast concurrently.
        threads = [threading.Thread(target=self.vote, args=(v, comps, i))
                   for i, v in enumerate(voters)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.cmd("ElectionClosed", "POST", "/close", o, {})
        self.cmd("BallotCreated", "POST", "/ballots", voters[-1][2],
                 {"ballot_id": self.ulid(), "voter_id": voters[-1][0]}, "election_closed")
        if self.n % 5 == 4:
            self.cmd("ElectionDeleted", "DELETE", "", o, None)

    def vote(self, voter, comps, i):
        vid, email, tok = voter
        with self.rlock:
            rng = random.Random(self.rng.getrandbits(64))
            bid = ulid(self.rng)
        self.cmd("BallotCreated", "POST", "/ballots", tok, {"ballot_id": bid, "voter_id": vid})
        if i == 0:
            # Cast with no rating: refused.  Then a second ballot: already voted.
            self.cmd("BallotCast", "POST", "/ballots/%s/cast" % bid, tok, {}, "ballot_empty")
            with self.rlock:
                other = ulid(self.rng)
            self.cmd("BallotCreated", "POST", "/ballots", tok,
                     {"ballot_id": other, "voter_id": vid}, "already_voted")
        cid, kids = comps[rng.randrange(len(comps))]
        for kid in rng.sample(kids, rng.randint(1, len(kids))):
            self.cmd("BallotCandidateRated", "PUT", "/ballots/%s/ratings/%s" % (bid, kid), tok,
                     {"competition_id": cid, "rating": rng.randint(1, 5)})
        if i == 1:
            # Someone else rating this voter's ballot; a candidate of the other competition.
            ocid, okids = comps[1 - comps.index((cid, kids))]
            self.cmd("BallotCandidateRated", "PUT", "/ballots/%s/ratings/%s" % (bid, kids[0]),
                     self.users["intruder"][1], {"competition_id": cid, "rating": 3},
                     "not_voter")
            self.cmd("BallotCandidateRated", "PUT", "/ballots/%s/ratings/%s" % (bid, okids[0]),
                     tok, {"competition_id": cid, "rating": 3}, "candidate_not_found")
        if i != 5:
            self.cmd("BallotCast", "POST", "/ballots/%s/cast" % bid, tok, {})
        if i == 2:
            self.cmd("BallotCast", "POST", "/ballots/%s/cast" % bid, tok, {}, "ballot_cast")


def run_load(client, users, seed, done, concurrent):
    """Elections started one after another so that `concurrent` run at any time, until
    done() says so; returns the elections."""
    elections = []
    threads = []
    n = 0
    while not done():
        threads = [t for t in threads if t.is_alive()]
        if len(threads) < concurrent:
            e = Election(n, client, users, seed)
            elections.append(e)
            t = threading.Thread(target=e.play, name="election-%d" % n)
            t.start()
            threads.append(t)
            n += 1
        time.sleep(0.05)
    client.stop.set()
    for t in threads:
        t.join(120)
    return elections


# ---- faults --------------------------------------------------------------------------------

PROGRAM_FAULTS = ["kill_fcgi", "kill_appender1", "kill_appender2", "kill_projector"]
SERVER_FAULTS = ["restart_rabbitmq", "kill_rabbitmq", "stop_postgres", "immediate_postgres",
                 "restart_cosmos"]


STORE_FAULTS = {"postgres": [], "esdb": ["restart_esdb"],
                "kurrentdb": ["kill_kurrentdb", "restart_kurrentdb"]}


def fault_kinds(backend):
    """The backend's fault kinds, or those of --kinds (to hunt one kind's trouble)."""
    kinds = PROGRAM_FAULTS + SERVER_FAULTS + STORE_FAULTS[backend]
    if not ARGS.kinds:
        return kinds
    asked = ARGS.kinds.split(",")
    unknown = [k for k in asked if k not in kinds]
    if unknown:
        raise SystemExit("chaos.py: --kinds: not a fault kind of backend %s: %s (kinds: %s)"
                         % (backend, ", ".join(unknown), ", ".join(kinds)))
    return asked


def schedule(seed, backend, count):
    """The seeded fault schedule: every kind once in a shuffled first round, then random
    kinds; each with the gap before it and the time the server stays down."""
    rng = random.Random("%s/faults" % seed)
    kinds = fault_kinds(backend)
    first = list(kinds)
    rng.shuffle(first)
    out = []
    for i in range(count):
        kind = first[i] if i < len(first) else rng.choice(kinds)
        out.append({"kind": kind, "gap": round(rng.uniform(ARGS.gap_min, ARGS.gap_max), 2),
                    "down": round(rng.uniform(0.5, 3.0), 2), "which": rng.randint(1, 2)})
    return out


class Faults:
    def __init__(self, stack, ledger):
        self.stack, self.ledger = stack, ledger
        self.done = []
        self.stop = threading.Event()
        self.finished = threading.Event()
        self.failures = []

    def program(self, name, down=RESTART_DELAY):
        """kill -9, and a start again after `down` seconds."""
        p = self.stack.procs[name]
        with p.lock:
            p.held = True
            p.kill9()
        time.sleep(down)
        with p.lock:
            p.start()
            p.held = False

    def server(self, steps):
        for verb, server, pause in steps:
            rc = self.stack.ctl(verb, server)
            # A start that failed is tried again, as an operator would (on a machine under
            # heavy load `rabbitmqctl await_startup` has crashed while the node booted).
            tries = 1
            while rc != 0 and verb == "start" and tries < 3:
                note("%.1fs: %s %s failed (status %d, see servers.log); again"
                     % (now(), verb, server, rc))
                tries += 1
                rc = self.stack.ctl(verb, server)
            if rc != 0:
                self.failures.append("%s %s: status %d" % (verb, server, rc))
                if verb != "start":
                    # Try to bring it back regardless.
                    self.stack.ctl("start", server)
            if pause:
                time.sleep(pause)

    def cosmos(self, down):
        self.server([("stop", "cosmos", down), ("start", "cosmos", 0)])
        # The operator: the container came back empty; rebuild the read model by replay.
        for _ in range(30):
            r = self.stack.run([self.stack.bin["admin"], "-c", self.stack.conf, "rebuild",
                                "--all"], timeout=600)
            if r.returncode == 0:
                return r.stdout.strip().splitlines()[-1:]
            time.sleep(1)
        self.failures.append("photovote-admin rebuild --all after the Cosmos DB restart "
                             "failed: %s" % r.stderr.strip()[-300:])
        return None

    def inject(self, f):
        kind, down = f["kind"], f["down"]
        if kind == "kill_fcgi":
            self.program("fcgi%d" % f["which"])
        elif kind.startswith("kill_appender"):
            self.program("appender" + kind[-1])
        elif kind == "kill_projector":
            self.program("projector")
        elif kind == "restart_rabbitmq":
            self.server([("stop", "rabbitmq", 0), ("start", "rabbitmq", 0)])
        elif kind == "kill_rabbitmq":
            self.server([("kill", "rabbitmq", RESTART_DELAY), ("start", "rabbitmq", 0)])
        elif kind == "stop_postgres":
            self.server([("stop", "postgres", down), ("start", "postgres", 0)])
        elif kind == "immediate_postgres":
            self.server([("immediate", "postgres", down), ("start", "postgres", 0)])
        elif kind == "restart_cosmos":
            f["rebuild"] = self.cosmos(down)
        elif kind == "restart_esdb":
            # kill -9: its journal is flushed before each answer, so nothing it
            # confirmed may be lost; down for a while, then started again on its data.
            self.program("esdb", down)
        elif kind == "kill_kurrentdb":
            # The same for the KurrentDB stand-in (its journal is written before each answer
            # too); the fault's steps end when it accepts connections again.
            self.program("kurrentdb", down)
            self.kdb_ready()
        elif kind == "restart_kurrentdb":
            # An orderly restart: SIGTERM (it lets the calls in progress end, a second at
            # most), down for a while, started again.
            p = self.stack.procs["kurrentdb"]
            with p.lock:
                p.held = True
                rc = p.stop()
            if rc != 0:
                self.failures.append("the KurrentDB stand-in stopped with status %s" % rc)
            time.sleep(down)
            with p.lock:
                p.start()
                p.held = False
            self.kdb_ready()

    def kdb_ready(self):
        try:
            self.stack.kdb_wait()
        except RuntimeError as e:
            self.failures.append(str(e))

    def recovered(self, f):
        """The end of the outage the fault caused as clients saw it: when the first write
        answered 2xx among those sent after the first failed write (5xx or no answer) that
        followed the fault; the fault's start when no write failed until a second after its
        steps ended; None while unknown.  Also counts the failed writes."""
        failed = lambda r: r["status"] == 0 or r["status"] >= 500
        with self.ledger.lock:
            rows = [r for r in self.ledger.rows[-4000:] if r["t"] >= f["t"]]
        fails = [r["t"] for r in rows if failed(r)]
        if not fails:
            if now() > f["back"] + 1:
                f["failed_writes"] = 0
                return f["t"]
            return None
        ok = [r["t"] + r["dt"] for r in rows if r["t"] >= fails[0] and r["status"] in WRITE_OK]
        if not ok:
            return None
        f["failed_writes"] = sum(1 for r in rows if failed(r) and r["t"] < min(ok))
        return min(ok)

    def run(self, plan, until, kinds, min_faults):
        """Faults from the plan until `until` (seconds since the start) has passed, every kind
        was injected and at least min_faults were; then sets finished."""
        try:
            self._run(plan, until, kinds, min_faults)
        finally:
            self.finished.set()

    def _run(self, plan, until, kinds, min_faults):
        for f in plan:
            seen = {d["kind"] for d in self.done}
            if now() >= until and seen >= kinds and len(self.done) >= min_faults:
                break
            if self.stop.wait(f["gap"]):
                break
            f["t"] = now()
            f["wall"] = time.time()
            note("%.1fs: fault %d: %s" % (f["t"], len(self.done) + 1, f["kind"]))
            self.inject(f)
            f["back"] = now()
            self.done.append(f)
            # The next fault waits for the first write after this one (at most 60 s), so
            # that each recovery is measured on its own.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not self.stop.is_set():
                ok = self.recovered(f)
                if ok is not None:
                    f["first_write"] = ok
                    break
                time.sleep(0.1)


# ---- reading the results -------------------------------------------------------------------

def psql(conninfo, sql):
    r = subprocess.run(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-F", "\t", conninfo,
                        "-c", sql], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError("psql: %s" % r.stderr.strip())
    return [line.split("\t") for line in r.stdout.splitlines()]


def read_audit(conninfo):
    rows = psql(conninfo, "SELECT event_id, status, coalesce(stream, ''), coalesce(number, -1), "
                "coalesce(type, ''), coalesce(kind, ''), coalesce(rule, ''), "
                "coalesce(reason, ''), extract(epoch FROM accepted), "
                "extract(epoch FROM recorded) FROM audit_log")
    out = {}
    for r in rows:
        out[r[0]] = {"status": r[1], "stream": r[2], "number": int(r[3]), "type": r[4],
                     "kind": r[5], "rule": r[6], "reason": r[7],
                     "accepted": float(r[8]) if r[8] else None, "recorded": float(r[9])}
    return out


def read_streams_pg(conninfo):
    rows = psql(conninfo, "SELECT stream, number, id, type, data, coalesce(metadata::text, "
                "'{}') FROM es_events WHERE category = 'Election' ORDER BY stream, number")
    streams = collections.defaultdict(list)
    for s, n, i, t, d, m in rows:
        streams[s].append({"number": int(n), "id": i, "type": t, "data": json.loads(d),
                           "metadata": json.loads(m)})
    return streams


def read_streams_esdb(port):
    auth = "Basic " + base64.b64encode(b"admin:changeit").decode()

    def get(path):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", path, headers={"Authorization": auth,
                                        "Accept": "application/vnd.eventstore.atom+json"})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, json.loads(body) if r.status == 200 else None

    names = []
    start = 0
    while True:
        s, feed = get("/streams/$streams/%d/forward/500?embed=body" % start)
        if s != 200 or not feed["entries"]:
            break
        for e in feed["entries"]:
            target = e.get("title", "").split("@", 1)[-1] if "@" in e.get("title", "") else None
            names.append(e.get("streamId") if e.get("streamId", "").startswith("Election-")
                         else target)
        start += len(feed["entries"])
        if len(feed["entries"]) < 500:
            break
    streams = collections.defaultdict(list)
    for name in sorted(set(n for n in names if n and n.startswith("Election-"))):
        start = 0
        while True:
            s, feed = get("/streams/%s/%d/forward/500?embed=body"
                          % (urllib.parse.quote(name), start))
            if s != 200:
                break
            for e in feed["entries"]:
                streams[name].append({"number": e["eventNumber"], "id": e["eventId"],
                                      "type": e["eventType"], "data": json.loads(e["data"]),
                                      "metadata": json.loads(e.get("metaData") or "{}")})
            start += len(feed["entries"])
            if len(feed["entries"]) < 500:
                break
        streams[name].sort(key=lambda ev: ev["number"])
    return streams


def read_streams_kurrentdb(url):
    """The Election- streams of the KurrentDB stand-in, read with the official Node client
    (tests/kurrentdb/dump-streams.js), not with the backend under test."""
    r = subprocess.run(["node", os.path.join(ARGS.srcdir, "tests/kurrentdb/dump-streams.js"),
                        url, "Election-"], cwd=os.environ["PV_KDB_DIR"], capture_output=True,
                       text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError("dump-streams.js: %s" % r.stderr.strip()[-1000:])
    streams = collections.defaultdict(list)
    for line in r.stdout.splitlines():
        e = json.loads(line)
        streams[e["stream"]].append({"number": int(e["number"]), "id": e["id"],
                                     "type": e["type"], "data": e["data"],
                                     "metadata": e["metadata"] or {}})
    return streams


# ---- the independent replay: domain.md's invariants ---------------------------------------

def rfc3339(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def replay(events):
    """Folds one stream with domain.md's rules; returns the list of broken rules."""
    broken = []
    st = None
    for ev in events:
        d, m, t = ev["data"], ev["metadata"], ev["type"]
        user, admin = m.get("user"), bool(m.get("admin"))

        def bad(why):
            broken.append("event %d (%s): %s" % (ev["number"], t, why))

        if t == "ElectionCreated":
            if ev["number"] != 0 or st is not None:
                bad("ElectionCreated on a stream that is not empty")
            st = {"owner": user, "status": "draft", "deleted": False, "comps": {}, "ids": set(),
                  "voters": {}, "emails": set(), "ballots": {}, "voted": set(), "opened": None}
            continue
        if st is None:
            bad("no ElectionCreated before it")
            continue
        if st["deleted"]:
            bad("after ElectionDeleted")
            continue
        ballot_event = t.startswith("Ballot")
        if not ballot_event and not admin and user != st["owner"]:
            bad("made by %s, not the owner %s" % (user, st["owner"]))
        if st["status"] == "closed" and t != "ElectionDeleted":
            bad("after the election closed")
        if t in ("CompetitionAdded", "CompetitionRemoved", "CandidateAdded",
                 "CandidateRemoved") and st["status"] != "draft":
            bad("not a draft")
        if "name" in d and not (1 <= len(d["name"] or "") <= 200):
            bad("name empty or over 200 characters")
        if t == "ElectionOpened":
            if st["status"] != "draft":
                bad("opened twice")
            st["status"] = "open"
            st["opened"] = d.get("open_date")
        elif t == "ElectionClosed":
            if st["status"] != "open":
                bad("closed while %s" % st["status"])
            elif st["opened"] and rfc3339(d["close_date"]) < rfc3339(st["opened"]):
                bad("closed before it opened")
            st["status"] = "closed"
        elif t == "ElectionDeleted":
            st["deleted"] = True
        elif t == "CompetitionAdded":
            if d["competition_id"] in st["ids"]:
                bad("duplicate id")
            st["ids"].add(d["competition_id"])
            st["comps"][d["competition_id"]] = set()
        elif t == "CompetitionRemoved":
            if d["competition_id"] not in st["comps"]:
                bad("unknown competition")
            st["comps"].pop(d["competition_id"], None)
        elif t == "CandidateAdded":
            if d["competition_id"] not in st["comps"]:
                bad("unknown competition")
            elif d["candidate_id"] in st["ids"]:
                bad("duplicate id")
            else:
                st["comps"][d["competition_id"]].add(d["candidate_id"])
            st["ids"].add(d["candidate_id"])
            url = d.get("image_url")
            if url is not None and not url.startswith(("http://", "https://")):
                bad("image_url not http(s)")
        elif t == "VoterRegistered":
            email = d["email"].lower()
            if email in st["emails"]:
                bad("email registered twice")
            if d["voter_id"] in st["voters"]:
                bad("duplicate voter id")
            st["emails"].add(email)
            st["voters"][d["voter_id"]] = email
        elif ballot_event:
            if st["status"] != "open":
                bad("ballot event while %s" % st["status"])
            if t == "BallotCreated":
                voter = st["voters"].get(d["voter_id"])
                if voter is None:
                    bad("unknown voter")
                elif d["voter_id"] in st["voted"]:
                    bad("second ballot of the voter")
                if d["ballot_id"] in st["ballots"]:
                    bad("duplicate ballot id")
                st["voted"].add(d["voter_id"])
                st["ballots"][d["ballot_id"]] = {"voter": voter, "ratings": {}, "cast": False}
                owner_of = voter
            else:
                b = st["ballots"].get(d["ballot_id"])
                if b is None:
                    bad("unknown ballot")
                    continue
                owner_of = b["voter"]
                if b["cast"]:
                    bad("ballot already cast")
                if t == "BallotCandidateRated":
                    comp = st["comps"].get(d["competition_id"])
                    if comp is None or d["candidate_id"] not in comp:
                        bad("candidate not in that competition")
                    r = d.get("rating")
                    if r is not None and not (isinstance(r, int) and 1 <= r <= 5):
                        bad("rating %r" % (r,))
                    if r is None:
                        b["ratings"].pop(d["candidate_id"], None)
                    else:
                        b["ratings"][d["candidate_id"]] = r
                elif t == "BallotCast":
                    if not b["ratings"]:
                        bad("cast without a rating")
                    b["cast"] = True
            if not admin and (user or "").lower() != (owner_of or ""):
                bad("ballot event by %s, not the voter %s" % (user, owner_of))
    return broken


# ---- the checks ----------------------------------------------------------------------------

class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, good, name, detail=()):
        self.n += 1
        with PRINT_LOCK:
            print("%s %d - %s" % ("ok" if good else "not ok", self.n, name), flush=True)
            for line in list(detail)[:15]:
                print("#   " + str(line), flush=True)
        if not good:
            self.failed += 1

    def skip(self, name, why):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, name, why), flush=True)


def drain(stack, ledger, seconds):
    """Waits until every command answered 2xx has a verdict and the appenders' queues are
    empty; returns the audit log."""
    want = {r["event_id"] for r in ledger.rows if r["status"] in WRITE_OK and r.get("event_id")}
    deadline = time.monotonic() + seconds
    while True:
        audit = read_audit(stack.conninfo)
        missing = want - audit.keys()
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(1)
    # Commands whose answer was lost may still be queued: let the queues run dry.
    settle = time.monotonic() + 5
    last = len(audit)
    while time.monotonic() < settle:
        time.sleep(1)
        audit = read_audit(stack.conninfo)
        if len(audit) != last:
            last = len(audit)
            settle = time.monotonic() + 5
    return audit


def wait_projection(stack, streams, seconds):
    """Until every live election's document carries its stream's last number."""
    ptool = stack.bin["ptool"]
    deadline = time.monotonic() + seconds
    pending = {}
    while time.monotonic() < deadline:
        pending = {}
        for name, evs in streams.items():
            eid = name[len("Election-"):]
            deleted = any(e["type"] == "ElectionDeleted" for e in evs)
            r = stack.run([ptool, "view", eid, "full"], timeout=60)
            if deleted:
                if r.returncode == 0 and r.stdout.strip():
                    pending[eid] = "a document of a deleted election"
                continue
            try:
                version = json.loads(r.stdout).get("version")
            except ValueError:
                version = None
            if version != evs[-1]["number"]:
                pending[eid] = "version %s, stream at %d" % (version, evs[-1]["number"])
        if not pending:
            return {}
        time.sleep(1)
    return pending


def docs(stack, ids, database):
    out = {}
    for eid in ids:
        r = stack.run([stack.bin["ptool"], "docs", eid], {"PHOTOVOTE_COSMOS_DATABASE": database},
                      timeout=60)
        out[eid] = r.stdout if r.returncode == 0 else "error: " + r.stderr.strip()
    return out


def check(tap, stack, ledger, client, admin_token):
    rows = ledger.rows
    note("drain: waiting for every accepted command's verdict")
    audit = drain(stack, ledger, 180)
    if stack.backend == "postgres":
        streams = read_streams_pg(stack.conninfo)
    elif stack.backend == "kurrentdb":
        streams = read_streams_kurrentdb(stack.kdb_url)
    else:
        streams = read_streams_esdb(stack.esdb_port)
    in_store = collections.Counter(ev["id"] for evs in streams.values() for ev in evs)
    where = {ev["id"]: (name, ev) for name, evs in streams.items() for ev in evs}

    # -- the ledger against the store and the audit log
    accepted = {}
    maybe = {}
    rejected_now = {}
    for r in rows:
        eid = r.get("event_id")
        if not eid:
            continue
        if r["status"] in WRITE_OK:
            accepted[eid] = r
        elif r["status"] in REJECT_STATUS and r.get("code") not in (
                "idempotency_key_reused", "idempotency_key_in_progress"):
            rejected_now[eid] = r
        elif r["status"] >= 500 or r["status"] == 0:
            maybe[eid] = r
    lost, dup, noreason, wrongverdict = [], [], [], []
    for eid, r in accepted.items():
        a = audit.get(eid)
        if a is None:
            lost.append("%s %s %s answered %d: no verdict" % (eid, r["method"], r["path"],
                                                             r["status"]))
        elif a["status"] == "appended":
            if in_store[eid] != 1:
                (dup if in_store[eid] > 1 else lost).append(
                    "%s (%s) is %d times in the store" % (eid, r["type"], in_store[eid]))
        elif not a["rule"] or not a["reason"]:
            noreason.append("%s rejected without a rule and reason" % eid)
        elif eid in in_store:
            dup.append("%s rejected but in the store" % eid)
        if r["status"] in (200, 201) and (a is None or a["status"] != "appended"):
            wrongverdict.append("%s answered %d but is %s" % (eid, r["status"],
                                                              a and a["status"]))
    for eid, r in rejected_now.items():
        a = audit.get(eid)
        if a is None or a["status"] != "rejected" or a["rule"] != r.get("code") or \
                eid in in_store:
            wrongverdict.append("%s answered %d %s; audit %s" % (
                eid, r["status"], r.get("code"), a and (a["status"], a["rule"])))
    maybe_twice = [eid for eid in maybe if in_store[eid] > 1]
    # A 5xx that says the event was not published (published: false) must not be stored,
    # unless another attempt with the same key got it through.
    maybe_twice += ["%s answered %d published=false, yet stored" % (eid, r["status"])
                    for eid, r in maybe.items() if r.get("published") is False and
                    in_store[eid] and eid not in accepted]
    maybe_in = sum(1 for eid in maybe if in_store[eid] == 1)
    n_acc = len(accepted)
    n_app = sum(1 for e in accepted if audit.get(e, {}).get("status") == "appended")
    note("ledger: %d write attempts, %d event ids answered 2xx (%d appended, %d rejected), "
         "%d answered 409/422/403 after waiting, %d 5xx/lost answers naming an event id "
         "(%d of them in the store)" % (len(rows), n_acc, n_app, n_acc - n_app,
                                        len(rejected_now), len(maybe), maybe_in))
    tap.ok(not lost, "lost 0: every command answered 2xx has its verdict (%d lost)" % len(lost),
           lost)
    tap.ok(not dup and not maybe_twice,
           "duplicated 0: each is in the store once at most (%d duplicated)"
           % (len(dup) + len(maybe_twice)), dup + maybe_twice)
    tap.ok(not noreason, "every rejection in the audit log has a rule and a reason", noreason)
    tap.ok(not wrongverdict, "answers after Prefer: wait agree with the audit log",
           wrongverdict)

    # -- nothing extra: events the ledger cannot name, per election and type
    known = {r["event_id"] for r in rows if r.get("event_id")}
    unknown_fate = collections.Counter((r["election"], r["type"]) for r in rows
                                       if not r.get("event_id") and
                                       (r["status"] >= 500 or r["status"] == 0))
    unnamed = collections.Counter()
    for name, evs in streams.items():
        for ev in evs:
            if ev["id"] not in known:
                unnamed[(name[len("Election-"):], ev["type"])] += 1
    extra = ["%s %s: %d events no answer named, %d writes of unknown fate"
             % (k[0], k[1], c, unknown_fate[k]) for k, c in unnamed.items()
             if c > unknown_fate[k]]
    note("writes answered 5xx or lost without an event id: %d; of them applied anyway: %d"
         % (sum(unknown_fate.values()), sum(unnamed.values())))
    tap.ok(not extra, "nothing extra: per election and type, unnamed events <= writes of "
           "unknown fate", extra)

    # -- the audit log against the streams
    disagree = []
    for name, evs in streams.items():
        numbers = [ev["number"] for ev in evs]
        if numbers != list(range(len(evs))):
            disagree.append("%s: numbers %s..." % (name, numbers[:10]))
        for ev in evs:
            a = audit.get(ev["id"])
            if a is None or a["status"] != "appended" or a["stream"] != name or \
                    a["number"] != ev["number"] or a["type"] != ev["type"]:
                disagree.append("%s #%d %s %s: audit %s" % (name, ev["number"], ev["id"],
                                                             ev["type"], a))
    for eid, a in audit.items():
        if a["status"] == "appended" and (eid not in where or where[eid][0] != a["stream"]):
            disagree.append("audit %s appended to %s #%d, not in that stream"
                            % (eid, a["stream"], a["number"]))
    tap.ok(not disagree, "every audit row agrees with its stream (%d streams, %d events, "
           "%d audit rows)" % (len(streams), sum(in_store.values()), len(audit)), disagree)

    # -- independent replay
    broken = []
    for name, evs in sorted(streams.items()):
        broken += ["%s %s" % (name, b) for b in replay(evs)]
    rules = collections.Counter(a["rule"] for a in audit.values() if a["status"] == "rejected")
    note("rejections by rule: %s" % ", ".join("%s %d" % kv for kv in sorted(rules.items())))
    tap.ok(not broken, "independent replay: no stream breaks an invariant of domain.md",
           broken)
    # A command meant to be refused may meet another state when an earlier one of its
    # election never got through; but each rule tried must refuse at least one of them.
    tried = collections.defaultdict(list)
    for r in rows:
        a = audit.get(r.get("event_id"))
        if r.get("expect") and a is not None:
            tried[r["expect"]].append(a["rule"] if a["status"] == "rejected" else "appended")
    unmet = ["%s: verdicts %s" % (rule, dict(collections.Counter(v)))
             for rule, v in sorted(tried.items()) if rule not in v]
    tap.ok(tried and not unmet, "the commands meant to be refused were refused by their rule "
           "(%d rules tried: %s)" % (len(tried), " ".join(sorted(tried))), unmet)

    # -- GET /commands/{id} against the audit log
    mism = []
    answers = collections.Counter()
    for eid in sorted(known):
        s, doc, _, _ = client.request("GET", "/commands/" + eid, admin_token)
        a = audit.get(eid)
        st = doc.get("status") if isinstance(doc, dict) else None
        code = (doc.get("error") or {}).get("code") if isinstance(doc, dict) and \
            isinstance(doc.get("error"), dict) else None
        answers["%d %s" % (s, st or code)] += 1
        if a is None:
            # No verdict: in flight ("pending"), sent without a confirm and never judged
            # ("unconfirmed", docs/faults.md), or never published ("unknown_command").
            good = (s == 200 and st in ("pending", "unconfirmed")) or \
                (s == 404 and code == "unknown_command")
        elif a["status"] == "appended":
            good = s == 200 and st == "appended" and doc.get("number") == a["number"] and \
                doc.get("stream") == a["stream"]
        else:
            good = s == 200 and st == "rejected" and doc.get("rule") == a["rule"]
        if not good:
            mism.append("%s: %d %s; audit %s" % (eid, s, json.dumps(doc)[:160],
                                                a and (a["status"], a["rule"])))
    note("GET /commands/{id}: %s" % ", ".join("%s: %d" % kv for kv in sorted(answers.items())))
    tap.ok(not mism, "every GET /commands/{id} (%d) agrees with the audit log" % len(known), mism)

    # -- projection
    note("projection: waiting for the projector to catch up")
    behind = wait_projection(stack, streams, 180)
    tap.ok(not behind, "the projector caught up with every stream",
           ["%s: %s" % kv for kv in behind.items()])
    ids = [n[len("Election-"):] for n in sorted(streams)]
    live = docs(stack, ids, "chaos")
    r = stack.run([stack.bin["admin"], "-c", stack.conf, "rebuild", "--all"],
                  {"PHOTOVOTE_COSMOS_DATABASE": "chaos-rebuild"}, timeout=900)
    rebuilt = docs(stack, ids, "chaos-rebuild")
    differ = [eid for eid in ids if live[eid] != rebuilt[eid]]
    tap.ok(r.returncode == 0 and not differ,
           "the projection equals photovote-admin rebuild --all into another database "
           "(%d elections)" % len(ids),
           ([r.stderr.strip()[-300:]] if r.returncode else []) +
           ["%s differs: live %s / rebuilt %s" % (e, live[e][:120], rebuilt[e][:120])
            for e in differ])
    unfold = []
    for name, evs in sorted(streams.items()):
        eid = name[len("Election-"):]
        if any(e["type"] == "ElectionDeleted" for e in evs):
            continue
        for view in ("full", "results"):
            want = stack.run([stack.bin["ptool"], "fold", eid, view])
            got = stack.run([stack.bin["ptool"], "view", eid, view])
            if want.returncode or got.returncode or want.stdout != got.stdout:
                unfold.append("%s %s: fold %s / documents %s" % (eid, view, want.stdout[:100],
                                                                 got.stdout[:100]))
    tap.ok(not unfold, "the documents equal the domain fold of each stream (views full and "
           "results)", unfold)
    return audit


def recovery(faults, audit):
    """Per fault kind: the writes that failed; seconds from the fault until writes were
    answered 2xx again (Faults.recovered); how long the fault's own steps took (kill and
    start, stop, down time and start, with a server's boot); and the longest a command
    accepted during the fault (or in the 5 s after its steps) waited for its verdict."""
    by = collections.defaultdict(list)
    for f in faults.done:
        first = f.get("first_write")
        start, end = f["wall"], f["wall"] + (f["back"] - f["t"]) + 5
        waits = [a["recorded"] - a["accepted"] for a in audit.values()
                 if a["accepted"] is not None and start <= a["accepted"] <= end]
        by[f["kind"]].append((f.get("failed_writes"),
                              first - f["t"] if first is not None else None,
                              f["back"] - f["t"], max(waits) if waits else None))

    def mm(xs, form="%.2f"):
        xs = sorted(x for x in xs if x is not None)
        if not xs:
            return "-"
        return (form + " / " + form) % (xs[len(xs) // 2], xs[-1])

    fmt = "%-19s %5s %13s %15s %15s %15s"
    lines = [fmt % ("fault", "count", "failed writes", "writes back s", "fault steps s",
                    "verdict wait s"),
             fmt % ("", "", "median / max", "median / max", "median / max", "median / max")]
    for kind in sorted(by):
        v = by[kind]
        lines.append(fmt % (kind, len(v), mm([x[0] for x in v], "%d"),
                            *(mm([x[i] for x in v]) for i in (1, 2, 3))))
    return lines, by


def outages(log, rows):
    """For --check-running: per fault kind, from the driver's output (LOG) and the ledger,
    the writes that failed and the seconds until writes were answered 2xx again (as in
    Faults.recovered, each fault's window ending at the next fault)."""
    faults = []
    with open(log) as f:
        for line in f:
            w = line.split()
            if len(w) == 5 and w[2] == "fault" and w[1].endswith("s:"):
                faults.append((float(w[1][:-2]), w[4]))
    rows = sorted(rows, key=lambda r: r["t"])
    by = collections.defaultdict(list)
    for i, (t, kind) in enumerate(faults):
        end = faults[i + 1][0] if i + 1 < len(faults) else float("inf")
        win = [r for r in rows if t <= r["t"] < end]
        failed = [r for r in win if r["status"] == 0 or r["status"] >= 500]
        ok = [r["t"] + r["dt"] for r in win
              if failed and r["t"] >= failed[0]["t"] and r["status"] in WRITE_OK]
        back = min(ok) - t if ok else (0.0 if not failed else None)
        by[kind].append((sum(1 for r in failed if not ok or r["t"] < min(ok)), back))
    fmt = "%-19s %5s %13s %15s"
    lines = [fmt % ("fault", "count", "failed writes", "writes back s"),
             fmt % ("", "", "median / max", "median / max")]
    for kind in sorted(by):
        fails = sorted(x[0] for x in by[kind])
        back = sorted(x[1] for x in by[kind] if x[1] is not None)
        lines.append(fmt % (kind, len(by[kind]), "%d / %d" % (fails[len(fails) // 2], fails[-1]),
                            "%.2f / %.2f" % (back[len(back) // 2], back[-1]) if back else "-"))
    return len(faults), lines


def check_running():
    """--check-running: the checks against a stack a driver left running (stopped with
    SIGSTOP, e.g. a long run that cannot finish in time): servers from PV_TEST_* variables,
    lighttpd on --http-port, the event-store stand-in on --store-port, the ledger of --work."""
    stack = Stack(ARGS.work, ARGS.backend, None)
    stack.http_port = ARGS.http_port
    if ARGS.store_port:
        stack.esdb_port = stack.kdb_port = ARGS.store_port
        stack.kdb_url = "kurrentdb://127.0.0.1:%d?tls=false" % ARGS.store_port
        stack.env["PHOTOVOTE_EVENTSTORE_URL"] = (stack.kdb_url if ARGS.backend == "kurrentdb"
                                                 else "http://127.0.0.1:%d" % ARGS.store_port)
    ledger = Ledger(os.path.join(ARGS.work, "ledger.jsonl"), existing=True)
    tap = Tap()
    note("checking the stack of %s: %d write attempts in its ledger"
         % (ARGS.work, len(ledger.rows)))
    client = Client(stack.http_port, ledger, None)
    check(tap, stack, ledger, client, stack.token("checker@chaos.test", True))
    if ARGS.faults_log:
        n, lines = outages(ARGS.faults_log, ledger.rows)
        note("%d faults; writes failed and back after each (from the ledger):" % n)
        for line in lines:
            note("  " + line)
    print("1..%d" % tap.n, flush=True)
    return 1 if tap.failed else 0


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", required=True)
    p.add_argument("--backend", choices=sorted(STORE_FAULTS), default="postgres")
    p.add_argument("--duration", type=float, default=90,
                   help="seconds of load at least (it goes on until every kind of fault was "
                   "injected and --min-faults were)")
    p.add_argument("--rate", type=float, default=20, help="write attempts a second")
    p.add_argument("--seed", default=None)
    p.add_argument("--concurrent", type=int, default=12, help="elections played at once")
    p.add_argument("--gap-min", type=float, default=1.0)
    p.add_argument("--gap-max", type=float, default=3.0)
    p.add_argument("--kinds", help="only these fault kinds (comma-separated; default: every "
                   "kind of the backend)")
    p.add_argument("--min-faults", type=int, default=0,
                   help="fail unless at least this many faults were injected")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--srcdir", default=os.environ.get("top_srcdir", "."))
    p.add_argument("--builddir", default=os.environ.get("top_builddir", "_build"))
    p.add_argument("--check-running", action="store_true",
                   help="only the checks, against a stack a stopped driver left running")
    p.add_argument("--http-port", type=int, help="with --check-running: lighttpd's port")
    p.add_argument("--faults-log", help="with --check-running: the stopped driver's output")
    p.add_argument("--store-port", type=int,
                   help="with --check-running: the esdb or kurrentdb stand-in's port")
    ARGS = p.parse_args()
    if ARGS.check_running:
        return check_running()
    ctl = Ctl(ARGS.work)
    seed = ARGS.seed if ARGS.seed is not None else str(random.SystemRandom().randrange(10**6))
    note("seed %s (again: --seed %s), backend %s, %gs of load at %g writes/s, %d elections "
         "at once" % (seed, seed, ARGS.backend, ARGS.duration, ARGS.rate, ARGS.concurrent))
    plan = schedule(seed, ARGS.backend, 1000)
    note("fault schedule: " + ", ".join("%s(+%gs)" % (f["kind"], f["gap"]) for f in plan[:14])
         + ", ...")
    stack = Stack(ARGS.work, ARGS.backend, ctl)
    tap = Tap()
    stop = threading.Event()
    try:
        stack.start()
        sup = threading.Thread(target=stack.supervise, args=(stop,), daemon=True)
        sup.start()
        admin = stack.token("admin@chaos.test", True)
        users = {"owners": [(u, stack.token(u)) for u in
                            ("owner1@chaos.test", "owner2@chaos.test")],
                 "voters": [(u, stack.token(u)) for u in
                            ("voter%d@chaos.test" % i for i in range(VOTERS))],
                 "intruder": ("intruder@chaos.test", stack.token("intruder@chaos.test"))}
        ledger = Ledger(os.path.join(ARGS.work, "ledger.jsonl"))
        client = Client(stack.http_port, ledger, Pacer(ARGS.rate))
        faults = Faults(stack, ledger)
        load_end = now() + ARGS.duration
        kinds = set(fault_kinds(ARGS.backend))
        ft = threading.Thread(target=faults.run, args=(plan, load_end - 3, kinds,
                                                       ARGS.min_faults), daemon=True)
        ft.start()
        t_load = now()
        # The load goes on until the faults are done: every kind at least once (and
        # --min-faults), each with the first write after it; bounded all the same.
        hard_end = load_end + max(600, 4 * ARGS.duration) + 20 * ARGS.min_faults
        elections = run_load(client, users, seed,
                             lambda: (now() >= load_end and faults.finished.is_set()) or
                             now() >= hard_end, ARGS.concurrent)
        faults.stop.set()
        ft.join(300)
        took = now() - t_load
        codes = collections.Counter(r["status"] for r in ledger.rows)
        note("load: %d elections, %d write attempts in %.0fs (%.1f/s); answers %s"
             % (len(elections), len(ledger.rows), took, len(ledger.rows) / took,
                ", ".join("%s: %d" % kv for kv in sorted(codes.items()))))
        note("faults injected: %d (%s)" % (len(faults.done), ", ".join(
            "%s %d" % kv for kv in sorted(collections.Counter(
                f["kind"] for f in faults.done).items()))))
        for f in faults.failures:
            note("fault step failed: " + f)
        stop.set()
        sup.join()
        # Every program runs for the checks (a supervisor's last start may still be due).
        for pr in stack.procs.values():
            if not pr.alive():
                pr.start()
        audit = check(tap, stack, ledger, client, admin)
        lines, by = recovery(faults, audit)
        note("recovery after each fault (seed %s):" % seed)
        for line in lines:
            note("  " + line)
        missing = sorted(kinds - set(by))
        tap.ok(len(faults.done) >= ARGS.min_faults and not missing and not faults.failures,
               "%d faults injected, every kind at least once, every fault step succeeded"
               % len(faults.done),
               ["never injected: %s" % m for m in missing] + faults.failures)
        no_write = ["%s at %.1fs" % (f["kind"], f["t"]) for f in faults.done
                    if f.get("first_write") is None]
        tap.ok(not no_write, "writes succeeded again after every fault", no_write)
        unexpected = {p.name: p.unexpected for p in stack.procs.values() if p.unexpected}
        if unexpected:
            note("programs that exited by themselves: %s" % unexpected)
        stopped = stack.stop_all()
        bad_exit = {k: v for k, v in stopped.items() if v not in (0, None)}
        tap.ok(not bad_exit, "every program stops on SIGTERM with status 0",
               ["%s: %s" % kv for kv in bad_exit.items()])
        reports = []
        for name in sorted(stack.procs):
            with open(stack.log(name), errors="replace") as f:
                reports += ["%s: %s" % (name, line.strip()[:200]) for line in f
                            if "Sanitizer" in line or "runtime error" in line]
        tap.ok(not reports, "no sanitizer report in the programs' logs", reports)
        with open(os.path.join(ARGS.work, "summary.json"), "w") as f:
            json.dump({"seed": seed, "faults": faults.done, "recovery": lines}, f, indent=1)
    except Exception as e:  # a crash of the driver is a failure with its reason
        tap.ok(False, "the chaos run completed", ["%s: %s" % (type(e).__name__, e)])
        import traceback
        traceback.print_exc()
    finally:
        stop.set()
        for pr in stack.procs.values():
            if pr.alive():
                pr.kill9()
    print("1..%d" % tap.n, flush=True)
    if tap.failed:
        for name in sorted(stack.procs):
            note("logs: %s" % stack.log(name))
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
