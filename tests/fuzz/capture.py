#!/usr/bin/env python3
"""Writes seed corpora for fuzz-esdb and fuzz-cosmos from real exchanges.

    capture.py esdb OUTDIR             starts the EventStoreDB stand-in itself
    capture.py cosmos URL OUTDIR       the Cosmos DB stand-in at URL (http://)
    capture.py amqp OUTDIR             RabbitMQ property lists (see capture_amqp)

Each file is what the fuzz target reads (tests/fuzz/answers.h): a line
naming the client operation, then the server's raw answers to the requests
that operation makes, in order, separated by lines "--".  The requests sent
here are the ones lib/eventstore/esdb.c and lib/cosmos.c send for that
operation (same paths, headers and bodies), so the answers are the server's
own, status line, headers and body as they came.
"""
import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import uuid

ELECTION = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
STREAM = "Election-" + ELECTION


def raw(resp, body):
    """The answer as libcurl hands it over: status line, header lines, body."""
    head = "HTTP/1.1 %d %s\r\n" % (resp.status, resp.reason)
    for k, v in resp.getheaders():
        # The body below is whole: the chunking is libcurl's business.
        if k.lower() == "transfer-encoding":
            continue
        head += "%s: %s\r\n" % (k, v)
    return head.encode() + b"\r\n" + body


class Client:
    def __init__(self, host, port, auth=None):
        self.host, self.port, self.auth = host, port, auth

    def ask(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if self.auth:
            headers["Authorization"] = "Basic " + base64.b64encode(self.auth.encode()).decode()
        c = http.client.HTTPConnection(self.host, self.port, timeout=10)
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        c.request(method, path, body=data, headers=headers)
        r = c.getresponse()
        b = r.read()
        c.close()
        return r.status, raw(r, b), b


def write(outdir, name, op, answers):
    with open(os.path.join(outdir, name), "wb") as f:
        f.write(op.encode() + b"\n" + b"\n--\n".join(answers))


# ---- EventStoreDB -------------------------------------------------------

ATOM = {"Accept": "application/vnd.eventstore.atom+json"}


def esdb_events(n, first=0):
    return [
        {
            "eventId": str(uuid.uuid4()),
            "eventType": "ElectionCreated" if first + i == 0 else "ElectionNameChanged",
            "data": {"election_id": ELECTION, "name": "Photo %d" % (first + i)},
            "metadata": {"user": "alice@example.org", "admin": False,
                         "at": "2026-01-01T00:00:00.000Z"},
        }
        for i in range(n)
    ]


def esdb_append(c, expected, events):
    h = {"Content-Type": "application/vnd.eventstore.events+json",
         "ES-ExpectedVersion": str(expected), "Kurrent-ExpectedVersion": str(expected)}
    return c.ask("POST", "/streams/" + STREAM, events, h)


def capture_esdb(outdir):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.Popen([sys.executable, os.path.join(here, "..", "esdb-standin",
                                                          "esdb-standin.py"), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        c = Client("127.0.0.1", port, "admin:changeit")
        for _ in range(100):
            try:
                c.ask("GET", "/info")
                break
            except OSError:
                time.sleep(0.1)
        st, a, _ = c.ask("GET", "/streams/%s/0/forward/20?embed=body" % STREAM, None, ATOM)
        _, info, _ = c.ask("GET", "/info", None, {"Accept": "application/json"})
        write(outdir, "forward-missing-stream", "forward 0 20", [a, info])
        _, a, _ = esdb_append(c, -1, esdb_events(2))
        write(outdir, "append-created", "append -1 2", [a])
        _, a, _ = esdb_append(c, -1, esdb_events(2))
        write(outdir, "append-wrong-expected-version", "append -1 2", [a])
        _, a, _ = esdb_append(c, 1, esdb_events(3, 2))
        write(outdir, "append-at-1", "append 1 2", [a])
        _, a, _ = c.ask("GET", "/streams/%s/0/forward/20?embed=body" % STREAM, None, ATOM)
        write(outdir, "forward-page", "forward 0 20", [a])
        _, a, _ = c.ask("GET", "/streams/%s/1/forward/2?embed=body" % STREAM, None, ATOM)
        write(outdir, "forward-partial-page", "forward 1 2", [a])
        _, a, _ = c.ask("GET", "/streams/%s/head/backward/20?embed=body" % STREAM, None, ATOM)
        write(outdir, "backward-head", "backward -1 20", [a])
        _, a, _ = c.ask("GET", "/streams/%s/3/backward/2?embed=body" % STREAM, None, ATOM)
        write(outdir, "backward-page", "backward 3 2", [a])
        ce = dict(ATOM, **{"ES-ResolveLinkTos": "true", "Kurrent-ResolveLinkTos": "true"})
        _, a, _ = c.ask("GET", "/streams/%24ce-Election/0/forward/100?embed=body", None, ce)
        write(outdir, "category-page", "category 0 100", [a])
        _, a, _ = c.ask("GET", "/streams/%24ce-Election/2/forward/2?embed=body", None, ce)
        write(outdir, "category-partial-page", "category 2 2", [a])
        _, a, _ = c.ask("GET", "/streams/%24ce-Election/5/forward/100?embed=body", None, ce)
        write(outdir, "category-caught-up", "category 5 100", [a])
        answers = []
        _, a, _ = c.ask("GET", "/streams/%24streams/0/forward/200?embed=tryharder", None, ce)
        answers.append(a)
        _, a, _ = c.ask("GET", "/streams/%s/head/backward/1?embed=body" % STREAM, None, ATOM)
        answers.append(a)
        write(outdir, "list-streams", "list", answers)
        h = {"ES-ExpectedVersion": "2", "Kurrent-ExpectedVersion": "2"}
        _, a, _ = c.ask("DELETE", "/streams/" + STREAM, None, h)
        write(outdir, "delete-wrong-version", "delete 2", [a])
        h = {"ES-ExpectedVersion": "4", "Kurrent-ExpectedVersion": "4"}
        _, a, _ = c.ask("DELETE", "/streams/" + STREAM, None, h)
        write(outdir, "delete-soft", "delete 4", [a])
        _, a, _ = c.ask("GET", "/streams/%s/0/forward/20?embed=body" % STREAM, None, ATOM)
        write(outdir, "forward-soft-deleted", "forward 0 20", [a, info])
        h = {"ES-ExpectedVersion": "-2", "Kurrent-ExpectedVersion": "-2",
             "ES-HardDelete": "true", "Kurrent-HardDelete": "true"}
        _, a, _ = c.ask("DELETE", "/streams/" + STREAM, None, h)
        write(outdir, "delete-hard", "delete -2 2", [a])
        _, a, _ = c.ask("GET", "/streams/%s/0/forward/20?embed=body" % STREAM, None, ATOM)
        write(outdir, "forward-gone", "forward 0 20", [a])
        _, a, _ = esdb_append(c, -2, esdb_events(1))
        write(outdir, "append-gone", "append -2 1", [a])
    finally:
        proc.terminate()
        proc.wait()


# ---- Cosmos DB ----------------------------------------------------------

DB, COLL = "photovote", "elections"
DOC_ID = "election-" + ELECTION


def capture_cosmos(url, outdir):
    host, port = url.split("//", 1)[1].rstrip("/").split(":")
    c = Client(host, int(port))
    j = {"Content-Type": "application/json", "x-ms-version": "2018-12-31"}
    pk = dict(j, **{"x-ms-documentdb-partitionkey": json.dumps([ELECTION])})
    coll_path = "/dbs/%s/colls/%s" % (DB, COLL)
    c.ask("DELETE", "/dbs/" + DB, None, j)
    _, missing, _ = c.ask("GET", coll_path, None, j)
    _, db_created, _ = c.ask("POST", "/dbs", {"id": DB}, j)
    _, db_taken, _ = c.ask("POST", "/dbs", {"id": DB}, j)
    coll = {"id": COLL, "partitionKey": {"paths": ["/election_id"], "kind": "Hash"}}
    _, coll_created, _ = c.ask("POST", "/dbs/%s/colls" % DB, coll, j)
    _, coll_taken, _ = c.ask("POST", "/dbs/%s/colls" % DB, coll, j)
    _, ping, _ = c.ask("GET", coll_path, None, j)
    write(outdir, "open-missing-container", "read", [missing])
    write(outdir, "ensure-created", "ensure", [db_created, coll_created, ping])
    write(outdir, "ensure-existing", "ensure", [db_taken, coll_taken, ping])
    doc = {"id": DOC_ID, "election_id": ELECTION, "version": 3, "name": "Photo 2026",
           "competitions": []}
    _, a, _ = c.ask("GET", coll_path + "/docs/" + DOC_ID, None, pk)
    write(outdir, "read-missing", "read", [ping, a])
    quirk = dict(pk, **{"x-ms-documentdb-query-enablecrosspartition": "true"})
    _, a, _ = c.ask("GET", coll_path + "/docs/" + DOC_ID, None, quirk)
    write(outdir, "read-missing-quirk", "read", [ping, a])
    _, a, b = c.ask("POST", coll_path + "/docs", doc, pk)
    etag = json.loads(b).get("_etag", "")
    write(outdir, "create", "create", [ping, a])
    _, a, _ = c.ask("POST", coll_path + "/docs", doc, pk)
    write(outdir, "create-conflict", "create", [ping, a])
    _, a, _ = c.ask("GET", coll_path + "/docs/" + DOC_ID, None, pk)
    write(outdir, "read", "read", [ping, a])
    up = dict(pk, **{"x-ms-documentdb-is-upsert": "true", "If-Match": etag})
    _, a, b = c.ask("POST", coll_path + "/docs", dict(doc, version=4), up)
    etag = json.loads(b).get("_etag", etag)
    write(outdir, "upsert", "upsert", [ping, a])
    _, a, _ = c.ask("PUT", coll_path + "/docs/" + DOC_ID, dict(doc, version=5),
                    dict(pk, **{"If-Match": "\"stale\""}))
    write(outdir, "replace-precondition-failed", "replace", [ping, a])
    _, a, _ = c.ask("PUT", coll_path + "/docs/" + DOC_ID, dict(doc, version=5),
                    dict(pk, **{"If-Match": etag}))
    write(outdir, "replace", "replace", [ping, a])
    for i in range(3):
        c.ask("POST", coll_path + "/docs", dict(doc, id="ballot-%d" % i), pk)
    q = {"query": "SELECT * FROM c WHERE c.election_id = @pk",
         "parameters": [{"name": "@pk", "value": ELECTION}]}
    qh = dict(j, **{"Content-Type": "application/query+json", "x-ms-documentdb-isquery": "True",
                    "x-ms-documentdb-query-enablecrosspartition": "True",
                    "x-ms-max-item-count": "2"})
    st, a, _ = c.ask("POST", coll_path + "/docs", q, qh)
    write(outdir, "query-first-page", "query", [ping, a])
    token = [l.split(b": ", 1)[1] for l in a.split(b"\r\n") if l.lower().startswith(b"x-ms-continuation:")]
    if token:
        _, a2, _ = c.ask("POST", coll_path + "/docs", q,
                         dict(qh, **{"x-ms-continuation": token[0].decode()}))
        write(outdir, "query-next-page", "query", [ping, a2])
    # The stand-in never throttles: the service's 429 (REST reference:
    # x-ms-retry-after-ms, a JSON error body), then the page.
    throttled = (b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
                 b"x-ms-retry-after-ms: 8\r\nx-ms-substatus: 3200\r\n\r\n"
                 b'{"code":"429","message":"Request rate is large. More Request Units may be '
                 b'needed, so no changes were made. Please retry this request later."}')
    write(outdir, "query-throttled", "query", [ping, throttled, a])
    _, a, _ = c.ask("POST", coll_path + "/docs", {"query": "SELEC nonsense"}, qh)
    write(outdir, "query-bad-sql", "query", [ping, a])
    _, a, _ = c.ask("DELETE", coll_path + "/docs/" + DOC_ID, None, pk)
    write(outdir, "delete", "delete", [ping, a])
    _, a, _ = c.ask("DELETE", coll_path + "/docs/" + DOC_ID, None, pk)
    write(outdir, "delete-missing", "delete", [ping, a])
    c.ask("DELETE", "/dbs/" + DB, None, j)


# ---- RabbitMQ properties -----------------------------------------------
#
# fuzz-amqp reads the length of a content header's property list (two bytes),
# the list as it comes off the wire, the routing key, a NUL, the body.  These are the property
# sets photovote.fcgi publishes (lib/amqp_publisher.c), the appender's dead
# letters (lib/amqp_consumer.c dl_publish) and RabbitMQ's own dead-lettering
# (x-death, x-first-death-*), encoded as AMQP 0-9-1 does.

def shortstr(s):
    b = s.encode()
    return bytes([len(b)]) + b


def longstr(s):
    b = s.encode() if isinstance(s, str) else s
    return len(b).to_bytes(4, "big") + b


def field(v):
    if isinstance(v, bool):
        return b"t" + bytes([v])
    if isinstance(v, int):
        return b"l" + v.to_bytes(8, "big", signed=True)
    if isinstance(v, dict):
        return b"F" + table(v)
    if isinstance(v, list):
        items = b"".join(field(x) for x in v)
        return b"A" + len(items).to_bytes(4, "big") + items
    if isinstance(v, tuple):  # ("T", seconds)
        return b"T" + v[1].to_bytes(8, "big")
    return b"S" + longstr(v)


def table(d):
    body = b"".join(shortstr(k) + field(v) for k, v in d.items())
    return len(body).to_bytes(4, "big") + body


PROPS = [  # (bit, name, encoder)
    (15, "content_type", shortstr), (14, "content_encoding", shortstr), (13, "headers", table),
    (12, "delivery_mode", lambda v: bytes([v])), (11, "priority", lambda v: bytes([v])),
    (10, "correlation_id", shortstr), (9, "reply_to", shortstr), (8, "expiration", shortstr),
    (7, "message_id", shortstr), (6, "timestamp", lambda v: v.to_bytes(8, "big")),
    (5, "type", shortstr), (4, "user_id", shortstr), (3, "app_id", shortstr),
    (2, "cluster_id", shortstr),
]


def properties(p):
    flags, out = 0, b""
    for bit, name, enc in PROPS:
        if name in p:
            flags |= 1 << bit
            out += enc(p[name])
    return flags.to_bytes(2, "big") + out


def capture_amqp(outdir):
    eid = "3f1c2a9e-8b7d-4c6e-9a5b-1d2e3f4a5b6c"
    env = {"event_id": eid, "type": "ElectionCreated",
           "data": {"election_id": ELECTION, "name": "Photo 2026"},
           "metadata": {"user": "alice@example.org", "admin": False,
                        "at": "2026-01-01T00:00:00.000Z", "correlation_id": "corr-1",
                        "source": "127.0.0.1"}}
    body = json.dumps(env, separators=(",", ":")).encode()
    api = {"content_type": "application/json", "delivery_mode": 2, "correlation_id": "corr-1",
           "message_id": eid, "timestamp": 1767225600, "type": "ElectionCreated",
           "app_id": "photovote",
           "headers": {"correlation_id": "corr-1", "user": "alice@example.org",
                       "source": "127.0.0.1"}}
    appender_dl = {"content_type": "application/json", "delivery_mode": 2,
                   "correlation_id": "corr-1", "message_id": eid, "timestamp": 1767225600,
                   "type": "ElectionCreated",
                   "headers": {"x-photovote-reason": "ElectionCreated: field \"name\" is missing",
                               "x-photovote-queue": "photovote.appender",
                               "x-photovote-routing-key": ELECTION}}
    death = {"count": 1, "reason": "rejected", "queue": "photovote.appender",
             "time": ("T", 1767225601), "exchange": "photovote.events",
             "routing-keys": [ELECTION]}
    broker_dl = dict(api, headers=dict(api["headers"], **{
        "x-death": [death], "x-first-death-exchange": "photovote.events",
        "x-first-death-queue": "photovote.appender", "x-first-death-reason": "rejected",
        "x-last-death-exchange": "photovote.events", "x-last-death-queue": "photovote.appender",
        "x-last-death-reason": "rejected"}))
    cases = {
        "api-message": (api, ELECTION, body),
        "appender-dead-letter": (appender_dl, ELECTION, body),
        "appender-dead-letter-no-key": (appender_dl, "", b"not json at all"),
        "broker-dead-letter": (broker_dl, ELECTION, body),
        "bare-message": ({}, "", b"{}"),
        "all-properties": (dict(api, content_encoding="gzip", priority=5, reply_to="amq.rabbitmq.reply-to",
                                expiration="60000", user_id="guest", cluster_id="c1"), ELECTION, body),
    }
    for name, (p, key, b) in cases.items():
        with open(os.path.join(outdir, name), "wb") as f:
            raw_props = properties(p)
            f.write(len(raw_props).to_bytes(2, "big") + raw_props + key.encode() + b"\0" + b)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "esdb":
        os.makedirs(sys.argv[2], exist_ok=True)
        capture_esdb(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "cosmos":
        os.makedirs(sys.argv[3], exist_ok=True)
        capture_cosmos(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "amqp":
        os.makedirs(sys.argv[2], exist_ok=True)
        capture_amqp(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
