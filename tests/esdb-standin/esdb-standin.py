#!/usr/bin/env python3
"""An in-memory stand-in for EventStoreDB/KurrentDB's AtomPub HTTP API.

Test equipment, never a product default.  It follows the facts collected in
reference/protocols.md sections 1-4 (append, read, category streams and
$streams, delete, auth), error answers included, so that the C client can be
tested on a machine where EventStoreDB cannot be installed.

Design: one process-wide Store guarded by one threading.Condition.  Every
request takes the lock for its whole state change or read, so a batch is
all-or-nothing and readers never see half an append.  Writers notify_all()
after each commit; long-polling readers wait on the same condition with a
deadline.  System streams are built as the server's projections would:
each append to "<cat>-<rest>" links the event into "$ce-<cat>" (event type
"$>", data "<n>@<stream>"), and each stream's event 0 is linked into
"$streams".  The links are written in the same commit as the events, which is
stronger than the real (asynchronous) projections; readers must not rely on
that and the C client does not.

Persistent subscriptions (section 5) are kept simply: one cursor per group
over its stream, messages in flight until acked, redelivered with a higher
retryCount after messageTimeoutMilliseconds or a nack "retry", parked after
maxRetryCount; consumer strategies are not told apart.

Deliberately not implemented: XML bodies, $all, stream metadata, the parked
message stream, projections' HTTP API, clustering.  They answer 404 or 406.

Usage: esdb-standin.py [--header-generation es|kurrent] [--atompub-disabled]
                       [--projections-disabled] [--data FILE]
                       [--delay MS] [--fail-rate P] [--tls-cert PEM --tls-key PEM]
                       [--verbose] PORT
PORT 0 picks a free port; the chosen one is printed as
"listening on 127.0.0.1:PORT".

--data FILE keeps the streams across restarts, as the real server's database
does: every committed append and delete is written to FILE (one JSON line,
flushed before the answer, so it survives a kill -9 of the stand-in though
not a crash of the machine) and FILE is replayed at start; a torn last line
(a kill in the middle of a write that was never answered) is dropped.  The
links of the system streams are made again by the replay, with new ids and
the same numbers.  Persistent subscriptions are not kept.  Without --data
everything lives in memory and is gone at exit.

Test-only control route (not part of EventStoreDB, no auth):
  POST /_standin/faults  {"fail_next": N, "status": 500, "drop_next": N,
                          "delay_ms": M}
  fail_next: answer the next N requests with `status` without doing anything;
  drop_next: close the next N connections without any answer;
  lose_next: do the next N requests, then close without answering (the
             answer is lost on the way back, as after a network failure);
  garbage_next: answer the next N requests 200 with a body that is not JSON;
  delay_ms:  sleep before answering every following request.
  GET /_standin/faults returns the settings and the counters "requests"
  (control route not counted), "appends" (POSTs to a stream that answered
  201) and "connections" (TCP connections accepted,
  control route's included).
"""

import argparse
import base64
import datetime
import json
import random
import re
import signal
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EVENT_MAX = 4 * 1024 * 1024       # data + metadata of one event
BODY_MAX = 64 * 1024 * 1024       # whole request body
PAGE_MAX = 4096                   # largest count in a read URL
DEFAULT_PAGE = 20
USERS = {"admin": "changeit", "ops": "changeit"}
ETAG_SALT = random.getrandbits(32)  # ETags die with the process, as the server's do

ANY, NO_STREAM, STREAM_EXISTS = -2, -1, -4


def now_text(ts):
    """XmlConvert-style UTC time: fractional digits without trailing zeros."""
    dt = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    frac = ("%06d" % dt.microsecond).rstrip("0")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + ("." + frac if frac else "") + "Z"


def esc(name):
    """Uri.EscapeDataString: RFC 3986 unreserved characters stay."""
    return urllib.parse.quote(name, safe="-_.~")


class Event:
    __slots__ = ("stream", "number", "id", "type", "data", "metadata", "is_json", "ts")

    def __init__(self, stream, number, eid, etype, data, metadata, is_json, ts=None):
        self.stream = stream
        self.number = number
        self.id = eid
        self.type = etype
        self.data = data          # bytes
        self.metadata = metadata  # bytes
        self.is_json = is_json
        self.ts = time.time() if ts is None else ts

    def link_target(self):
        """(stream, number) for a "$>" link event, else None."""
        if self.type != "$>":
            return None
        text = self.data.decode("utf-8", "replace")
        at = text.find("@")
        if at < 1:
            return None
        try:
            return text[at + 1:], int(text[:at])
        except ValueError:
            return None


class Stream:
    def __init__(self, name):
        self.name = name
        self.events = []        # index == event number
        self.tb = 0             # truncate before: first visible number
        self.soft_deleted = False
        self.hard_deleted = False

    def last(self):
        return len(self.events) - 1

    def version(self):
        """The version expected-version checks see: -1 when soft-deleted."""
        if self.soft_deleted:
            return -1
        return self.last()

    def visible(self, number):
        return self.tb <= number <= self.last() and not self.soft_deleted


class Store:
    def __init__(self):
        self.cond = threading.Condition()
        self.streams = {}
        self.journal = None     # --data: the open file, appended to

    def open_journal(self, path):
        """Replays PATH (when it exists), then appends every commit to it."""
        good = 0
        try:
            with open(path, "rb") as f:
                for line in f:
                    try:
                        if not line.endswith(b"\n"):
                            raise ValueError("no newline")
                        rec = json.loads(line)
                    except ValueError:
                        break   # torn by a kill: that commit was never answered
                    self._replay(rec)
                    good += len(line)
        except FileNotFoundError:
            pass
        self.journal = open(path, "ab")
        self.journal.truncate(good)
        self.journal.seek(good)

    def _replay(self, rec):
        if rec["op"] == "write":
            batch = [(e[0], e[1], base64.b64decode(e[2]), base64.b64decode(e[3]), e[4])
                     for e in rec["events"]]
            self._write(rec["stream"], batch, rec["ts"])
        else:
            self._delete(rec["stream"], rec["hard"])

    def _log(self, rec):
        """Writes one commit to the journal before it is answered.  Lock held."""
        if self.journal is None:
            return
        self.journal.write(json.dumps(rec).encode("utf-8") + b"\n")
        self.journal.flush()

    def _commit(self, name, batch):
        ts = time.time()
        self._log({"op": "write", "stream": name, "ts": ts, "events": [
            [e[0], e[1], base64.b64encode(e[2]).decode(), base64.b64encode(e[3]).decode(), e[4]]
            for e in batch]})
        return self._write(name, batch, ts)

    def get(self, name):
        return self.streams.get(name)

    def _write(self, name, batch, ts=None):
        """Writes parsed events; returns the first number.  Lock held."""
        s = self.streams.get(name)
        if s is None:
            s = self.streams[name] = Stream(name)
        if s.soft_deleted:
            # Re-creating a soft-deleted stream: numbering continues, the
            # old events stay truncated away.
            s.soft_deleted = False
            s.tb = len(s.events)
        first = len(s.events)
        for eid, etype, data, meta, is_json in batch:
            ev = Event(name, len(s.events), eid, etype, data, meta, is_json, ts)
            s.events.append(ev)
            if not name.startswith("$") and not OPTS.projections_disabled:
                self._project(ev)
        return first

    def _project(self, ev):
        link = ("%d@%s" % (ev.number, ev.stream)).encode("utf-8")
        if ev.number == 0:
            self._write("$streams", [(str(uuid.uuid4()), "$>", link, b"", False)], ev.ts)
        dash = ev.stream.find("-")
        if dash > 0:
            cat = "$ce-" + ev.stream[:dash]
            self._write(cat, [(str(uuid.uuid4()), "$>", link, b"", False)], ev.ts)

    def append(self, name, expected, batch):
        """Returns (status, first_number_or_None, current_version)."""
        s = self.streams.get(name)
        if s is not None and s.hard_deleted:
            return 410, None, None
        cur = s.version() if s else -1
        ids = [b[0] for b in batch]

        def existing_from(start):
            # Idempotent retry: the ids already sit at start, start+1, ...
            if s is None or start < 0 or start + len(ids) - 1 > s.last():
                return False
            return all(s.events[start + i].id == ids[i] for i in range(len(ids)))

        if expected >= 0 or expected == NO_STREAM:
            if cur == expected:
                return 201, self._commit(name, batch), None
            start = expected + 1
            if s is not None and cur > expected and existing_from(start):
                return 201, start, None
            return 400, None, cur
        if expected == STREAM_EXISTS and cur == -1:
            return 400, None, cur
        # ANY or STREAM_EXISTS: look the first id up among this stream's
        # commits (the server's cache of recent commits; never evicted here).
        if s is not None:
            for ev in s.events:
                if ev.id == ids[0]:
                    if existing_from(ev.number):
                        return 201, ev.number, None
                    return 400, None, cur
        return 201, self._commit(name, batch), None

    def delete(self, name, expected, hard):
        s = self.streams.get(name)
        if s is not None and s.hard_deleted:
            return 410, None
        cur = s.version() if s else -1
        if expected != ANY:
            ok = (cur == -1) if expected == NO_STREAM else \
                (cur != -1) if expected == STREAM_EXISTS else (cur == expected)
            if not ok:
                return 400, cur
        self._log({"op": "delete", "stream": name, "hard": bool(hard)})
        self._delete(name, hard)
        return 204, None

    def _delete(self, name, hard):
        s = self.streams.get(name)
        if s is None:
            s = self.streams[name] = Stream(name)
        if hard:
            s.hard_deleted = True
        elif not s.soft_deleted:
            s.soft_deleted = True
            s.tb = len(s.events)

    def resolve(self, ev):
        """(event, link) as the server's ResolvedEvent: link None when ev is
        not a link; event None when the target is gone."""
        target = ev.link_target()
        if target is None:
            return ev, None
        t = self.streams.get(target[0])
        if t is None or t.hard_deleted or not t.visible(target[1]):
            return None, ev
        return t.events[target[1]], ev


STORE = Store()


class Subscription:
    """One persistent subscription group.  Lock: STORE.cond."""

    def __init__(self, stream, group, settings):
        self.stream = stream
        self.group = group
        self.inflight = {}   # ack id -> [raw event, retry count, deadline]
        self.retry = []      # [raw event, retry count] to deliver again
        self.parked = []
        self.apply(settings)
        s = STORE.get(stream)
        start = self.start_from
        self.next = (s.last() + 1 if s else 0) if start == -1 else max(start, 0)

    def apply(self, settings):
        self.resolve = bool(settings.get("resolveLinktos", False))
        self.start_from = int(settings.get("startFrom", 0))
        self.timeout_ms = int(settings.get("messageTimeoutMilliseconds", 10000))
        self.max_retry = int(settings.get("maxRetryCount", 10))
        self.strategy = str(settings.get("namedConsumerStrategy", "RoundRobin"))

    @staticmethod
    def ack_id(raw):
        return raw.id   # the original event's: the link's when resolved

    def take(self, count):
        """Next messages to deliver: timed-out first, then retries, then new."""
        now = time.monotonic()
        for key, (raw, tries, deadline) in list(self.inflight.items()):
            if deadline <= now:
                del self.inflight[key]
                self.requeue(raw, tries + 1)
        out = []
        while self.retry and len(out) < count:
            out.append(self.retry.pop(0))
        s = STORE.get(self.stream)
        while s is not None and not s.hard_deleted and len(out) < count and \
                self.next <= s.last():
            if s.visible(self.next):
                out.append([s.events[self.next], 0])
            self.next += 1
        for raw, tries in out:
            self.inflight[self.ack_id(raw)] = [raw, tries, now + self.timeout_ms / 1000.0]
        return out

    def requeue(self, raw, tries):
        if tries > self.max_retry:
            self.parked.append(raw)
        else:
            self.retry.append([raw, tries])


SUBSCRIPTIONS = {}


class Faults:
    def __init__(self, delay_ms=0, fail_rate=0.0):
        self.lock = threading.Lock()
        self.fail_next = 0
        self.status = 500
        self.drop_next = 0
        self.lose_next = 0
        self.garbage_next = 0
        self.delay_ms = delay_ms
        self.fail_rate = fail_rate
        self.requests = 0
        self.appends = 0
        self.connections = 0


FAULTS = Faults()
OPTS = None  # argparse namespace


class ReadRequest:
    """What a GET of a stream page asked for."""

    def __init__(self, stream, start, count, backward, head):
        self.stream = stream
        self.start = start    # None when head
        self.count = count
        self.backward = backward
        self.head = head


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "esdb-standin/1"

    # -- plumbing ---------------------------------------------------------
    def setup(self):
        super().setup()
        with FAULTS.lock:
            FAULTS.connections += 1

    def log_message(self, fmt, *args):
        if OPTS.verbose:
            sys.stderr.write("esdb-standin: " + (fmt % args) + "\n")

    def hdr(self, name):
        """Request header as the generation reads it: Kurrent-X then ES-X."""
        if OPTS.header_generation == "kurrent":
            v = self.headers.get("Kurrent-" + name)
            if v is not None:
                return v
        return self.headers.get("ES-" + name)

    def hdr_name(self, name):
        return ("Kurrent-" if OPTS.header_generation == "kurrent" else "ES-") + name

    def answer(self, status, body=b"", ctype=None, headers=(), reason=None):
        if getattr(self, "lose", False):
            self.lose = False
            self.close_connection = True
            return
        self.send_response(status, reason)
        for k, v in headers:
            self.send_header(k, v)
        if body or ctype:
            self.send_header("Content-Type", ctype or "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        # Headers and body in one write (http.server's own buffer): one
        # send per answer instead of two, which matters at thousands a second.
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD" and body:
            self._headers_buffer.append(body)
        self.flush_headers()

    def text_error(self, status, reason, headers=()):
        """400-style answer: the reason in the status line and as text."""
        self.answer(status, reason.encode("utf-8"), "text/plain; charset=utf-8", headers, reason)

    def current_version_headers(self, cur):
        h = [("ES-CurrentVersion", str(cur))]
        if OPTS.header_generation == "kurrent":
            h.insert(0, ("Kurrent-CurrentVersion", str(cur)))
        return h

    def base(self):
        return ("https://" if OPTS.tls_cert else "http://") + (self.headers.get("Host") or "%s:%d" % self.server.server_address)

    def read_body(self):
        """Returns the body bytes, or None after answering 413."""
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > BODY_MAX:
                    self.close_connection = True
                    self.text_error(413, "Request Entity Too Large")
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
            return b"".join(chunks)
        n = int(length or 0)
        if n > BODY_MAX:
            self.close_connection = True
            self.text_error(413, "Request Entity Too Large")
            return None
        return self.rfile.read(n) if n > 0 else b""

    def authorized(self, admin_only=False):
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                user, _, pw = base64.b64decode(auth[6:], validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user, pw = None, None
            if user in USERS and USERS[user] == pw and (user == "admin" or not admin_only):
                return True
        self.answer(401, b"", None, [("WWW-Authenticate", 'X-Basic realm="ESDB"')],
                    "Unauthorized")
        return False

    def faults(self):
        """Applies injected faults; True when the request was consumed."""
        with FAULTS.lock:
            FAULTS.requests += 1
            delay = FAULTS.delay_ms
            drop = FAULTS.drop_next > 0
            if drop:
                FAULTS.drop_next -= 1
            self.lose = FAULTS.lose_next > 0
            if self.lose:
                FAULTS.lose_next -= 1
            fail = FAULTS.fail_next > 0 or (FAULTS.fail_rate > 0 and
                                            random.random() < FAULTS.fail_rate)
            if FAULTS.fail_next > 0:
                FAULTS.fail_next -= 1
            status = FAULTS.status
            garbage = FAULTS.garbage_next > 0
            if garbage:
                FAULTS.garbage_next -= 1
        if delay:
            time.sleep(delay / 1000.0)
        if drop:
            self.close_connection = True
            return True
        if garbage:
            self.read_body()
            self.answer(200, b'{"entries": [ {"title": ', "application/vnd.eventstore.atom+json")
            return True
        if fail:
            self.read_body()
            self.text_error(status, "Internal Server Error" if status == 500 else "Injected")
            return True
        return False

    def route(self):
        """Splits the request target into decoded path segments and query."""
        raw, _, query = self.path.partition("?")
        try:
            segs = [urllib.parse.unquote(p, errors="strict") for p in raw.split("/")[1:]]
        except UnicodeDecodeError:
            segs = None
        return segs, urllib.parse.parse_qs(query)

    # -- dispatch ---------------------------------------------------------
    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PUT(self):
        self.dispatch("PUT")

    def dispatch(self, method):
        segs, query = self.route()
        if segs and segs[0] == "_standin":
            return self.control(method, segs)
        if self.faults():
            return
        if segs is None:
            self.read_body()
            return self.text_error(400, "Invalid URL encoding")
        if segs == ["info"] and method == "GET":
            return self.info()
        if len(segs) >= 2 and segs[0] == "streams" and not OPTS.atompub_disabled:
            if not self.authorized():
                self.read_body()
                return
            stream = segs[1]
            rest = segs[2:]
            if stream == "":
                self.read_body()
                return self.text_error(400, "Empty stream name")
            if method == "POST" and not rest:
                return self.post_events(stream, None)
            if method == "POST" and len(rest) == 2 and rest[0] == "incoming":
                return self.post_events(stream, rest[1])
            if method == "DELETE" and not rest:
                return self.delete_stream(stream)
            if method == "GET":
                return self.get_stream(stream, rest, query)
        if len(segs) >= 3 and segs[0] == "subscriptions":
            # These routes exist even with AtomPub off.
            return self.subscription(method, segs[1], segs[2], segs[3:], query)
        self.read_body()
        self.answer(404)

    def control(self, method, segs):
        if segs != ["_standin", "faults"]:
            return self.answer(404)
        if method == "POST":
            body = self.read_body()
            try:
                cfg = json.loads(body or b"{}")
                with FAULTS.lock:
                    FAULTS.fail_next = int(cfg.get("fail_next", FAULTS.fail_next))
                    FAULTS.status = int(cfg.get("status", FAULTS.status))
                    FAULTS.drop_next = int(cfg.get("drop_next", FAULTS.drop_next))
                    FAULTS.lose_next = int(cfg.get("lose_next", FAULTS.lose_next))
                    FAULTS.garbage_next = int(cfg.get("garbage_next", FAULTS.garbage_next))
                    FAULTS.delay_ms = int(cfg.get("delay_ms", FAULTS.delay_ms))
            except (ValueError, AttributeError, TypeError):
                return self.text_error(400, "Bad fault settings")
        with FAULTS.lock:
            out = {"fail_next": FAULTS.fail_next, "status": FAULTS.status,
                   "drop_next": FAULTS.drop_next, "lose_next": FAULTS.lose_next,
                   "delay_ms": FAULTS.delay_ms,
                   "requests": FAULTS.requests, "appends": FAULTS.appends,
                   "connections": FAULTS.connections}
        self.answer(200, json.dumps(out).encode(), "application/json")

    def info(self):
        kurrent = OPTS.header_generation == "kurrent"
        doc = {
            "esVersion": "25.1.0" if kurrent else "24.10.0",
            "state": "leader",
            "features": {"projections": not OPTS.projections_disabled,
                         "userManagement": True,
                         "atomPub": not OPTS.atompub_disabled},
            "authentication": {"type": "internal", "properties": {}},
        }
        self.answer(200, json.dumps(doc).encode(), "application/json; charset=utf-8")

    # -- persistent subscriptions -------------------------------------------
    def subscription(self, method, stream, group, rest, query):
        body = self.read_body()
        if body is None:
            return
        manage = method in ("PUT", "DELETE") or (method == "POST" and not rest)
        if not self.authorized(admin_only=manage):
            return
        key = (stream, group)
        if manage:
            settings = {}
            if method != "DELETE":
                try:
                    settings = json.loads(body.decode("utf-8") or "{}")
                    if not isinstance(settings, dict):
                        raise ValueError
                    Subscription.apply(Subscription.__new__(Subscription), settings)
                except (ValueError, TypeError, UnicodeDecodeError):
                    return self.text_error(400, "Invalid subscription settings")
            with STORE.cond:
                sub = SUBSCRIPTIONS.get(key)
                if method == "PUT":
                    if sub is not None:
                        return self.text_error(409, "Subscription group already exists")
                    SUBSCRIPTIONS[key] = Subscription(stream, group, settings)
                    return self.answer(201, reason="Subscription group created")
                if sub is None:
                    return self.text_error(404, "Subscription group does not exist")
                if method == "DELETE":
                    del SUBSCRIPTIONS[key]
                    return self.answer(200, reason="OK")
                sub.apply(settings)
                return self.answer(200, reason="OK")
        if method == "POST" and rest and rest[0] in ("ack", "nack"):
            ids = rest[1:2] or ",".join(query.get("ids", [])).split(",")
            action = (query.get("action", ["retry"])[0] or "retry").lower()
            if rest[0] == "nack" and action not in ("park", "retry", "skip", "stop"):
                return self.text_error(400, "Unknown nack action")
            with STORE.cond:
                sub = SUBSCRIPTIONS.get(key)
                if sub is None:
                    return self.text_error(404, "Subscription group does not exist")
                for i in ids:
                    entry = sub.inflight.pop(i.strip(), None)
                    if entry is None or rest[0] == "ack":
                        continue
                    if action == "park":
                        sub.parked.append(entry[0])
                    elif action == "retry":
                        sub.requeue(entry[0], entry[1] + 1)
            return self.answer(202, reason="Accepted")
        if method != "GET" or len(rest) > 1:
            return self.answer(404)
        count = 1
        if rest:
            if not re.fullmatch(r"[0-9]{1,4}", rest[0]) or not 1 <= int(rest[0]) <= 100:
                return self.text_error(400, "Count should be between 1 and 100")
            count = int(rest[0])
        types = ["application/vnd.eventstore.competingatom+json"]
        if OPTS.header_generation == "kurrent":
            types.insert(0, "application/vnd.kurrent.competingatom+json")
        asked = [p.split(";")[0].strip().lower()
                 for p in (self.headers.get("Accept") or "").split(",")]
        media = next((t for t in asked if t in types), None)
        if media is None:
            return self.answer(406, reason="Not Acceptable")
        embed = (query.get("embed", ["none"])[0] or "none").lower()
        with STORE.cond:
            sub = SUBSCRIPTIONS.get(key)
            if sub is None:
                return self.text_error(404, "Subscription group does not exist")
            msgs = sub.take(count)
            feed = self.competing_feed(sub, msgs, count, embed)
        body = json.dumps(feed, ensure_ascii=False, indent=2).encode("utf-8")
        self.answer(200, body, media + "; charset=utf-8",
                    [("Cache-Control", "max-age=0, no-cache, must-revalidate")])

    def competing_feed(self, sub, msgs, count, embed):
        base = self.base() + "/subscriptions/%s/%s" % (esc(sub.stream), esc(sub.group))
        ids = ",".join(Subscription.ack_id(raw) for raw, _ in msgs)
        links = []
        if msgs:
            links.append(self.link(base + "/ack?ids=" + ids, "ackAll"))
            links.append(self.link(base + "/nack?ids=" + ids, "nackAll"))
        links.append(self.link(base + "/%d" % count, "previous"))
        links.append(self.link(base, "self"))
        entries = []
        for raw, tries in reversed(msgs):
            e = self.entry(raw, embed, sub.resolve)
            aid = Subscription.ack_id(raw)
            e["links"].append(self.link(base + "/ack/" + aid, "ack"))
            e["links"].append(self.link(base + "/nack/" + aid, "nack"))
            e["retryCount"] = tries
            entries.append(e)
        return {
            "title": "Messages for '%s/%s'" % (sub.stream, sub.group),
            "id": base,
            "updated": now_text(msgs[-1][0].ts) if msgs else "0001-01-01T00:00:00Z",
            "author": {"name": "Kurrent" if OPTS.header_generation == "kurrent"
                       else "EventStore"},
            "headOfStream": False,
            "links": links,
            "entries": entries,
        }

    # -- append -----------------------------------------------------------
    def expected_version(self):
        """Returns the expected version, or None after answering 400."""
        v = self.hdr("ExpectedVersion")
        if v is None:
            return ANY
        try:
            n = int(v.strip())
            if n < -4 or n == -3 or n > 2**63 - 1:
                raise ValueError
        except ValueError:
            self.text_error(400, self.hdr_name("ExpectedVersion") + " header in wrong format.")
            return None
        return n

    def post_events(self, stream, incoming_id):
        body = self.read_body()
        if body is None:
            return
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        batch_types = ["application/vnd.eventstore.events+json"]
        if OPTS.header_generation == "kurrent":
            batch_types.append("application/vnd.kurrent.events+json")
        single_types = ["application/json", "application/octet-stream"]
        if ctype in batch_types and incoming_id is None:
            batch = self.parse_batch(body)
        elif ctype in single_types:
            batch = self.parse_single(stream, body, ctype, incoming_id)
        else:
            return self.text_error(415, "Unsupported Media Type")
        if batch is None:
            return
        expected = self.expected_version()
        if expected is None:
            return
        for _, _, data, meta, _ in batch:
            if len(data) + len(meta) > EVENT_MAX:
                return self.text_error(413, "Request Entity Too Large")
        with STORE.cond:
            status, first, cur = STORE.append(stream, expected, batch)
            if status == 201:
                STORE.cond.notify_all()
        if status == 410:
            return self.text_error(410, "Stream deleted")
        if status == 400:
            return self.answer(400, b"", None, self.current_version_headers(cur),
                               "Wrong expected EventNumber")
        with FAULTS.lock:
            FAULTS.appends += 1
        loc = "%s/streams/%s/%d" % (self.base(), esc(stream), first)
        self.answer(201, b"", "text/plain", [("Location", loc)], "Created")

    @staticmethod
    def stored(value):
        """(bytes, is_json) as the server's AutoEventConverter stores a value."""
        if value is None:
            return b"", False
        if isinstance(value, (dict, list)):
            return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode(), True
        if isinstance(value, str):
            try:
                parsed = json.loads(value)
                if isinstance(parsed, (dict, list)):
                    return json.dumps(parsed, ensure_ascii=False,
                                      separators=(",", ":")).encode(), True
            except ValueError:
                pass
            return value.encode("utf-8"), False
        return json.dumps(value).encode(), False

    @staticmethod
    def valid_id(text):
        try:
            u = uuid.UUID(text)
        except (ValueError, TypeError, AttributeError):
            return None
        return None if u.int == 0 else str(u)

    def parse_batch(self, body):
        try:
            items = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            self.text_error(400, "Write request body invalid.")
            return None
        if not isinstance(items, list) or not items:
            self.text_error(400, "Write request body invalid.")
            return None
        batch = []
        for item in items:
            if not isinstance(item, dict):
                self.text_error(400, "Write request body invalid.")
                return None
            eid = self.valid_id(item.get("eventId"))
            if eid is None:
                self.text_error(400, "Empty eventId provided.")
                return None
            etype = item.get("eventType")
            if not isinstance(etype, str) or etype == "":
                self.text_error(400, "Empty eventType provided.")
                return None
            data, dj = self.stored(item.get("data"))
            meta, mj = self.stored(item.get("metadata"))
            batch.append((eid, etype, data, meta, dj or mj))
        return batch

    def parse_single(self, stream, body, ctype, incoming_id):
        etype = self.hdr("EventType")
        if not etype:
            self.text_error(400, "Must include an event type with the request either in body "
                            "or as " + self.hdr_name("EventType") + " header.")
            return None
        eid_text = incoming_id or self.hdr("EventId")
        if eid_text is None:
            loc = "%s/streams/%s/incoming/%s" % (self.base(), esc(stream), uuid.uuid4())
            self.answer(307, b"", None, [("Location", loc)], "Temporary Redirect")
            return None
        eid = self.valid_id(eid_text)
        if eid is None:
            self.text_error(400, "Empty eventId provided.")
            return None
        if ctype == "application/octet-stream":
            return [(eid, etype, body, b"", False)]
        try:
            value = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return [(eid, etype, body, b"", False)]
        data, dj = self.stored(value)
        return [(eid, etype, data, b"", dj)]

    # -- delete -----------------------------------------------------------
    def delete_stream(self, stream):
        self.read_body()
        hard = self.hdr("HardDelete")
        if hard is not None and hard.lower() not in ("true", "false"):
            return self.text_error(400, self.hdr_name("HardDelete") + " header in wrong format.")
        expected = self.expected_version()
        if expected is None:
            return
        with STORE.cond:
            status, cur = STORE.delete(stream, expected, hard is not None and
                                       hard.lower() == "true")
            STORE.cond.notify_all()
        if status == 410:
            return self.text_error(410, "Stream deleted")
        if status == 400:
            return self.answer(400, b"", None, self.current_version_headers(cur),
                               "Wrong expected EventNumber")
        self.answer(204, reason="Stream deleted")

    # -- read -------------------------------------------------------------
    def accept(self, single):
        """Chooses the response media type, or None after answering 406."""
        feeds = ["application/vnd.eventstore.atom+json", "application/json"]
        if OPTS.header_generation == "kurrent":
            feeds.insert(0, "application/vnd.kurrent.atom+json")
        if single:
            feeds += ["application/vnd.eventstore.event+json"]
            if OPTS.header_generation == "kurrent":
                feeds += ["application/vnd.kurrent.event+json"]
        asked = []
        for part in (self.headers.get("Accept") or "").split(","):
            t = part.split(";")[0].strip().lower()
            if t:
                asked.append(t)
        for t in asked:
            if t in feeds:
                return t
        doc = {"title": "Description document", "description":
               "The description document will be presented when no accept header is "
               "present or it was requested", "_links": {}}
        self.answer(406, json.dumps(doc).encode(),
                    "application/vnd.eventstore.streamdesc+json; charset=utf-8",
                    reason="Not Acceptable")
        return None

    def parse_read(self, stream, rest):
        """Returns a ReadRequest, an int for a single event (-1 = head),
        or None after answering 400/404."""
        def num(text, minimum):
            if not re.fullmatch(r"-?[0-9]{1,19}", text):
                raise ValueError
            n = int(text)
            if n < minimum:
                raise ValueError
            return n
        try:
            if not rest:
                return ReadRequest(stream, None, DEFAULT_PAGE, True, True)
            if len(rest) == 1:
                return -1 if rest[0] == "head" else num(rest[0], 0)
            if len(rest) == 3 and rest[0] == "head" and rest[1] == "backward":
                return ReadRequest(stream, None, num(rest[2], 1), True, True)
            if len(rest) == 2:
                return ReadRequest(stream, num(rest[0], 0), num(rest[1], 1), True, False)
            if len(rest) == 3 and rest[1] in ("forward", "backward"):
                return ReadRequest(stream, num(rest[0], 0), num(rest[2], 1),
                                   rest[1] == "backward", False)
        except ValueError:
            self.text_error(400, "Invalid count or event number")
            return None
        self.answer(404)
        return None

    def bool_header(self, name, default):
        v = self.hdr(name)
        if v is None:
            return default
        if v.lower() in ("true", "false"):
            return v.lower() == "true"
        self.text_error(400, self.hdr_name(name) + " header in wrong format.")
        return None

    def get_stream(self, stream, rest, query):
        req = self.parse_read(stream, rest)
        if req is None:
            return
        media = self.accept(single=isinstance(req, int))
        if media is None:
            return
        if isinstance(req, ReadRequest) and req.count > PAGE_MAX:
            return self.text_error(400, "Invalid count or event number")
        resolve = self.bool_header("ResolveLinkTos", True)
        if resolve is None:
            return
        longpoll = 0
        lp = self.hdr("LongPoll")
        if lp is not None:
            try:
                longpoll = int(lp)
                if longpoll <= 0:
                    raise ValueError
            except ValueError:
                return self.text_error(400, self.hdr_name("LongPoll") + " header in wrong format.")
        embed = (query.get("embed", ["none"])[0] or "none").lower()
        if isinstance(req, int):
            return self.single_event(stream, req, media, resolve)
        with STORE.cond:
            if longpoll and not req.backward:
                deadline = time.monotonic() + longpoll
                while True:
                    s = STORE.get(stream)
                    if s is not None and (s.hard_deleted or s.soft_deleted):
                        break
                    if s is not None and s.last() >= req.start:
                        break
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    STORE.cond.wait(left)
            s = STORE.get(stream)
            if s is None or s.soft_deleted:
                return self.answer(404, reason="Not Found")
            if s.hard_deleted:
                return self.answer(410, reason="Deleted")
            feed, cache = self.build_feed(s, req, embed, resolve, media)
        etag = None
        if cache is None:
            etag = '"%d;%d"' % (s.last(), zlib.crc32(media.encode()) ^ ETAG_SALT)
            if self.headers.get("If-None-Match") == etag:
                return self.answer(304, headers=[("ETag", etag)])
        headers = [("Cache-Control", cache or "max-age=0, no-cache, must-revalidate"),
                   ("Vary", "Accept")]
        if etag:
            headers.append(("ETag", etag))
        body = json.dumps(feed, ensure_ascii=False, indent=2).encode("utf-8")
        self.answer(200, body, media + "; charset=utf-8", headers)

    def build_feed(self, s, req, embed, resolve, media):
        """Returns (feed dict, cache-control for full pages or None).  Lock held."""
        base = self.base()
        e = esc(s.name)
        n = req.count
        last = s.last()
        url = lambda fmt, *a: base + "/streams/" + e + (fmt % a)
        if req.backward:
            frm = last if req.head else req.start
            lo = max(frm - n + 1, s.tb)
            numbers = [i for i in range(min(frm, last), lo - 1, -1)]
            nxt = frm - n
            end = nxt < s.tb
            head = req.head
        else:
            frm = max(req.start, 0)
            numbers = [i for i in range(max(frm, s.tb), min(frm + n - 1, last) + 1)]
            numbers.reverse()
            end = frm + n - 1 >= last
            head = end
        links = [("self", base + "/streams/" + e),
                 ("first", url("/head/backward/%d", n))]
        if req.backward:
            if not end:
                links.append(("last", url("/0/forward/%d", n)))
                links.append(("next", url("/%d/backward/%d", nxt, n)))
            links.append(("previous", url("/%d/forward/%d", min(frm, last) + 1, n)))
        else:
            if frm - 1 >= 0:
                links.append(("last", url("/0/forward/%d", n)))
                links.append(("next", url("/%d/backward/%d", frm - 1, n)))
            if not end or numbers:
                links.append(("previous", url("/%d/forward/%d",
                                              min(frm + n - 1, last) + 1, n)))
        links.append(("metadata", url("/metadata")))
        entries = [self.entry(s.events[i], embed, resolve) for i in numbers]
        kurrent = OPTS.header_generation == "kurrent"
        feed = {
            "title": "Event stream '%s'" % s.name,
            "id": base + "/streams/" + e,
            "updated": now_text(s.events[numbers[0]].ts) if numbers else "0001-01-01T00:00:00Z",
            "streamId": s.name,
            "author": {"name": "Kurrent" if kurrent else "EventStore"},
            "headOfStream": head,
            "links": [self.link(u, r) for r, u in links],
            "entries": entries,
        }
        if req.backward:
            feed["selfUrl"] = base + "/streams/" + e
            if head:
                feed["eTag"] = "%d;%d" % (last, zlib.crc32(media.encode()) ^ ETAG_SALT)
        full = len(numbers) == n and not head
        return feed, ("max-age=31536000, public" if full else None)

    @staticmethod
    def link(uri, rel):
        d = {"uri": uri, "relation": rel}
        if OPTS.header_generation == "kurrent":
            d["type"] = None
        return d

    def entry(self, raw, embed, resolve, single=False):
        base = self.base()
        ev, link = STORE.resolve(raw) if resolve else (raw, None)
        levels = ["none", "content", "rich", "body", "pretty", "tryharder"]
        level = levels.index(embed) if embed in levels else 0
        out = {}
        if level > 1 and ev is not None:
            out.update({
                "eventId": ev.id, "eventType": ev.type, "eventNumber": ev.number,
                "streamId": ev.stream, "isJson": ev.is_json, "isMetaData": False,
                "isLinkMetaData": False, "isRedacted": False,
                "positionEventNumber": raw.number, "positionStreamId": raw.stream,
            })
            if level >= 3:
                text = ev.data.decode("utf-8", "replace")
                if ev.is_json:
                    out["data"] = self.pretty(text) if level >= 4 else text
                elif level >= 5:
                    out["data"] = text
                    try:
                        out["data"] = self.pretty(text)
                        out["isJson"] = True
                    except ValueError:
                        pass
                meta = ev.metadata.decode("utf-8", "replace")
                out["isMetaData"] = meta != ""
                if level >= 4 and meta:
                    try:
                        meta = self.pretty(meta)
                    except ValueError:
                        pass
                out["metaData"] = meta or None
                if link is not None:
                    lm = link.metadata.decode("utf-8", "replace")
                    out["linkMetaData"] = lm
                    out["isLinkMetaData"] = lm != ""
        if ev is not None and link is None:
            where, summary = (ev.stream, ev.number), ev.type
        else:
            where, summary = link.link_target(), "$>"
        uri = "%s/streams/%s/%d" % (base, esc(where[0]), where[1])
        entry = {
            "title": "%d@%s" % (where[1], where[0]),
            "id": uri,
            "updated": now_text((link or ev).ts),
            "author": {"name": "Kurrent" if OPTS.header_generation == "kurrent"
                       else "EventStore"},
            "summary": summary,
            "links": [self.link(uri, "edit"), self.link(uri, "alternate")],
        }
        if ev is not None and link is None and ev.is_json and (single or level == 1):
            entry["content"] = self.content(ev)
        elif OPTS.header_generation == "kurrent":
            entry["content"] = None
        entry.update(out)
        return entry

    @staticmethod
    def pretty(text):
        value = json.loads(text)
        if not isinstance(value, dict):
            raise ValueError("not an object")
        return json.dumps(value, ensure_ascii=False, indent=2)

    @staticmethod
    def content(ev):
        def parsed(b):
            try:
                return json.loads(b.decode("utf-8")) if b else None
            except (ValueError, UnicodeDecodeError):
                return b.decode("utf-8", "replace")
        return {"eventStreamId": ev.stream, "eventNumber": ev.number, "eventType": ev.type,
                "eventId": ev.id, "data": parsed(ev.data), "metadata": parsed(ev.metadata)}

    def single_event(self, stream, number, media, resolve):
        with STORE.cond:
            s = STORE.get(stream)
            if s is None or s.soft_deleted:
                return self.answer(404, reason="Not Found")
            if s.hard_deleted:
                return self.answer(410, reason="Deleted")
            if number == -1:
                number = s.last()
            if not s.visible(number):
                return self.answer(404, reason="Not Found")
            raw = s.events[number]
            ev, link = STORE.resolve(raw) if resolve else (raw, None)
            if ev is None:
                return self.answer(404, reason="Not Found")
            if media.endswith(".event+json"):
                doc = self.content(ev)
            elif media == "application/json":
                doc = self.content(ev)["data"]
            else:
                doc = self.entry(raw, "none", resolve, single=True)
        body = json.dumps(doc, ensure_ascii=False).encode("utf-8")
        self.answer(200, body, media + "; charset=utf-8",
                    [("Cache-Control", "max-age=31536000, public")])


def main():
    global OPTS
    p = argparse.ArgumentParser(description="EventStoreDB AtomPub stand-in (test equipment)")
    p.add_argument("port", type=int)
    p.add_argument("--header-generation", choices=["es", "kurrent"], default="kurrent")
    p.add_argument("--atompub-disabled", action="store_true")
    p.add_argument("--projections-disabled", action="store_true",
                   help="no $ce-/$streams links; /info says features.projections false")
    p.add_argument("--delay", type=int, default=0, metavar="MS")
    p.add_argument("--fail-rate", type=float, default=0.0, metavar="P")
    p.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate")
    p.add_argument("--tls-key", metavar="PEM")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--data", metavar="FILE",
                   help="keep the streams in FILE across restarts (replayed at start)")
    OPTS = p.parse_args()
    if bool(OPTS.tls_cert) != bool(OPTS.tls_key):
        p.error("--tls-cert and --tls-key go together")
    FAULTS.delay_ms = OPTS.delay
    FAULTS.fail_rate = OPTS.fail_rate
    if OPTS.data:
        STORE.open_journal(OPTS.data)

    def quiet_error(request, client_address):
        # A client that gave up (timeout test) is not the stand-in's fault.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError,
                                              ssl.SSLError)):
            ThreadingHTTPServer.handle_error(server, request, client_address)

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", OPTS.port), Handler)
    server.handle_error = quiet_error
    if OPTS.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(OPTS.tls_cert, OPTS.tls_key)
        # The handshake happens in the request's thread, on first read.
        server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=False)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()


if __name__ == "__main__":
    main()
