#!/usr/bin/env python3
"""The hostile-request table: requests photovote.fcgi itself must refuse.

    hostile.py HOST PORT TOKEN           sends the table over FastCGI, prints TAP
    hostile.py --corpus DIR TOKEN        writes each request, and valid ones, as
                                         fuzz-request inputs (tests/fuzz/corpus-request)

Every case is sent straight to the program's FastCGI socket, with the
parameters nginx's fastcgi_params would pass, so that what is tested is the
program's answer and not a web server's (tests/fcgi/web.sh covers the web
servers).  Each must be answered with its 4xx status and error code, and
publish nothing: the program's own count of published messages (/metrics,
photovote_amqp_publishes_total) must not move.  After the table the server
must still answer /healthz 200 and accept a valid write, which publishes
(so the count above is shown to move when something is published).
"""
import json
import os
import socket
import struct
import sys

E = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
C = "01ARZ3NDEKTSV4RRFFQ69G5FAW"
K = "01ARZ3NDEKTSV4RRFFQ69G5FAX"
B = "01ARZ3NDEKTSV4RRFFQ69G5FAY"
JSON = "application/json"
BIG = 2048  # [http] body_limit of the test configuration (web.sh)


def j(o):
    return json.dumps(o).encode()


def deep(n):
    return b'{"name":' + b"[" * n + b"]" * n + b"}"


# (name, method, path, body, content type, extra params, status, code)
# path: PATH_INFO as the web server decoded it; "uri:..." gives REQUEST_URI
# without PATH_INFO (the program decodes it).  auth: a bearer token unless
# the extra params set HTTP_AUTHORIZATION (None: none at all).
CASES = [
    # bad JSON
    ("truncated JSON", "POST", "/elections", b'{"name":', JSON, {}, 400, "invalid_json"),
    ("JSON array body", "POST", "/elections", b'["x"]', JSON, {}, 400, "invalid_json"),
    ("JSON string body", "POST", "/elections", b'"x"', JSON, {}, 400, "invalid_json"),
    ("JSON number body", "POST", "/elections", b"5", JSON, {}, 400, "invalid_json"),
    ("JSON null body", "POST", "/elections", b"null", JSON, {}, 400, "invalid_json"),
    ("trailing garbage", "POST", "/elections", b'{"name":"a"} x', JSON, {}, 400, "invalid_json"),
    ("two objects", "POST", "/elections", b'{"name":"a"}{"name":"b"}', JSON, {}, 400,
     "invalid_json"),
    ("single quotes", "POST", "/elections", b"{'name':'a'}", JSON, {}, 400, "invalid_json"),
    ("comment in JSON", "POST", "/elections", b'{"name":"a" /* x */}', JSON, {}, 400,
     "invalid_json"),
    ("NaN", "PUT", "/elections/%s/ballots/%s/ratings/%s" % (E, B, K),
     b'{"competition_id":"%s","rating":NaN}' % C.encode(), JSON, {}, 400, "invalid_json"),
    ("whitespace only", "POST", "/elections", b"   \n", JSON, {}, 400, "invalid_json"),
    # nesting
    ("nested 33 deep", "POST", "/elections", deep(33), JSON, {}, 400, "invalid_json"),
    ("nested 1000 deep", "POST", "/elections", deep(1000)[:BIG], JSON, {}, 400, "invalid_json"),
    ("nested objects 40 deep", "POST", "/elections", b'{"a":' * 40 + b"1" + b"}" * 40, JSON, {},
     400, "invalid_json"),
    # huge numbers
    ("rating 1e400", "PUT", "/elections/%s/ballots/%s/ratings/%s" % (E, B, K),
     b'{"competition_id":"%s","rating":1e400}' % C.encode(), JSON, {}, 400, "invalid_json"),
    ("rating past int64", "PUT", "/elections/%s/ballots/%s/ratings/%s" % (E, B, K),
     b'{"competition_id":"%s","rating":99999999999999999999999}' % C.encode(), JSON, {}, 400,
     "invalid_json"),
    ("rating -2^63", "PUT", "/elections/%s/ballots/%s/ratings/%s" % (E, B, K),
     b'{"competition_id":"%s","rating":-9223372036854775808}' % C.encode(), JSON, {}, 400,
     "invalid_value"),
    ("rating 4.5", "PUT", "/elections/%s/ballots/%s/ratings/%s" % (E, B, K),
     b'{"competition_id":"%s","rating":4.5}' % C.encode(), JSON, {}, 400, "invalid_type"),
    ("rating 6", "PUT", "/elections/%s/ballots/%s/ratings/%s" % (E, B, K),
     b'{"competition_id":"%s","rating":6}' % C.encode(), JSON, {}, 400, "invalid_value"),
    ("rating as a string", "PUT", "/elections/%s/ballots/%s/ratings/%s" % (E, B, K),
     b'{"competition_id":"%s","rating":"5"}' % C.encode(), JSON, {}, 400, "invalid_type"),
    # invalid UTF-8 and NUL
    ("invalid UTF-8", "POST", "/elections", b'{"name":"\xff\xfe"}', JSON, {}, 400,
     "invalid_json"),
    ("overlong UTF-8 slash", "POST", "/elections", b'{"name":"\xc0\xaf"}', JSON, {}, 400,
     "invalid_json"),
    ("UTF-8 surrogate", "POST", "/elections", b'{"name":"\xed\xa0\x80"}', JSON, {}, 400,
     "invalid_json"),
    ("escaped lone surrogate", "POST", "/elections", b'{"name":"\\ud800"}', JSON, {}, 400,
     "invalid_json"),
    ("raw NUL byte in body", "POST", "/elections", b'{"name":"a\x00b"}', JSON, {}, 400,
     "invalid_json"),
    ("escaped NUL in a name", "POST", "/elections", b'{"name":"a\\u0000b"}', JSON, {}, 400,
     "invalid_json"),
    ("NUL before the body ends", "POST", "/elections", b'{"name":"a"}\x00', JSON, {}, 400,
     "invalid_json"),
    # the text rule
    ("C1 control in a name", "POST", "/elections", j({"name": "a\u009bb"}), JSON, {}, 400,
     "invalid_value"),
    ("bidi override in a name", "POST", "/elections", j({"name": "abc\u202egpj.exe"}), JSON, {},
     400, "invalid_value"),
    ("bidi isolate in a name", "POST", "/elections", j({"name": "a\u2066b"}), JSON, {}, 400,
     "invalid_value"),
    ("zero-width space in a name", "POST", "/elections", j({"name": "ad\u200bmin"}), JSON, {},
     400, "invalid_value"),
    ("BOM in a name", "POST", "/elections", j({"name": "\ufeffPhoto"}), JSON, {}, 400,
     "invalid_value"),
    ("ESC in a description", "PUT", "/elections/%s/description" % E,
     j({"description": "red \u001b[31m"}), JSON, {}, 400, "invalid_value"),
    ("CR in a description", "PUT", "/elections/%s/description" % E, j({"description": "a\rb"}),
     JSON, {}, 400, "invalid_value"),
    ("DEL in a description", "PUT", "/elections/%s/description" % E,
     j({"description": "a\u007fb"}), JSON, {}, 400, "invalid_value"),
    ("newline in a name", "POST", "/elections", j({"name": "a\nb"}), JSON, {}, 400,
     "invalid_value"),
    ("bidi override in an image caption", "PUT",
     "/elections/%s/competitions/%s/candidates/%s/image" % (E, C, K),
     j({"image_url": "https://example.org/a.jpg", "image_caption": "x\u0085y"}), JSON, {}, 400,
     "invalid_value"),
    # sizes
    ("body over the limit", "POST", "/elections", j({"name": "x" * (BIG + 10)}), JSON, {}, 413,
     "body_too_large"),
    ("declared length over the limit", "POST", "/elections", b'{"name":"a"}', JSON,
     {"CONTENT_LENGTH": str(10 ** 12)}, 413, "body_too_large"),
    ("name of 201 characters", "POST", "/elections", j({"name": "x" * 201}), JSON, {}, 400,
     "field_too_long"),
    ("description of 2001 characters", "PUT", "/elections/%s/description" % E,
     j({"description": "\u00e9" * 2001})[:BIG], JSON, {}, 400, "invalid_json"),
    # lengths that lie
    ("body shorter than its length", "POST", "/elections", b'{"name":"a"}', JSON,
     {"CONTENT_LENGTH": "40"}, 400, "invalid_body"),
    ("negative CONTENT_LENGTH", "POST", "/elections", b'{"name":"a"}', JSON,
     {"CONTENT_LENGTH": "-1"}, 400, "invalid_request"),
    ("CONTENT_LENGTH not a number", "POST", "/elections", b'{"name":"a"}', JSON,
     {"CONTENT_LENGTH": "12abc"}, 400, "invalid_request"),
    # media types
    ("text/plain", "POST", "/elections", b'{"name":"a"}', "text/plain", {}, 415,
     "unsupported_media_type"),
    ("form encoded", "POST", "/elections", b"name=a", "application/x-www-form-urlencoded", {},
     415, "unsupported_media_type"),
    ("multipart", "POST", "/elections", b'{"name":"a"}', "multipart/form-data; boundary=x", {},
     415, "unsupported_media_type"),
    ("JSON with a latin1 charset", "POST", "/elections", b'{"name":"a"}',
     "application/json; charset=latin1", {}, 415, "unsupported_media_type"),
    ("application/jsonp", "POST", "/elections", b'{"name":"a"}', "application/jsonp", {}, 415,
     "unsupported_media_type"),
    ("no Content-Type with a body", "POST", "/elections", b'{"name":"a"}', None, {}, 415,
     "unsupported_media_type"),
    # fields
    ("missing field", "POST", "/elections", b"{}", JSON, {}, 400, "missing_field"),
    ("unknown field", "POST", "/elections", j({"name": "a", "colour": "red"}), JSON, {}, 400,
     "unknown_field"),
    ("name is a number", "POST", "/elections", j({"name": 5}), JSON, {}, 400, "invalid_type"),
    ("name is null", "POST", "/elections", j({"name": None}), JSON, {}, 400, "invalid_type"),
    ("name is an object", "POST", "/elections", j({"name": {"x": 1}}), JSON, {}, 400,
     "invalid_type"),
    ("blank name", "POST", "/elections", j({"name": "   "}), JSON, {}, 400, "invalid_value"),
    ("duplicate keys", "POST", "/elections", b'{"name":"a","name":"b"}', JSON, {}, 400,
     "invalid_json"),
    ("duplicate keys, same value", "POST", "/elections", b'{"name":"a","name":"a"}', JSON, {},
     400, "invalid_json"),
    ("javascript: image URL", "PUT", "/elections/%s/competitions/%s/candidates/%s/image" % (E, C, K),
     j({"image_url": "javascript:alert(1)"}), JSON, {}, 400, "invalid_value"),
    ("bad email", "POST", "/elections/%s/voters" % E, j({"name": "a", "email": "a@"}), JSON, {},
     400, "invalid_value"),
    ("bad date", "POST", "/elections/%s/open" % E, j({"open_date": "yesterday"}), JSON, {}, 400,
     "invalid_value"),
    ("body id in lower case", "POST", "/elections", j({"name": "a", "election_id": E.lower()}),
     JSON, {}, 400, "invalid_id"),
    ("body names another election", "PUT", "/elections/%s/name" % E,
     j({"name": "a", "election_id": C}), JSON, {}, 400, "id_mismatch"),
    # ids in the path
    ("path id not a ULID", "PUT", "/elections/nope/name", j({"name": "a"}), JSON, {}, 400,
     "invalid_id"),
    ("path id too long", "PUT", "/elections/%s/name" % (E * 3), j({"name": "a"}), JSON, {}, 400,
     "invalid_id"),
    ("path id with a quote", "PUT", "/elections/%s'/name" % E[:25], j({"name": "a"}), JSON, {},
     400, "invalid_id"),
    ("path id with a NUL escape", "PUT", "uri:/elections/%s%%00/name" % E[:25], j({"name": "a"}),
     JSON, {}, 400, "invalid_request"),
    ("path with a bad escape", "PUT", "uri:/elections/%zz/name", j({"name": "a"}), JSON, {}, 400,
     "invalid_request"),
    ("path traversal", "PUT", "/elections/../elections/%s/name" % E, j({"name": "a"}), JSON, {},
     404, "not_found"),
    ("encoded traversal", "PUT", "uri:/elections/%2e%2e/name", j({"name": "a"}), JSON, {}, 400,
     "invalid_id"),
    ("double slash", "PUT", "/elections//name", j({"name": "a"}), JSON, {}, 404, "not_found"),
    ("trailing slash", "POST", "/elections/", j({"name": "a"}), JSON, {}, 404, "not_found"),
    ("unicode in an id", "PUT", "/elections/%s\u00c9/name" % E[:25], j({"name": "a"}), JSON, {},
     400, "invalid_id"),
    ("command id not a UUID", "GET", "/commands/not-a-uuid", b"", None, {}, 400, "invalid_id"),
    # methods
    ("GET a write route", "GET", "/elections/%s/name" % E, b"", None, {}, 405,
     "method_not_allowed"),
    ("PATCH", "PATCH", "/elections/%s/name" % E, j({"name": "a"}), JSON, {}, 405,
     "method_not_allowed"),
    ("lower-case method", "put", "/elections/%s/name" % E, j({"name": "a"}), JSON, {}, 405,
     "method_not_allowed"),
    ("TRACE", "TRACE", "/elections", b"", None, {}, 405, "method_not_allowed"),
    ("DELETE /elections", "DELETE", "/elections", b"", None, {}, 405, "method_not_allowed"),
    ("unknown path", "GET", "/nothing/here", b"", None, {}, 404, "not_found"),
    # headers
    ("Idempotency-Key with a space", "POST", "/elections", j({"name": "a"}), JSON,
     {"HTTP_IDEMPOTENCY_KEY": "a b"}, 400, "invalid_idempotency_key"),
    ("Idempotency-Key with CRLF", "POST", "/elections", j({"name": "a"}), JSON,
     {"HTTP_IDEMPOTENCY_KEY": "k\r\nX-Injected: 1"}, 400, "invalid_idempotency_key"),
    ("Idempotency-Key of 256 characters", "POST", "/elections", j({"name": "a"}), JSON,
     {"HTTP_IDEMPOTENCY_KEY": "k" * 256}, 400, "invalid_idempotency_key"),
    ("empty Idempotency-Key", "POST", "/elections", j({"name": "a"}), JSON,
     {"HTTP_IDEMPOTENCY_KEY": ""}, 400, "invalid_idempotency_key"),
    ("Idempotency-Key in UTF-8", "POST", "/elections", j({"name": "a"}), JSON,
     {"HTTP_IDEMPOTENCY_KEY": "cl\u00e9"}, 400, "invalid_idempotency_key"),
    ("Prefer wait with a bad body", "POST", "/elections", b"{", JSON,
     {"HTTP_PREFER": "wait=5"}, 400, "invalid_json"),
    ("header injection in a correlation id", "POST", "/elections", b"[]", JSON,
     {"HTTP_X_CORRELATION_ID": "c\r\nSet-Cookie: x=1"}, 400, "invalid_json"),
    # tokens
    ("no credentials", "POST", "/elections", j({"name": "a"}), JSON,
     {"HTTP_AUTHORIZATION": None}, 401, "unauthenticated"),
    ("unknown token", "POST", "/elections", j({"name": "a"}), JSON,
     {"HTTP_AUTHORIZATION": "Bearer pv_" + "A" * 43}, 401, "unauthenticated"),
    ("token too short", "POST", "/elections", j({"name": "a"}), JSON,
     {"HTTP_AUTHORIZATION": "Bearer pv_x"}, 401, "unauthenticated"),
    ("token with a quote", "POST", "/elections", j({"name": "a"}), JSON,
     {"HTTP_AUTHORIZATION": "Bearer pv_'; DROP TABLE api_tokens; --"}, 401, "unauthenticated"),
    ("Basic credentials", "POST", "/elections", j({"name": "a"}), JSON,
     {"HTTP_AUTHORIZATION": "Basic YTpi"}, 401, "unauthenticated"),
    ("empty Bearer", "POST", "/elections", j({"name": "a"}), JSON,
     {"HTTP_AUTHORIZATION": "Bearer "}, 401, "unauthenticated"),
    ("token in UTF-8", "POST", "/elections", j({"name": "a"}), JSON,
     {"HTTP_AUTHORIZATION": "Bearer pv_\u00e9\u00e9\u00e9"}, 401, "unauthenticated"),
]


# Requests the program accepts, for the fuzz-request corpus only (the web
# suite, tests/fcgi/web.sh, checks what each of them publishes).
V = "01ARZ3NDEKTSV4RRFFQ69G5FAZ"
SEEDS = [
    ("create election", "POST", "/elections", j({"name": "Photo 2026", "description": "d"}), JSON,
     {"HTTP_IDEMPOTENCY_KEY": "k-1", "HTTP_X_CORRELATION_ID": "corr-1"}),
    ("rename election", "PUT", "/elections/%s/name" % E, j({"name": "N2"}), JSON,
     {"HTTP_PREFER": "wait=0"}),
    ("describe election", "PUT", "/elections/%s/description" % E,
     j({"description": "line 1\nline 2\tend \u05e9\u05dc\u05d5\u05dd \u200f"}), JSON, {}),
    ("open", "POST", "/elections/%s/open" % E, j({"open_date": "2026-01-01T00:00:00Z"}), JSON, {}),
    ("close", "POST", "/elections/%s/close" % E, b"", None, {}),
    ("delete election", "DELETE", "/elections/%s" % E, b"", None, {}),
    ("add competition", "POST", "/elections/%s/competitions" % E, j({"name": "Birds"}), JSON, {}),
    ("add candidate", "POST", "/elections/%s/competitions/%s/candidates" % (E, C),
     j({"name": "Heron", "image_url": "https://example.org/h.jpg"}), JSON, {}),
    ("candidate image", "PUT", "/elections/%s/competitions/%s/candidates/%s/image" % (E, C, K),
     j({"image_url": "http://example.org/2.png", "image_caption": "c"}), JSON, {}),
    ("remove candidate", "DELETE", "/elections/%s/competitions/%s/candidates/%s" % (E, C, K), b"",
     None, {}),
    ("register voter", "POST", "/elections/%s/voters" % E,
     j({"name": "Alice", "email": "alice@example.org"}), JSON, {}),
    ("create ballot", "POST", "/elections/%s/ballots" % E, j({"voter_id": V}),
     "application/json; charset=utf-8", {}),
    ("rate", "PUT", "/elections/%s/ballots/%s/ratings/%s" % (E, B, K),
     j({"competition_id": C, "rating": 4}), JSON, {"HTTP_PREFER": "return=minimal, wait=\"2\""}),
    ("cast", "POST", "/elections/%s/ballots/%s/cast" % (E, B), b"", None, {}),
    ("command", "GET", "/commands/3f1c2a9e-8b7d-4c6e-9a5b-1d2e3f4a5b6c", b"", None, {}),
    ("election", "GET", "/elections/%s" % E, b"", None, {"HTTP_IF_NONE_MATCH": "\"7\""}),
    ("elections", "GET", "uri:/elections", b"", None, {"QUERY_STRING": "limit=2&continuation=abc"}),
    ("results", "GET", "/elections/%s/results" % E, b"", None, {}),
    ("healthz", "GET", "/healthz", b"", None, {}),
    ("metrics", "GET", "/metrics", b"", None, {}),
    ("openapi", "GET", "/openapi.json", b"", None, {}),
]


def params_of(case, token):
    name, method, path, body, ctype, extra, _, _ = case
    p = {"REQUEST_METHOD": method, "SCRIPT_NAME": "/api", "SERVER_PROTOCOL": "HTTP/1.1",
         "GATEWAY_INTERFACE": "CGI/1.1", "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000",
         "SERVER_NAME": "localhost", "SERVER_PORT": "80", "HTTP_HOST": "localhost",
         "QUERY_STRING": "", "HTTP_AUTHORIZATION": "Bearer " + token}
    if path.startswith("uri:"):
        p["REQUEST_URI"] = "/api" + path[4:]
    else:
        p["REQUEST_URI"] = "/api" + path
        p["PATH_INFO"] = path
    if ctype:
        p["CONTENT_TYPE"] = ctype
    p["CONTENT_LENGTH"] = str(len(body))
    for k, v in extra.items():
        if v is None:
            p.pop(k, None)
        else:
            p[k] = v
    return p


def pairs(params):
    out = b""
    for k, v in params.items():
        kb, vb = k.encode(), v.encode()
        for n in (len(kb), len(vb)):
            out += bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
        out += kb + vb
    return out


def record(kind, content, rid=1):
    return struct.pack(">BBHHBx", 1, kind, rid, len(content), 0) + content


def fcgi(host, port, params, body):
    """One request; returns (status, headers, body) of the program's answer."""
    s = socket.create_connection((host, port), timeout=15)
    msg = record(1, struct.pack(">HB5x", 1, 0))
    p = pairs(params)
    for i in range(0, len(p), 65535):
        msg += record(4, p[i:i + 65535])
    msg += record(4, b"")
    for i in range(0, len(body), 65535):
        msg += record(5, body[i:i + 65535])
    msg += record(5, b"")
    s.sendall(msg)
    out, buf = b"", b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 8:
            _, kind, _, clen, plen = struct.unpack(">BBHHB", buf[:7])
            if len(buf) < 8 + clen + plen:
                break
            content, buf = buf[8:8 + clen], buf[8 + clen + plen:]
            if kind == 6:
                out += content
    s.close()
    head, _, rbody = out.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode("latin1").split("\r\n"):
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    status = int(headers.get("status", "0").split()[0] or 0)
    return status, headers, rbody


def published(host, port, token):
    p = params_of(("m", "GET", "/metrics", b"", None, {}, 0, ""), token)
    _, _, body = fcgi(host, port, p, b"")
    for line in body.decode().splitlines():
        if line.startswith("photovote_amqp_publishes_total "):
            return int(float(line.split()[1]))
    return None


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--corpus":
        os.makedirs(sys.argv[2], exist_ok=True)
        token = sys.argv[3]
        seeds = [("seed " + c[0],) + c[1:] + (202, "") for c in SEEDS]
        remote = dict(SEEDS[0][5], HTTP_AUTHORIZATION=None, REMOTE_USER="alice@example.org")
        seeds.append(("remote user",) + SEEDS[0][1:5] + (remote, 202, ""))
        for i, case in enumerate(CASES + seeds):
            params = params_of(case, token)
            blob = b"".join(("%s=%s" % kv).encode() + b"\0" for kv in params.items())
            name = "hostile-%03d-%s" % (i, "".join(c if c.isalnum() else "-" for c in case[0]))
            if case[0] == "remote user":  # fuzz-request's switch to remote_user mode
                blob = b"#remote_user\0" + blob
            with open(os.path.join(sys.argv[2], name), "wb") as f:
                f.write(blob + b"\0" + case[3])
        return
    host, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    n = 0
    failed = 0

    def result(ok, text):
        nonlocal n, failed
        n += 1
        failed += 0 if ok else 1
        print("%s %d - %s" % ("ok" if ok else "not ok", n, text), flush=True)

    before = published(host, port, token)
    result(before is not None, "/metrics counts published messages (%s)" % before)
    for case in CASES:
        name, status_want, code_want = case[0], case[6], case[7]
        status, _, body = fcgi(host, port, params_of(case, token), case[3])
        try:
            code = json.loads(body)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = None
        after = published(host, port, token)
        ok = status == status_want and code == code_want and after == before
        result(ok, "%s: %d %s%s" % (name, status_want, code_want, ", nothing published" if ok
                                    else " (got %d %s, published %s -> %s: %r)"
                                    % (status, code, before, after, body[:200])))
        before = after
    status, _, body = fcgi(host, port, params_of(("h", "GET", "/healthz", b"", None, {}, 0, ""),
                                                token), b"")
    result(status == 200, "still healthy after the table: /healthz %d" % status)
    good = ("valid", "POST", "/elections", j({"name": "After the storm"}), JSON, {}, 202, "")
    status, _, body = fcgi(host, port, params_of(good, token), good[3])
    after = published(host, port, token)
    result(status == 202 and after == before + 1,
           "a valid write afterwards is accepted and published (%d, %s -> %s)"
           % (status, before, after))
    # The plan is the caller's (test-fcgi-hostile.sh adds its own cases).
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
