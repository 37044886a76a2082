#!/usr/bin/env python3
"""HTTP requests sent byte for byte, as curl would not (dot segments, a
malformed request line, a body shorter than its Content-Length...), all at
once (each waits for its own timeout, not for the others).

    raw-http.py TIMEOUT < BATCH

Each line of BATCH is "ID PORT FILE [shut]": the bytes of FILE are sent as
they are to 127.0.0.1:PORT and the connection stays open (a client that sent
a short body still waits for its answer), unless "shut" closes the sending
side after them (the client's end of the body).  An answer is read until the
server closes the connection, its Content-Length or last chunk is complete,
or TIMEOUT seconds pass.  Prints one JSON object a line: id, status (0 when
no answer came: the server closed the connection or never answered),
content_type, body (text, chunked coding removed, undecodable bytes
replaced).  A server that answers before it read the whole request (413) may
reset the connection meanwhile: what it sent before still counts.
"""
import json
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def parse(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status, headers = 0, {}
    parts = lines[0].split(b" ", 2) if lines and lines[0] else []
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        status = int(parts[1])
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return status, headers, body


def dechunk(body):
    """The payload of a chunked body, and whether its last chunk came."""
    out = b""
    while True:
        line, sep, rest = body.partition(b"\r\n")
        if not sep:
            return out, False
        try:
            size = int(line.split(b";")[0], 16)
        except ValueError:
            return out, False
        if size == 0:
            return out, True
        if len(rest) < size + 2:
            return out, False
        out, body = out + rest[:size], rest[size + 2:]


def complete(data):
    if b"\r\n\r\n" not in data:
        return False
    _, headers, body = parse(data)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return dechunk(body)[1]
    length = headers.get("content-length")
    return length is not None and length.isdigit() and len(body) >= int(length)


def one(line, timeout):
    ident, port, path, *rest = line.split()
    request = open(path, "rb").read()
    deadline = time.monotonic() + timeout
    data = b""
    try:
        with socket.create_connection(("127.0.0.1", int(port)), timeout=timeout) as s:
            try:
                s.sendall(request)
                if rest == ["shut"]:
                    s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            while not complete(data):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                s.settimeout(left)
                try:
                    chunk = s.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
                data += chunk
    except OSError:
        pass
    status, headers, body = parse(data)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = dechunk(body)[0]
    return json.dumps({"id": ident, "status": status,
                       "content_type": headers.get("content-type", ""),
                       "body": body.decode("utf-8", "replace")})


def main():
    timeout = float(sys.argv[1])
    lines = [line for line in sys.stdin.read().splitlines() if line.strip()]
    with ThreadPoolExecutor(max_workers=max(1, len(lines))) as pool:
        for answer in pool.map(lambda line: one(line, timeout), lines):
            print(answer)


if __name__ == "__main__":
    main()
