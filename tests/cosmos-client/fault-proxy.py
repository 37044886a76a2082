#!/usr/bin/env python3
"""A small fault-injecting HTTP proxy in front of the Cosmos DB stand-in.

    fault-proxy.py UPSTREAM_URL PORT_FILE

Listens on 127.0.0.1 (a free port, written to PORT_FILE once listening) and
forwards every request to UPSTREAM_URL (plain HTTP), except when a fault is
queued.  The stand-in implements neither 429 nor timeouts (protocols.md §8),
so the client's retry and timeout paths are tested through this.

Control (requests whose path starts with /__proxy/, never forwarded):
  POST /__proxy/faults  body: JSON list of faults, appended to the queue
  POST /__proxy/reset   empties the queue and zeroes the counters
  GET  /__proxy/stats   {"requests": n, "queued": m, "connections": k}: n counts
                        proxied requests, k client connections accepted

Each proxied request takes the first queued fault (if any).  A fault is an
object with:
  status          answer this status instead of forwarding (body: a JSON
                  error {"code", "message"} like the service's)
  retry_after_ms  with status: add the x-ms-retry-after-ms header
  forward         with status: forward first (the write lands), then answer
                  the status: a lost answer
  delay_ms        wait this long before handling (to provoke client timeouts)
  drop            close the connection without answering
  times           apply to this many requests in a row (default 1)
"""

import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length",
              "proxy-connection", "te", "trailer", "upgrade"}


class State:
    def __init__(self, upstream):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.lock = threading.Lock()
        self.queue = []
        self.requests = 0
        self.connections = 0

    def take(self):
        with self.lock:
            self.requests += 1
            if not self.queue:
                return None
            fault = self.queue[0]
            left = int(fault.get("times", 1)) - 1
            if left <= 0:
                self.queue.pop(0)
            else:
                fault = dict(fault)
                self.queue[0] = dict(fault, times=left)
            return fault


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fault-proxy"

    def setup(self):
        super().setup()
        st = self.server.state
        with st.lock:
            st.connections += 1

    def log_message(self, fmt, *args):
        sys.stderr.write("fault-proxy: " + (fmt % args) + "\n")

    def reply(self, status, body, headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if not any(n.lower() == "content-type" for n, _ in headers):
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def control(self, body):
        st = self.server.state
        if self.command == "POST" and self.path == "/__proxy/faults":
            faults = json.loads(body or b"[]")
            if not isinstance(faults, list):
                self.reply(400, {"message": "a JSON list of faults"})
                return
            with st.lock:
                st.queue.extend(faults)
            self.reply(200, {"queued": len(st.queue)})
        elif self.command == "POST" and self.path == "/__proxy/reset":
            with st.lock:
                st.queue.clear()
                st.requests = 0
                st.connections = 0
            self.reply(200, {})
        elif self.command == "GET" and self.path == "/__proxy/stats":
            with st.lock:
                self.reply(200, {"requests": st.requests, "queued": len(st.queue),
                                 "connections": st.connections})
        else:
            self.reply(404, {"message": "no such control"})

    def forward(self, body):
        up = self.server.state.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Host"] = up.netloc
        conn.request(self.command, self.path, body=body if body else None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        out = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
        conn.close()
        return resp.status, data, out

    def handle_any(self):
        try:
            self.handle_request()
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a timeout test): nothing to answer.
            self.close_connection = True

    def handle_request(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/__proxy/"):
            self.control(body)
            return
        fault = self.server.state.take()
        if fault and fault.get("delay_ms"):
            time.sleep(fault["delay_ms"] / 1000.0)
        if fault and fault.get("drop"):
            self.close_connection = True
            return
        if fault and fault.get("status"):
            if fault.get("forward"):
                self.forward(body)
            status = int(fault["status"])
            headers = []
            if "retry_after_ms" in fault:
                headers.append(("x-ms-retry-after-ms", str(fault["retry_after_ms"])))
            self.reply(status, {"code": "Injected", "message": "injected fault %d" % status},
                       headers)
            return
        try:
            status, data, headers = self.forward(body)
        except OSError as exc:
            self.reply(502, {"code": "BadGateway", "message": "upstream: %s" % exc})
            return
        self.reply(status, data, headers)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: fault-proxy.py UPSTREAM_URL PORT_FILE\n")
        return 2
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.state = State(sys.argv[1])
    tmp = sys.argv[2] + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    # Renamed into place so a reader never sees a half-written file.
    os.rename(tmp, sys.argv[2])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
