#!/usr/bin/env python3
"""TAP test of the EventStoreDB stand-in: pins each answer it gives to the
facts of reference/protocols.md sections 1-4, so that the stand-in cannot
drift into agreeing with a wrong client.  Starts its own stand-ins on free
ports of 127.0.0.1."""

import base64
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "esdb-standin.py")
AUTH = "Basic " + base64.b64encode(b"admin:changeit").decode()
ATOM = "application/vnd.eventstore.atom+json"
EVENTS = "application/vnd.eventstore.events+json"

results = []


def ok(cond, name):
    results.append((bool(cond), name))
    if not cond:
        sys.stderr.write("failed: %s\n" % name)


class Standin:
    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, SCRIPT, *args, "0"],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on 127.0.0.1:"):
            raise RuntimeError("stand-in did not start: %r" % line)
        self.port = int(line.strip().rsplit(":", 1)[1])
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def req(self, method, path, body=None, headers=None, auth=True, conn=None):
        h = dict(headers or {})
        if auth:
            h.setdefault("Authorization", AUTH)
        if isinstance(body, (list, dict)):
            body = json.dumps(body).encode()
        c = conn or self.conn
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        return r, data

    def append(self, stream, events, expected=None, extra=None, ctype=EVENTS):
        h = {"Content-Type": ctype}
        if expected is not None:
            h["ES-ExpectedVersion"] = str(expected)
        h.update(extra or {})
        return self.req("POST", "/streams/" + stream, events, h)

    def feed(self, path, extra=None):
        h = {"Accept": ATOM}
        h.update(extra or {})
        r, data = self.req("GET", path, None, h)
        return r, (json.loads(data) if r.status == 200 else None)

    def stop(self):
        self.conn.close()
        self.proc.terminate()
        self.proc.wait()


def ev(etype="Tested", data=None, eid=None, **more):
    d = {"eventId": eid or str(uuid.uuid4()), "eventType": etype,
         "data": data if data is not None else {"k": 1}}
    d.update(more)
    return d


def links(feed):
    return {l["relation"]: l["uri"].split("/streams/", 1)[1] for l in feed["links"]}


def test_append(s):
    r, body = s.append("Election-1", [ev(), ev()], -1)
    ok(r.status == 201 and r.reason == "Created", "append: 201 Created")
    ok(r.getheader("Location") == "http://127.0.0.1:%d/streams/Election-1/0" % s.port,
       "append: Location names the first event written")
    ok(r.getheader("Content-Type", "").startswith("text/plain") and body == b"",
       "append: text/plain, empty body")
    r, _ = s.append("Election-1", [ev(), ev()], 1)
    ok(r.status == 201 and r.getheader("Location").endswith("/Election-1/2"),
       "append: 2-event batch after event 1 answers /2")
    r, body = s.append("Election-1", [ev()], 7)
    ok(r.status == 400 and r.reason == "Wrong expected EventNumber" and body == b"",
       "append: wrong expected version is 400 Wrong expected EventNumber, empty body")
    ok(r.getheader("Kurrent-CurrentVersion") == "3" and r.getheader("ES-CurrentVersion") == "3",
       "append: v25+ sends Kurrent-CurrentVersion and ES-CurrentVersion")
    r, _ = s.append("Election-new", [ev()], -4)
    ok(r.status == 400 and r.getheader("ES-CurrentVersion") == "-1",
       "append: -4 on a missing stream fails with CurrentVersion -1")
    r, _ = s.append("Election-new", [ev()], "abc")
    ok(r.status == 400 and "wrong format" in r.reason, "append: malformed expected version 400")
    r, _ = s.append("Election-new", [ev()], -5)
    ok(r.status == 400, "append: expected version below -4 is 400")
    r, _ = s.append("Election-new", [ev()], None, {"Kurrent-ExpectedVersion": "-1",
                                                  "ES-ExpectedVersion": "5"})
    ok(r.status == 201, "append: Kurrent-ExpectedVersion is read before ES-ExpectedVersion")
    r, _ = s.append("Election-k", [ev()], None, ctype="application/vnd.kurrent.events+json")
    ok(r.status == 201, "append: v25+ accepts application/vnd.kurrent.events+json")


def test_append_errors(s):
    r, body = s.append("Election-e", [])
    ok(r.status == 400, "append: empty array is 400")
    r, body = s.append("Election-e", [{"eventType": "T", "data": {}}])
    ok(r.status == 400 and b"eventId" in body, "append: missing eventId is 400 with a reason")
    r, _ = s.append("Election-e", [ev(eid="00000000-0000-0000-0000-000000000000")])
    ok(r.status == 400, "append: all-zero eventId is 400")
    r, _ = s.append("Election-e", [ev(etype="")])
    ok(r.status == 400, "append: empty eventType is 400")
    r, _ = s.append("Election-e", b"{not json")
    ok(r.status == 400, "append: body that is not JSON is 400")
    r, _ = s.append("Election-e", [ev(data={"x": "y" * (4 * 1024 * 1024)})])
    ok(r.status == 413, "append: event over 4 MiB is 413")
    r, _ = s.req("GET", "/streams/Election-e", None, {"Accept": ATOM})
    ok(r.status == 404, "append: failed batches wrote nothing")
    r, _ = s.append("Election-e", [ev()], None, ctype="text/plain")
    ok(r.status == 415, "append: unknown media type is 415")


def test_auth(s):
    r, _ = s.req("GET", "/streams/Election-1", None, {"Accept": ATOM}, auth=False)
    ok(r.status == 401 and r.getheader("WWW-Authenticate") == 'X-Basic realm="ESDB"',
       "auth: no credentials is 401 with WWW-Authenticate X-Basic realm=ESDB")
    bad = "Basic " + base64.b64encode(b"admin:nope").decode()
    r, _ = s.req("GET", "/streams/Election-1", None, {"Accept": ATOM, "Authorization": bad})
    ok(r.status == 401, "auth: bad password is 401")
    r, data = s.req("GET", "/info", auth=False)
    info = json.loads(data)
    ok(r.status == 200 and info["features"]["atomPub"] is True, "info: anonymous, atomPub true")


def test_idempotency(s):
    a, b, c = ev(), ev(), ev()
    r, _ = s.append("Election-i", [a, b], -1)
    r, _ = s.append("Election-i", [a, b], -1)
    ok(r.status == 201 and r.getheader("Location").endswith("/0"),
       "idempotent: same ids with -1 again is 201 at the original place")
    r, _ = s.append("Election-i", [b], 0)
    ok(r.status == 201 and r.getheader("Location").endswith("/1"),
       "idempotent: same id with version N again is 201 at N+1")
    r, _ = s.append("Election-i", [a, c], -1)
    ok(r.status == 400, "idempotent: partial match is 400")
    d = ev()
    for i in range(3):
        r, _ = s.append("Election-any", [d])
        ok(r.status == 201 and r.getheader("Location").endswith("/0"),
           "idempotent: same id with -2, post %d answers /0" % (i + 1))
    r, _ = s.append("Election-i", [b, c])
    ok(r.status == 400, "idempotent: -2 with first id found and the next not is 400")
    _, f = s.feed("/streams/Election-i/0/forward/10")
    ok(len(f["entries"]) == 2, "idempotent: nothing was written twice")


def test_reads(s):
    for i in range(5):
        s.append("Read-1", [ev(data={"i": i, "s": "\u00e9\u2713"}, metadata={"m": i})])
    r, _ = s.req("GET", "/streams/Read-1")
    ok(r.status == 406, "read: no Accept is 406")
    r, _ = s.req("GET", "/streams/Read-1", None, {"Accept": "*/*"})
    ok(r.status == 406, "read: Accept */* is 406")
    r, f = s.feed("/streams/Read-1/head/backward/2")
    ok(r.status == 200 and r.getheader("Content-Type").startswith(ATOM), "read: atom+json feed")
    ok([e["title"] for e in f["entries"]] == ["4@Read-1", "3@Read-1"],
       "read: backward entries newest first")
    lk = links(f)
    ok(lk == {"self": "Read-1", "first": "Read-1/head/backward/2", "last": "Read-1/0/forward/2",
              "next": "Read-1/2/backward/2", "previous": "Read-1/5/forward/2",
              "metadata": "Read-1/metadata"}, "read: backward head links")
    ok(f["headOfStream"] is True and f["author"]["name"] == "Kurrent", "read: head, author")
    etag = r.getheader("ETag")
    ok(etag and r.getheader("Cache-Control").startswith("max-age=0"), "read: head page ETag")
    r, _ = s.req("GET", "/streams/Read-1/head/backward/2", None,
                 {"Accept": ATOM, "If-None-Match": etag})
    ok(r.status == 304, "read: If-None-Match with the ETag is 304")
    r, f = s.feed("/streams/Read-1/1/backward/5")
    lk = links(f)
    ok("next" not in lk and "last" not in lk and lk["previous"] == "Read-1/2/forward/5"
       and f["headOfStream"] is False, "read: backward page reaching event 0")
    r, f = s.feed("/streams/Read-1/0/forward/2")
    lk = links(f)
    ok([e["title"] for e in f["entries"]] == ["1@Read-1", "0@Read-1"],
       "read: forward entries newest first")
    ok("next" not in lk and "last" not in lk and lk["previous"] == "Read-1/2/forward/2"
       and f["headOfStream"] is False, "read: forward page from 0")
    ok(r.getheader("Cache-Control") == "max-age=31536000, public", "read: full page cacheable")
    r, f = s.feed("/streams/Read-1/3/forward/4")
    lk = links(f)
    ok(lk["next"] == "Read-1/2/backward/4" and lk["last"] == "Read-1/0/forward/4"
       and lk["previous"] == "Read-1/5/forward/4" and f["headOfStream"] is True,
       "read: forward page hitting the end")
    r, f = s.feed("/streams/Read-1/5/forward/4")
    ok(f["entries"] == [] and "previous" not in links(f) and f["headOfStream"] is True,
       "read: forward past the end is empty, without previous")
    r, f = s.feed("/streams/Read-1")
    ok(len(f["entries"]) == 5 and "next" not in links(f), "read: /streams/{s} is head backward 20")
    r, f = s.feed("/streams/Read-1/3/2")
    ok([e["title"] for e in f["entries"]] == ["3@Read-1", "2@Read-1"], "read: /{from}/{n} backward")
    for bad in ("/streams/Read-1/0/forward/0", "/streams/Read-1/x/forward/2",
                "/streams/Read-1/head/backward/-1"):
        r, _ = s.feed(bad)
        ok(r.status == 400, "read: bad count or number is 400 (%s)" % bad)
    r, _ = s.feed("/streams/Nope-1/0/forward/2")
    ok(r.status == 404, "read: missing stream is 404")


def test_embed(s):
    s.append("Emb-1", [ev(data={"a": "\u00e9"}, metadata={"m": 1})])
    _, f = s.feed("/streams/Emb-1/0/forward/1")
    e = f["entries"][0]
    ok("eventId" not in e and "data" not in e and e["summary"] == "Tested", "embed: none")
    _, f = s.feed("/streams/Emb-1/0/forward/1?embed=content")
    c = f["entries"][0]["content"]
    ok(c["data"] == {"a": "\u00e9"} and c["eventType"] == "Tested" and c["eventNumber"] == 0,
       "embed=content: parsed data")
    _, f = s.feed("/streams/Emb-1/0/forward/1?embed=rich")
    e = f["entries"][0]
    ok(e["eventType"] == "Tested" and e["isJson"] is True and "data" not in e
       and e["positionEventNumber"] == 0 and e["positionStreamId"] == "Emb-1", "embed=rich")
    _, f = s.feed("/streams/Emb-1/0/forward/1?embed=BODY")
    e = f["entries"][0]
    ok(isinstance(e["data"], str) and json.loads(e["data"]) == {"a": "\u00e9"},
       "embed=body (any case): data is a string of JSON text")
    ok(json.loads(e["metaData"]) == {"m": 1} and e["isMetaData"] is True, "embed=body: metaData")
    _, f = s.feed("/streams/Emb-1/0/forward/1?embed=pretty")
    ok("\n" in f["entries"][0]["data"], "embed=pretty: re-indented")
    r, data = s.req("GET", "/streams/Emb-1/0", None, {"Accept": "application/json"})
    ok(r.status == 200 and json.loads(data) == {"a": "\u00e9"}, "single event as application/json")
    r, data = s.req("GET", "/streams/Emb-1/head", None,
                    {"Accept": "application/vnd.eventstore.event+json"})
    ok(json.loads(data)["eventStreamId"] == "Emb-1", "single event as event+json")
    r, _ = s.req("GET", "/streams/Emb-1/9", None, {"Accept": ATOM})
    ok(r.status == 404, "single missing event is 404")


def test_categories(s):
    s.append("Cat-a", [ev(data={"i": 0}), ev(data={"i": 1})])
    s.append("Dog-a", [ev()])
    s.append("Cat-%C3%A9", [ev(data={"i": 2})])
    s.append("nodash", [ev()])
    r, f = s.feed("/streams/%24ce-Cat/0/forward/10?embed=body")
    es = list(reversed(f["entries"]))
    ok(r.status == 200 and [e["positionEventNumber"] for e in es] == [0, 1, 2],
       "$ce: positionEventNumber counts the category stream")
    ok(all(e["positionStreamId"] == "$ce-Cat" and e["summary"] == "$>" for e in es),
       "$ce: resolved links keep summary $> and positionStreamId")
    ok([e["streamId"] for e in es] == ["Cat-a", "Cat-a", "Cat-\u00e9"]
       and [json.loads(e["data"])["i"] for e in es] == [0, 1, 2],
       "$ce: links resolved to the target events by default")
    ok(es[2]["id"].endswith("/streams/Cat-%C3%A9/0"), "$ce: entry id escapes the target name")
    r, f = s.feed("/streams/%24ce-Cat/0/forward/10?embed=tryharder",
                  {"ES-ResolveLinkTos": "false"})
    es = list(reversed(f["entries"]))
    ok([e["data"] for e in es] == ["0@Cat-a", "1@Cat-a", "0@Cat-\u00e9"]
       and es[0]["eventType"] == "$>", "$ce: ResolveLinkTos false shows the links")
    r, _ = s.feed("/streams/%24ce-Cat/0/forward/10", {"ES-ResolveLinkTos": "maybe"})
    ok(r.status == 400, "ResolveLinkTos other than true/false is 400")
    r, f = s.feed("/streams/$ce-Cat/0/forward/10")
    ok(r.status == 200 and len(f["entries"]) == 3, "$ce: unescaped $ routes too")
    _, f = s.feed("/streams/%24streams/0/forward/50?embed=tryharder",
                  {"ES-ResolveLinkTos": "false"})
    names = [e["data"].split("@", 1)[1] for e in reversed(f["entries"])]
    ok(set(["Cat-a", "Dog-a", "Cat-\u00e9", "nodash"]) <= set(names)
       and len(names) == len(set(names)), "$streams: one link per stream")
    r, _ = s.feed("/streams/%24ce-nodash/0/forward/10")
    ok(r.status == 404, "$ce: names without '-' are not categorised")
    s.req("DELETE", "/streams/Cat-a")
    _, f = s.feed("/streams/%24ce-Cat/0/forward/10?embed=body")
    es = list(reversed(f["entries"]))
    ok(len(es) == 3 and "eventId" not in es[0] and es[0]["title"] == "0@Cat-a"
       and es[2]["positionEventNumber"] == 2, "$ce: links to a deleted stream have no rich fields")


def test_long_poll(s):
    s.append("Poll-a", [ev()])
    t0 = time.monotonic()
    r, f = s.feed("/streams/%24ce-Poll/1/forward/5", {"ES-LongPoll": "1"})
    dt = time.monotonic() - t0
    ok(r.status == 200 and f["entries"] == [] and 0.9 <= dt < 3, "long poll: waits N s, empty")

    def later():
        time.sleep(0.3)
        Standin.req(s, "POST", "/streams/Poll-b", [ev()], {"Content-Type": EVENTS},
                    conn=http.client.HTTPConnection("127.0.0.1", s.port, timeout=10))
    th = threading.Thread(target=later)
    th.start()
    t0 = time.monotonic()
    r, f = s.feed("/streams/%24ce-Poll/1/forward/5?embed=body", {"Kurrent-LongPoll": "5"})
    dt = time.monotonic() - t0
    th.join()
    ok(len(f["entries"]) == 1 and dt < 3, "long poll: answers when an event arrives")
    r, _ = s.feed("/streams/%24ce-Poll/1/forward/5", {"ES-LongPoll": "0"})
    ok(r.status == 400, "long poll: 0 seconds is 400")


def test_delete(s):
    s.append("Del-s", [ev(), ev()])
    r, _ = s.req("DELETE", "/streams/Del-s", None, {"ES-ExpectedVersion": "0"})
    ok(r.status == 400 and r.getheader("ES-CurrentVersion") == "1",
       "delete: expected version honoured")
    r, _ = s.req("DELETE", "/streams/Del-s")
    ok(r.status == 204, "soft delete: 204")
    r, body = s.feed("/streams/Del-s/0/forward/5")
    ok(r.status == 404, "soft delete: then 404")
    r, _ = s.append("Del-s", [ev()], -4)
    ok(r.status == 400, "soft delete: -4 fails on a soft-deleted stream")
    r, _ = s.append("Del-s", [ev()], -1)
    ok(r.status == 201 and r.getheader("Location").endswith("/Del-s/2"),
       "soft delete: append recreates, numbering continues")
    _, f = s.feed("/streams/Del-s/0/forward/5")
    ok([e["title"] for e in f["entries"]] == ["2@Del-s"], "soft delete: old events stay gone")
    s.append("Del-h", [ev()])
    r, _ = s.req("DELETE", "/streams/Del-h", None, {"ES-HardDelete": "yes"})
    ok(r.status == 400, "hard delete: header other than true/false is 400")
    r, _ = s.req("DELETE", "/streams/Del-h", None, {"ES-HardDelete": "true"})
    ok(r.status == 204, "hard delete: 204")
    r, _ = s.feed("/streams/Del-h/0/forward/5")
    ok(r.status == 410, "hard delete: read is 410")
    r, _ = s.append("Del-h", [ev()], -1)
    ok(r.status == 410, "hard delete: append is 410")
    r, _ = s.req("DELETE", "/streams/Del-h")
    ok(r.status == 410, "hard delete: for ever")


def test_single_event_form(s):
    r, _ = s.req("POST", "/streams/Single-1", b'{"x":1}', {"Content-Type": "application/json",
                                                          "ES-EventType": "T"})
    loc = r.getheader("Location") or ""
    ok(r.status == 307 and "/streams/Single-1/incoming/" in loc, "single event without id: 307")
    r, _ = s.req("POST", loc.split(str(s.port), 1)[1], b'{"x":1}',
                 {"Content-Type": "application/json", "ES-EventType": "T"})
    ok(r.status == 201 and r.getheader("Location").endswith("/Single-1/0"),
       "single event: POST to the incoming URL is 201")
    r, _ = s.req("POST", "/streams/Single-1", b'{"x":1}', {"Content-Type": "application/json"})
    ok(r.status == 400, "single event without type: 400")


def test_subscriptions(s):
    comp = {"Accept": "application/vnd.eventstore.competingatom+json"}
    ops = "Basic " + base64.b64encode(b"ops:changeit").decode()
    r, _ = s.req("PUT", "/subscriptions/Sub-1/g", {"startFrom": 0},
                 {"Content-Type": "application/json", "Authorization": ops})
    ok(r.status == 401, "subscriptions: creating needs admin (ops is 401)")
    r, _ = s.req("PUT", "/subscriptions/Sub-1/g", {"startFrom": 0, "maxRetryCount": 1},
                 {"Content-Type": "application/json"})
    ok(r.status == 201, "subscriptions: PUT creates, 201")
    r, _ = s.req("PUT", "/subscriptions/Sub-1/g", {}, {"Content-Type": "application/json"})
    ok(r.status == 409, "subscriptions: PUT again is 409")
    r, _ = s.req("GET", "/subscriptions/Nope/g", None, comp)
    ok(r.status == 404, "subscriptions: missing group is 404")
    r, _ = s.req("GET", "/subscriptions/Sub-1/g/101", None, comp)
    ok(r.status == 400, "subscriptions: count over 100 is 400")
    a, b, c = ev(data={"n": 0}), ev(data={"n": 1}), ev(data={"n": 2})
    s.append("Sub-1", [a, b, c])
    r, data = s.req("GET", "/subscriptions/Sub-1/g/2?embed=body", None, comp)
    f = json.loads(data)
    rels = [l["relation"] for l in f["links"]]
    ok(r.status == 200 and [e["title"] for e in f["entries"]] == ["1@Sub-1", "0@Sub-1"]
       and all(e["retryCount"] == 0 for e in f["entries"]), "subscriptions: 2 messages")
    ok("ackAll" in rels and "nackAll" in rels and "previous" in rels,
       "subscriptions: feed has ackAll, nackAll, previous")
    ack_all = [l["uri"] for l in f["links"] if l["relation"] == "ackAll"][0]
    ok(ack_all.endswith("/ack?ids=%s,%s" % (a["eventId"], b["eventId"])),
       "subscriptions: ackAll names the ids")
    r, _ = s.req("POST", ack_all.split(str(s.port), 1)[1])
    ok(r.status == 202, "subscriptions: ack is 202")
    r, data = s.req("GET", "/subscriptions/Sub-1/g/5", None, comp)
    f = json.loads(data)
    ok([e["title"] for e in f["entries"]] == ["2@Sub-1"], "subscriptions: acked ones not again")
    r, _ = s.req("POST", "/subscriptions/Sub-1/g/nack/%s?action=retry" % c["eventId"])
    ok(r.status == 202, "subscriptions: nack retry is 202")
    r, data = s.req("GET", "/subscriptions/Sub-1/g/5", None, comp)
    f = json.loads(data)
    ok([e["retryCount"] for e in f["entries"]] == [1], "subscriptions: retried with retryCount 1")
    r, _ = s.req("POST", "/subscriptions/Sub-1/g/nack?ids=%s&action=retry" % c["eventId"])
    r, data = s.req("GET", "/subscriptions/Sub-1/g/5", None, comp)
    ok(json.loads(data)["entries"] == [], "subscriptions: parked after maxRetryCount")
    r, _ = s.req("POST", "/subscriptions/Sub-1/g", {"messageTimeoutMilliseconds": 200},
                 {"Content-Type": "application/json"})
    ok(r.status == 200, "subscriptions: POST updates")
    s.append("Sub-1", [ev()])
    r, data = s.req("GET", "/subscriptions/Sub-1/g/5", None, comp)
    time.sleep(0.3)
    r, data = s.req("GET", "/subscriptions/Sub-1/g/5", None, comp)
    f = json.loads(data)
    ok([e["retryCount"] for e in f["entries"]] == [1], "subscriptions: redelivered after timeout")
    r, _ = s.req("DELETE", "/subscriptions/Sub-1/g")
    ok(r.status == 200, "subscriptions: DELETE")
    r, _ = s.req("GET", "/subscriptions/Sub-1/g", None, comp)
    ok(r.status == 404, "subscriptions: gone after DELETE")


def test_es_generation():
    s = Standin("--header-generation", "es")
    try:
        s.append("Gen-1", [ev()])
        r, _ = s.append("Gen-1", [ev()], 5)
        ok(r.status == 400 and r.getheader("ES-CurrentVersion") == "0"
           and r.getheader("Kurrent-CurrentVersion") is None, "v24.10: only ES-CurrentVersion")
        r, _ = s.append("Gen-1", [ev()], None, {"Kurrent-ExpectedVersion": "7"})
        ok(r.status == 201, "v24.10: Kurrent-* request headers are ignored")
        r, _ = s.append("Gen-1", [ev()], None, ctype="application/vnd.kurrent.events+json")
        ok(r.status == 415, "v24.10: application/vnd.kurrent.events+json unknown")
        _, f = s.feed("/streams/Gen-1")
        ok(f["author"]["name"] == "EventStore" and "content" not in f["entries"][0],
           "v24.10: author EventStore, no null members")
        r, _ = s.req("GET", "/streams/Gen-1", None, {"Accept": "application/vnd.kurrent.atom+json"})
        ok(r.status == 406, "v24.10: application/vnd.kurrent.atom+json unknown")
    finally:
        s.stop()


def test_atompub_disabled():
    s = Standin("--atompub-disabled")
    try:
        r, _ = s.append("Off-1", [ev()])
        ok(r.status == 404, "AtomPub off: POST /streams is 404")
        r, _ = s.feed("/streams/Off-1")
        ok(r.status == 404, "AtomPub off: GET /streams is 404, like a missing stream")
        r, data = s.req("GET", "/info", auth=False)
        ok(json.loads(data)["features"]["atomPub"] is False, "AtomPub off: /info says so")
        r, _ = s.req("PUT", "/subscriptions/Off-1/g", {}, {"Content-Type": "application/json"})
        ok(r.status == 201, "AtomPub off: /subscriptions routes still exist")
    finally:
        s.stop()


def test_projections_disabled():
    s = Standin("--projections-disabled")
    try:
        s.append("Proj-1", [ev()])
        r, _ = s.feed("/streams/%24ce-Proj/0/forward/5")
        ok(r.status == 404, "projections off: no $ce- stream")
        r, data = s.req("GET", "/info", auth=False)
        ok(json.loads(data)["features"]["projections"] is False, "projections off: /info says so")
    finally:
        s.stop()


def test_faults():
    s = Standin()
    try:
        s.req("POST", "/_standin/faults", {"fail_next": 1, "status": 500}, auth=False)
        r, _ = s.feed("/streams/F-1")
        ok(r.status == 500, "faults: fail_next answers 500")
        r, _ = s.feed("/streams/F-1")
        ok(r.status == 404, "faults: then normal again")
        s.req("POST", "/_standin/faults", {"lose_next": 1}, auth=False)
        try:
            s.append("F-1", [ev()], -1)
            lost = False
        except (http.client.HTTPException, ConnectionError):
            lost = True
        s.conn.close()
        r, f = s.feed("/streams/F-1")
        ok(lost and r.status == 200 and len(f["entries"]) == 1,
           "faults: lose_next does the work and loses the answer")
    finally:
        s.stop()


def test_cli_faults():
    s = Standin("--fail-rate", "1.0")
    try:
        r, _ = s.req("GET", "/info", auth=False)
        ok(r.status == 500, "--fail-rate 1.0: every answer is 500")
    finally:
        s.stop()
    s = Standin("--delay", "400")
    try:
        t0 = time.monotonic()
        r, _ = s.req("GET", "/info", auth=False)
        ok(r.status == 200 and time.monotonic() - t0 >= 0.39, "--delay 400: answers 400 ms late")
    finally:
        s.stop()


def test_data_file():
    """--data: what was appended and deleted survives a kill -9 and a restart; a torn last
    line is dropped; without --data a restart forgets."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "standin.data")
        s = Standin("--data", path)
        ids = [str(uuid.uuid4()) for _ in range(3)]
        try:
            s.append("Persist-a", [ev("A", {"n": 1}, ids[0]), ev("B", {"n": 2}, ids[1])], -1)
            s.append("Persist-b", [ev("C", {"n": 3}, ids[2])], -1)
            s.append("Gone-x", [ev()], -1)
            r, _ = s.req("DELETE", "/streams/Gone-x")
            ok(r.status == 204, "--data: a delete is answered")
        finally:
            s.conn.close()
            s.proc.kill()
            s.proc.wait()
        with open(path, "ab") as f:
            f.write(b'{"op": "write", "stream": "Persist-a", "ev')  # a kill mid-write
        s = Standin("--data", path)
        try:
            _, fa = s.feed("/streams/Persist-a/0/forward/20?embed=body")
            got = [(e["eventId"], e["eventType"], e["eventNumber"], json.loads(e["data"]))
                   for e in (fa or {}).get("entries", [])]
            ok(sorted(got, key=lambda g: g[2]) == [(ids[0], "A", 0, {"n": 1}),
                                                    (ids[1], "B", 1, {"n": 2})],
               "--data: a stream's events, ids, numbers and data survive a kill -9")
            _, fc = s.feed("/streams/$ce-Persist/0/forward/20?embed=body")
            ok(fc is not None and len(fc["entries"]) == 3,
               "--data: the category stream is made again (3 links)")
            r, _ = s.req("GET", "/streams/Gone-x", headers={"Accept": ATOM})
            ok(r.status == 404, "--data: a deleted stream stays deleted")
            r, _ = s.append("Persist-a", [ev("D")], 1)
            ok(r.status == 201, "--data: appends go on after the torn line (expected version 1)")
            r, _ = s.append("Persist-a", [ev("A", {"n": 1}, ids[0])], -2)
            ok(r.status == 201 and r.getheader("Location", "").endswith("/Persist-a/0"),
               "--data: an idempotent retry after the restart finds the old event")
        finally:
            s.stop()
        s = Standin("--data", path)
        try:
            _, fa = s.feed("/streams/Persist-a/0/forward/20")
            ok(fa is not None and len(fa["entries"]) == 3,
               "--data: the append made after the torn line is kept too")
        finally:
            s.stop()
    s = Standin()
    try:
        r, _ = s.req("GET", "/streams/Persist-a", headers={"Accept": ATOM})
        ok(r.status == 404, "without --data a fresh stand-in is empty")
    finally:
        s.stop()


def main():
    s = Standin()
    try:
        for t in (test_append, test_append_errors, test_auth, test_idempotency, test_reads,
                  test_embed, test_categories, test_long_poll, test_delete,
                  test_single_event_form, test_subscriptions):
            try:
                t(s)
            except Exception as e:  # a crash is a failure, not a stop
                ok(False, "%s raised %r" % (t.__name__, e))
                s.conn.close()
    finally:
        s.stop()
    for t in (test_es_generation, test_atompub_disabled, test_projections_disabled, test_faults,
              test_cli_faults, test_data_file):
        try:
            t()
        except Exception as e:
            ok(False, "%s raised %r" % (t.__name__, e))
    print("1..%d" % len(results))
    for i, (good, name) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if good else "not ok", i, name))
    return 0 if all(g for g, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
