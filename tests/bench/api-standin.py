#!/usr/bin/env python3
"""A stand-in for the command API, for test-open-loop.sh: what open-loop needs to meet.

    api-standin.py PORT DELAY_MS VISIBLE_MS

POST /api/elections answers 202 after DELAY_MS with {"election_id": "<ULID-like>"} in a
chunked body; GET /api/elections/ID answers 404 until VISIBLE_MS after its POST, then 200;
GET /api/livez answers 200.  Every seventh answer says "Connection: close" and closes, as
nginx does after keepalive_requests.  Prints "ready" once listening.
"""
import http.server
import itertools
import json
import random
import sys
import threading
import time

PORT, DELAY, VISIBLE = int(sys.argv[1]), float(sys.argv[2]) / 1000, float(sys.argv[3]) / 1000
created, lock, answers = {}, threading.Lock(), itertools.count(1)
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def answer(self, status, body, chunked=False):
        close = next(answers) % 7 == 0
        head = "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n" % status
        if close:
            head += "Connection: close\r\n"
        if chunked:
            half = len(body) // 2
            data = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:half], body[half:]))
            data = (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + data + b"0\r\n\r\n"
        else:
            data = (head + "Content-Length: %d\r\n\r\n" % len(body)).encode() + body
        self.wfile.write(data)
        self.close_connection = close

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(DELAY)
        eid = "01" + "".join(random.choice(ALPHABET) for _ in range(24))
        with lock:
            created[eid] = time.monotonic()
        self.answer(202, json.dumps({"event_id": "e", "election_id": eid}).encode(), True)

    def do_GET(self):
        if self.path == "/api/livez":
            return self.answer(200, b'{"status":"ok"}')
        eid = self.path.rsplit("/", 1)[-1]
        with lock:
            t = created.get(eid)
        seen = t is not None and time.monotonic() - t >= VISIBLE
        self.answer(200 if seen else 404, b"{}")


server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("ready", flush=True)
server.serve_forever()
