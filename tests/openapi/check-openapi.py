#!/usr/bin/env python3
"""Holds fcgi/openapi.json against the program; prints TAP.

    check-openapi.py static DOC ROUTES FIELDS SRCDIR
        DOC     the OpenAPI document
        ROUTES  output of `photovote.fcgi --list-routes`
        FIELDS  output of tests/openapi/pv-openapi-fields (the domain's
                field spec of every event type)
        SRCDIR  the source tree, read for the error codes the program
                answers (fcgi/*.c) and the domain's rule words

    check-openapi.py statuses DOC METRICS
        METRICS a GET /metrics answer taken after driving requests: every
                (route, status) the program answered must be documented
                for that route; "unmatched" answers are 404 and 405.

Only the Python standard library is used."""

import glob
import json
import re
import sys

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def check(self, name, problems):
        """problems: a list of strings; the check passes when it is empty."""
        self.n += 1
        if problems:
            self.failed += 1
            print("not ok %d - %s" % (self.n, name))
            for p in problems[:40]:
                print("#   %s" % p)
            if len(problems) > 40:
                print("#   ... and %d more" % (len(problems) - 40))
        else:
            print("ok %d - %s" % (self.n, name))

    def done(self):
        print("1..%d" % self.n)
        return 1 if self.failed else 0


def pointer(doc, ref):
    """Resolves a local JSON pointer ("#/a/b"); KeyError when it does not."""
    if not ref.startswith("#/"):
        raise KeyError("not a local reference: " + ref)
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(part)]
        else:
            node = node[part]
    return node


def deref(doc, node):
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        node = pointer(doc, node["$ref"])
        seen += 1
        if seen > 20:
            raise KeyError("reference loop")
    return node


def all_refs(node, where="#"):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield where, v
            else:
                yield from all_refs(v, where + "/" + k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from all_refs(v, "%s/%d" % (where, i))


def operations(doc):
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                yield path, method, op


def structure_problems(doc):
    p = []
    if not isinstance(doc, dict):
        return ["the document is not a JSON object"]
    if not re.match(r"^3\.\d+\.\d+$", str(doc.get("openapi", ""))):
        p.append("openapi is not a 3.x.y version string")
    info = doc.get("info")
    if not isinstance(info, dict) or not all(isinstance(info.get(k), str) and info.get(k)
                                             for k in ("title", "version")):
        p.append("info needs title and version strings")
    if not isinstance(doc.get("paths"), dict) or not doc["paths"]:
        p.append("paths must be a non-empty object")
        return p
    schemes = doc.get("components", {}).get("securitySchemes", {})
    for req in doc.get("security", []):
        for name in req:
            if name not in schemes:
                p.append("security names an undefined scheme %s" % name)
    opids = set()
    for path, item in doc["paths"].items():
        if not path.startswith("/"):
            p.append("path %s does not start with /" % path)
        for method in item:
            if method not in HTTP_METHODS + ("parameters", "summary", "description", "servers"):
                p.append("%s: unknown key %s" % (path, method))
    for path, method, op in operations(doc):
        where = "%s %s" % (method.upper(), path)
        opid = op.get("operationId")
        if not opid or opid in opids:
            p.append("%s: missing or duplicate operationId" % where)
        opids.add(opid)
        responses = op.get("responses")
        if not isinstance(responses, dict) or not responses:
            p.append("%s: no responses" % where)
            continue
        for code, r in responses.items():
            if code != "default" and not re.match(r"^[1-5](\d\d|XX)$", code):
                p.append("%s: bad response code %s" % (where, code))
            try:
                r = deref(doc, r)
            except (KeyError, ValueError, IndexError):
                continue  # reported by the reference check
            if not isinstance(r.get("description"), str):
                p.append("%s %s: a response needs a description" % (where, code))
        for req in op.get("security", []):
            for name in req:
                if name not in schemes:
                    p.append("%s: undefined security scheme %s" % (where, name))
        # Path template parameters and declared path parameters agree.
        declared = set()
        for prm in op.get("parameters", []) + item_params(doc, path):
            try:
                prm = deref(doc, prm)
            except (KeyError, ValueError, IndexError):
                continue
            if prm.get("in") not in ("path", "query", "header", "cookie") or not prm.get("name"):
                p.append("%s: a parameter needs name and a valid in" % where)
            if prm.get("in") == "path":
                if prm.get("required") is not True:
                    p.append("%s: path parameter %s must be required" % (where, prm["name"]))
                declared.add(prm["name"])
        template = set(re.findall(r"\{([^}]+)\}", path))
        if template != declared:
            p.append("%s: path parameters %s declared as %s" % (where, sorted(template),
                                                                 sorted(declared)))
    return p


def item_params(doc, path):
    return doc["paths"][path].get("parameters", [])


def route_key(method, pattern):
    """Placeholder names do not matter for equality of routes."""
    return "%s %s" % (method.upper(), re.sub(r"\{[^}]+\}", "{}", pattern))


def read_routes(path):
    routes = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 5:
                raise ValueError("bad --list-routes line: %r" % line)
            method, pattern, event, gen, now = parts
            routes.append({"method": method, "pattern": pattern,
                           "event": None if event == "-" else event,
                           "generate": None if gen == "-" else gen,
                           "now": None if now == "-" else now})
    return routes


def read_fields(path):
    fields, limits = {}, {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] == "limits":
                it = iter(parts[1:])
                for k, v in zip(it, it):
                    limits[k] = v
                continue
            event, name, kind, flag = parts
            fields.setdefault(event, []).append((name, kind, flag))
    return fields, limits


def schema_props(doc, schema):
    """Properties, required and additionalProperties of an object schema,
    following $ref and allOf."""
    schema = deref(doc, schema)
    props, required, additional = {}, set(), schema.get("additionalProperties", True)
    for part in schema.get("allOf", []):
        p2, r2, _ = schema_props(doc, part)
        props.update(p2)
        required |= r2
    props.update(schema.get("properties", {}))
    required |= set(schema.get("required", []))
    return props, required, additional


def flat(doc, schema):
    """A property schema with its $ref/allOf parts merged into one dict."""
    schema = deref(doc, schema)
    out = {}
    for part in schema.get("allOf", []):
        out.update(flat(doc, part))
    out.update({k: v for k, v in schema.items() if k != "allOf"})
    return out


def body_problems(doc, routes, fields, limits):
    p = []
    for r in routes:
        if not r["event"]:
            continue
        where = "%s %s" % (r["method"], r["pattern"])
        op = doc["paths"].get(r["pattern"], {}).get(r["method"].lower())
        if op is None:
            continue  # reported by the route check
        spec = fields.get(r["event"])
        if not spec:
            p.append("%s: the domain has no event type %s" % (where, r["event"]))
            continue
        content = deref(doc, op.get("requestBody", {})).get("content", {})
        if "application/json" not in content:
            p.append("%s: no application/json request body" % where)
            continue
        props, required, additional = schema_props(doc, content["application/json"]["schema"])
        if additional is not False:
            p.append("%s: the body must refuse unknown fields (additionalProperties false)"
                     % where)
        in_path = set()
        for prm in re.findall(r"\{([^}]+)\}", r["pattern"]):
            opp = [deref(doc, x) for x in op.get("parameters", [])]
            desc = " ".join(x.get("description", "") for x in opp if x.get("name") == prm)
            m = re.search(r"the (\w+_id)", desc)
            if not m:
                p.append("%s: path parameter %s does not name its field" % (where, prm))
                continue
            in_path.add(m.group(1))
        names = {n for n, _, _ in spec}
        if set(props) != names:
            p.append("%s: body fields %s, the domain's %s" % (where, sorted(props), sorted(names)))
        want_required = {n for n, _, flag in spec if flag in ("required", "nullable")}
        want_required -= in_path | {r["generate"], r["now"]}
        if required != want_required:
            p.append("%s: required %s, the program requires %s" % (where, sorted(required),
                                                                     sorted(want_required)))
        for name, kind, flag in spec:
            if name not in props:
                continue
            s = flat(doc, props[name])
            w = "%s: field %s" % (where, name)
            nullable = bool(s.get("nullable"))
            if nullable != (flag in ("optional", "nullable")):
                p.append("%s: nullable is %s, the domain says %s" % (w, nullable, flag))
            if kind == "ULID":
                if s.get("pattern") != "^[0-7][0-9A-HJKMNP-TV-Z]{25}$" or s.get("maxLength") != 26:
                    p.append("%s: not the Ulid schema" % w)
            elif kind == "RATING":
                lo, hi = limits["RATING"].split("..")
                if (s.get("type"), s.get("minimum"), s.get("maximum")) != ("integer", int(lo),
                                                                         int(hi)):
                    p.append("%s: rating must be an integer %s..%s" % (w, lo, hi))
            elif kind == "DATE":
                if s.get("type") != "string" or s.get("format") != "date-time":
                    p.append("%s: must be a date-time string" % w)
            elif kind in limits:
                if s.get("type") != "string" or s.get("maxLength") != int(limits[kind]):
                    p.append("%s: maxLength %s, the domain's %s" % (w, s.get("maxLength"),
                                                                   limits[kind]))
                if kind == "NAME" and s.get("minLength") != 1:
                    p.append("%s: a name is non-empty (minLength 1)" % w)
            else:
                p.append("%s: unknown kind %s" % (w, kind))
    return p


def error_codes(doc):
    """status -> set of error codes documented for it, and problems."""
    by_status, p = {}, []

    def add(code, resp, where):
        resp = deref(doc, resp)
        if not code.startswith(("4", "5")):
            return
        codes = resp.get("x-error-codes")
        schema = resp.get("content", {}).get("application/json", {}).get("schema")
        if code == "503" and schema == {"$ref": "#/components/schemas/Health"}:
            return  # /healthz names what is down in its own body
        if not codes:
            p.append("%s %s: no x-error-codes" % (where, code))
            return
        if schema != {"$ref": "#/components/schemas/Error"}:
            p.append("%s %s: the body is not the Error schema" % (where, code))
        by_status.setdefault(int(code), set()).update(codes)

    for path, method, op in operations(doc):
        for code, resp in op.get("responses", {}).items():
            add(code, resp, "%s %s" % (method.upper(), path))
    # 405 cannot be attached to undeclared methods: an extension says it.
    add("405", doc["x-undeclared-method-response"], "x-undeclared-method-response")
    add("404", doc["components"]["responses"]["NotFound"], "NotFound")
    return by_status, p


def web_error_problems(doc, srcdir):
    """The web servers' error files (fcgi/web-errors/STATUS.json) against
    x-web-server-errors: the same statuses, each with its code and message."""
    p = []
    documented = doc.get("x-web-server-errors", {})
    files = {}
    for path in sorted(glob.glob(srcdir + "/fcgi/web-errors/*.json")):
        status = path.rsplit("/", 1)[1][:-len(".json")]
        try:
            body = json.load(open(path))
            files[status] = (body["error"]["code"], body["error"]["message"])
            if set(body) != {"error"} or set(body["error"]) != {"code", "message"}:
                p.append("%s: not exactly {error: {code, message}}" % path)
        except (ValueError, KeyError, TypeError) as e:
            p.append("%s: not an Error body (%s)" % (path, e))
    if not files:
        p.append("no files in fcgi/web-errors")
    for status in sorted(set(files) | set(documented)):
        if status not in documented:
            p.append("%s: a file but not in x-web-server-errors" % status)
        elif status not in files:
            p.append("%s: documented but no file" % status)
        else:
            resp = documented[status]
            if resp.get("x-error-codes") != [files[status][0]]:
                p.append("%s: code %s in the file, %s documented"
                         % (status, files[status][0], resp.get("x-error-codes")))
            if resp.get("description") != files[status][1]:
                p.append("%s: the description is not the file's message" % status)
    return p


def source_codes(srcdir):
    """(status, code, where) the program answers, read from its source."""
    out = []
    for path in sorted(glob.glob(srcdir + "/fcgi/*.c")):
        text = open(path).read()
        for m in re.finditer(r'pv_http_error\(\s*[&\w>.-]+,\s*(\d{3}),\s*"([a-z_]+)"', text):
            out.append((int(m.group(1)), m.group(2), path))
        if re.search(r"pv_field_error_name\(", text):
            event_c = open(srcdir + "/lib/domain/event.c").read()
            for w in re.findall(r'\[PV_FIELD_ERR_\w+\]\s*=\s*"([a-z_]+)"', event_c):
                if w != "none":
                    out.append((400, w, "lib/domain/event.c (via %s)" % path))
    election_c = open(srcdir + "/lib/domain/election.c").read()
    kind_status = {"STATE": 409, "VALUE": 422, "AUTHORIZATION": 403}
    for kind, word in re.findall(r'refuse\(\s*v,\s*PV_VERDICT_(\w+),\s*"([a-z_]+)"', election_c):
        out.append((kind_status[kind], word, "lib/domain/election.c (verdict rule)"))
    return out


def cmd_static(doc_path, routes_path, fields_path, srcdir):
    tap = Tap()
    raw = open(doc_path, "rb").read()
    try:
        doc = json.loads(raw.decode("utf-8"))
        parse = []
    except (UnicodeDecodeError, ValueError) as e:
        doc, parse = None, ["not valid JSON: %s" % e]
    tap.check("the document is valid JSON", parse)
    if doc is None:
        return tap.done()
    tap.check("the document is ASCII (embedded as a C string)",
              [] if all(b < 0x80 for b in raw) else ["non-ASCII bytes"])

    bad_refs = []
    for where, ref in all_refs(doc):
        try:
            pointer(doc, ref)
        except (KeyError, ValueError, IndexError):
            bad_refs.append("%s: %s does not resolve" % (where, ref))
    tap.check("every $ref resolves", bad_refs)
    if bad_refs:
        return tap.done()
    tap.check("OpenAPI 3 structure (version, info, paths, operations, parameters)",
              structure_problems(doc))

    routes = read_routes(routes_path)
    program = {route_key(r["method"], r["pattern"]) for r in routes}
    documented = {route_key(m, pth) for pth, m, _ in operations(doc)}
    tap.check("every route of the program is documented",
              ["undocumented: " + k for k in sorted(program - documented)])
    tap.check("every documented route is in the program's table",
              ["not a route: " + k for k in sorted(documented - program)])
    tap.check("routes are documented under the program's own patterns",
              ["%s %s: no such path in the document" % (r["method"], r["pattern"])
               for r in routes if r["pattern"] not in doc["paths"]])

    fields, limits = read_fields(fields_path)
    tap.check("request bodies list the domain's fields, requirements and limits",
              body_problems(doc, routes, fields, limits))

    by_status, p = error_codes(doc)
    tap.check("every error response uses the Error schema and lists its codes", p)
    missing = []
    for status, code, where in source_codes(srcdir):
        if code not in by_status.get(status, set()):
            missing.append("%d %s (%s)" % (status, code, where))
    tap.check("every status and error code in the source is documented", missing)
    tap.check("the web servers' error files are documented in x-web-server-errors",
              web_error_problems(doc, srcdir))

    write_problems = []
    for r in routes:
        if not r["event"]:
            continue
        op = doc["paths"].get(r["pattern"], {}).get(r["method"].lower(), {})
        codes = set(op.get("responses", {}))
        want = {"202", "400", "401", "409", "413", "415", "422", "503"}
        want.add("201" if r["generate"] else "200")
        if not want <= codes:
            write_problems.append("%s %s: missing %s" % (r["method"], r["pattern"],
                                                         sorted(want - codes)))
        loc = deref(doc, op.get("responses", {}).get("202", {})).get("headers", {})
        if "Location" not in loc:
            write_problems.append("%s %s: 202 without Location" % (r["method"], r["pattern"]))
    tap.check("writes document 202 with Location, the verdicts of Prefer: wait and the errors "
              "table", write_problems)
    return tap.done()


def cmd_statuses(doc_path, metrics_path):
    tap = Tap()
    doc = json.load(open(doc_path))
    seen = {}
    for line in open(metrics_path):
        m = re.match(r'^photovote_http_requests_total\{route="([^"]*)",status="(\d+)"\} (\d+)',
                     line)
        if m and int(m.group(3)) > 0:
            seen.setdefault(m.group(1), set()).add(m.group(2))
    tap.check("the metrics list answered requests", [] if seen else ["no requests counted"])
    problems = []
    for route, statuses in sorted(seen.items()):
        if route == "unmatched":
            extra = statuses - {"404", "405"}
            if extra:
                problems.append("unmatched paths answered %s" % sorted(extra))
            continue
        method, pattern = route.split(" ", 1)
        op = doc["paths"].get(pattern, {}).get(method.lower())
        if op is None:
            problems.append("%s: answered but not documented" % route)
            continue
        for s in sorted(statuses - set(op.get("responses", {}))):
            problems.append("%s answered %s, not documented" % (route, s))
        print("# %s: %s" % (route, " ".join(sorted(statuses))))
    tap.check("every status the program answered is documented for its route", problems)
    return tap.done()


def main(argv):
    if len(argv) == 6 and argv[1] == "static":
        return cmd_static(*argv[2:])
    if len(argv) == 4 and argv[1] == "statuses":
        return cmd_statuses(*argv[2:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
