#!/usr/bin/env python3
"""Holds the configuration documents against the program's key table; TAP.

    check-config-docs.py DESCRIBE EXAMPLE MARKDOWN CONFIG_C

DESCRIBE is `pv-config-docs describe` (pv_config_describe: every key with
its kind, default and variable), EXAMPLE packaging/photovote.conf.example,
MARKDOWN docs/configuration.md, CONFIG_C lib/config.c (for the integer
ranges, which the description does not print).  Loading the example with
pv_config_load is test-config-docs.sh's part."""

import re
import sys


def parse_describe(path):
    lines = open(path).read().splitlines()
    keys = []
    if len(lines) % 3:
        raise ValueError("describe output is not in blocks of three lines")
    for i in range(0, len(lines), 3):
        head = re.match(r"^\[(\w+)\] (\w+)$", lines[i])
        body = re.match(r"^  (string|integer|boolean|one of) ?(\S*); default: (.*); "
                        r"variable: (\w+)( \(secret.*\))?$", lines[i + 1])
        if not head or not body:
            raise ValueError("cannot read: %r %r" % (lines[i], lines[i + 1]))
        default = body.group(3)
        keys.append({
            "section": head.group(1), "key": head.group(2), "kind": body.group(1),
            "choices": body.group(2), "default": "" if default == "(empty)" else default,
            "variable": body.group(4), "secret": bool(body.group(5)),
        })
    return keys


def parse_ini(path):
    """(section, key) -> list of values, in a plain INI reading."""
    values, section = {}, None
    for line in open(path):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^(\w+)\s*=\s*(.*)$", line)
        if not m:
            raise ValueError("not an INI line: %r" % line)
        values.setdefault((section, m.group(1)), []).append(m.group(2))
    return values


def main(argv):
    if len(argv) != 5:
        sys.stderr.write(__doc__)
        return 2
    describe, example, markdown, config_c = argv[1:]
    n, failed = 0, 0

    def check(name, problems):
        nonlocal n, failed
        n += 1
        if problems:
            failed += 1
            print("not ok %d - %s" % (n, name))
            for p in problems[:30]:
                print("#   %s" % p)
        else:
            print("ok %d - %s" % (n, name))

    keys = parse_describe(describe)
    check("the program describes its keys", [] if len(keys) > 10 else ["only %d keys" % len(keys)])
    ranges = {(m.group(1), m.group(2)): (m.group(3), m.group(4)) for m in re.finditer(
        r'INT\("(\w+)", "(\w+)", "[^"]*", (\d+), (\d+),', open(config_c).read())}
    check("every integer key has its range in lib/config.c",
          ["%s.%s" % (k["section"], k["key"]) for k in keys
           if k["kind"] == "integer" and (k["section"], k["key"]) not in ranges])

    # The example: every key, once, at its default; secrets show <key>_file.
    ini = parse_ini(example)
    text = open(example).read()
    p = []
    for k in keys:
        got = ini.get((k["section"], k["key"]))
        where = "[%s] %s" % (k["section"], k["key"])
        if not got:
            p.append("%s is not in the example" % where)
        elif len(got) > 1:
            p.append("%s is set %d times" % (where, len(got)))
        elif got[0] != k["default"]:
            p.append("%s = %r, the default is %r" % (where, got[0], k["default"]))
    check("the example sets every key once, to its default", p)
    known = {(k["section"], k["key"]) for k in keys}
    check("the example sets no unknown key",
          ["[%s] %s" % sk for sk in sorted(set(ini) - known)])
    check("the example shows the _file form of every secret",
          ["%s_file" % k["key"] for k in keys
           if k["secret"] and not re.search(r"^# Or: %s_file = " % k["key"], text, re.M)])
    p = []
    blocks = re.split(r"\n\s*\n", text)
    for k in keys:
        block = [b for b in blocks if re.search(r"^%s =" % re.escape(k["key"]), b, re.M)]
        if not any(re.search(r"^# \S", b, re.M) for b in block):
            p.append("[%s] %s has no comment" % (k["section"], k["key"]))
        elif k["kind"] == "integer" and (k["section"], k["key"]) in ranges:
            lo, hi = ranges[(k["section"], k["key"])]
            if not any("(%s to %s)" % (lo, hi) in re.sub(r"\n# ", " ", b) for b in block):
                p.append("[%s] %s: the comment lacks its range %s to %s" % (k["section"],
                                                                           k["key"], lo, hi))
    check("every key of the example has a comment, integers their range", p)

    # The reference: one table row per key under its section's heading.
    md = open(markdown).read()
    rows, section = {}, None
    for line in md.splitlines():
        m = re.match(r"^## \[(\w+)\]$", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^\| `(\w+)` \| (.*?) \| `(\w+)` \| (.*) \|$", line)
        if m and section:
            rows.setdefault((section, m.group(1)), []).append(m.groups())
    p = []
    for k in keys:
        where = "[%s] %s" % (k["section"], k["key"])
        got = rows.get((k["section"], k["key"]))
        if not got or len(got) > 1:
            p.append("%s: %d rows" % (where, len(got or [])))
            continue
        _, default, variable, meaning = got[0]
        want = "`%s`" % k["default"] if k["default"] else "(empty)"
        if default != want:
            p.append("%s: default %s, the program's %s" % (where, default, want))
        if variable != k["variable"]:
            p.append("%s: variable %s, the program's %s" % (where, variable, k["variable"]))
        if k["kind"] == "integer":
            lo, hi = ranges.get((k["section"], k["key"]), ("?", "?"))
            if "integer, %s to %s" % (lo, hi) not in meaning:
                p.append("%s: the range %s to %s is missing" % (where, lo, hi))
        if k["kind"] == "one of":
            for c in k["choices"].split("|"):
                if "`%s`" % c not in meaning:
                    p.append("%s: choice %s is missing" % (where, c))
        if k["secret"] and "%s_file" % k["key"] not in meaning:
            p.append("%s: secret without its _file form" % where)
    check("docs/configuration.md has every key with its default, variable and range", p)
    check("docs/configuration.md lists no unknown key",
          ["[%s] %s" % sk for sk in sorted(set(rows) - known)])
    print("1..%d" % n)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
