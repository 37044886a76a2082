#!/usr/bin/env python3
"""Open-loop HTTP load for bench-latency.sh: requests at a fixed rate whatever the answers do.

    open-loop.py URL RATE SECONDS MODE [TOKEN [SAMPLE [WARMUP]]]

MODE post: POST URL/elections (a new election each), and for one request in SAMPLE the
election is read back (GET URL/elections/ID until 200) to time when the change is visible: the
checks wait 2 ms apart, or 5 % of the time since the request was scheduled when that is longer,
so a figure is at most about 5 % late, and slow visibility does not make the checks a load of
their own (10 checks a second polled every 2 ms were thousands of GETs a second).  MODE get: GET URL/livez (the baseline: the same web server and program, no work).
Request i is scheduled at start + i/RATE and sent then on a free keep-alive connection (a new
one when all are busy, up to MAX_CONNECTIONS; past that it waits for one): the schedule never
waits for answers, and every latency counts from the scheduled time, so a slow answer cannot
hide the requests queued behind it.  With WARMUP, the rate runs that many seconds first, unmeasured
(a fresh stack is cold: connections, JIT, caches, empty tables), and SECONDS are measured after
it without a pause.  Prints one JSON
object: sent, answered, statuses, and p50/p90/p99/p99.9/max of the answers and of the visibility
(ms).
"""
import asyncio
import json
import sys
import time

MAX_CONNECTIONS = 256


class Pool:
    def __init__(self, host, port):
        self.host, self.port, self.idle, self.opened, self.live = host, port, [], 0, 0
        self.free = asyncio.Condition()

    async def request(self, method, path, headers, body=b""):
        async with self.free:
            await self.free.wait_for(lambda: self.idle or self.live < MAX_CONNECTIONS)
            conn = self.idle.pop() if self.idle else None
            if not conn:
                self.live += 1
        try:
            if not conn:
                conn = await asyncio.open_connection(self.host, self.port)
                self.opened += 1
            result = await self.exchange(conn, method, path, headers, body)
        except Exception:
            async with self.free:
                self.live -= 1
                self.free.notify()
            if conn:
                conn[1].close()
            raise
        async with self.free:
            if result[2]:  # the server closes it (nginx does every 1,000 requests)
                self.live -= 1
                conn[1].close()
            else:
                self.idle.append(conn)
            self.free.notify()
        return result[:2]

    async def exchange(self, conn, method, path, headers, body):
        r, w = conn
        head = "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n%s\r\n" % (
            method, path, self.host, len(body), "".join("%s: %s\r\n" % h for h in headers))
        w.write(head.encode() + body)
        status_line = await r.readline()
        status = int(status_line.split()[1])
        length, chunked, close = 0, False, False
        while True:
            line = await r.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode().partition(":")
            if k.lower() == "content-length":
                length = int(v)
            elif k.lower() == "transfer-encoding" and "chunked" in v:
                chunked = True
            elif k.lower() == "connection" and "close" in v.lower():
                close = True
        if chunked:
            data = b""
            while True:
                n = int((await r.readline()).strip(), 16)
                if n == 0:
                    await r.readline()
                    break
                data += await r.readexactly(n)
                await r.readline()
        else:
            data = await r.readexactly(length)
        return status, data, close


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p / 100.0 * len(values)))] * 1000, 2)


def summary(values):
    return {"n": len(values), "p50": pct(values, 50), "p90": pct(values, 90),
            "p99": pct(values, 99), "p99.9": pct(values, 99.9), "max": pct(values, 100)}


async def main(argv):
    url, rate, seconds, mode = argv[1], float(argv[2]), float(argv[3]), argv[4]
    token = argv[5] if len(argv) > 5 else ""
    sample = int(argv[6]) if len(argv) > 6 else 50
    warmup = float(argv[7]) if len(argv) > 7 else 0.0
    hostport, _, prefix = url.split("//", 1)[1].partition("/")
    host, port = hostport.split(":")
    prefix = "/" + prefix if prefix else ""
    pool = Pool(host, int(port))
    auth = [("Authorization", "Bearer " + token)] if token else []
    answers, visible, statuses, errors = [], [], {}, [0]

    async def read_back(eid, t_sched, measured):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status, _ = await pool.request("GET", "%s/elections/%s" % (prefix, eid), auth)
            if status == 200:
                if measured:
                    visible.append(time.monotonic() - t_sched)
                return
            await asyncio.sleep(max(0.002, 0.05 * (time.monotonic() - t_sched)))

    async def one(i, t_sched, measured):
        try:
            if mode == "get":
                status, _ = await pool.request("GET", prefix + "/livez", [])
            else:
                status, data = await pool.request(
                    "POST", prefix + "/elections",
                    auth + [("Content-Type", "application/json")],
                    json.dumps({"name": "bench %d" % i}).encode())
            if measured:
                answers.append(time.monotonic() - t_sched)
                statuses[status] = statuses.get(status, 0) + 1
            if mode == "post" and status == 202 and i % sample == 0:
                await read_back(json.loads(data)["election_id"], t_sched, measured)
        except Exception:  # a refused or broken connection: counted, not fatal
            if measured:
                errors[0] += 1

    tasks, skip, n = [], int(rate * warmup), int(rate * seconds)
    start = time.monotonic() + 0.1
    for i in range(skip + n):
        t_sched = start + i / rate
        delay = t_sched - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(i, t_sched, i >= skip)))
    lateness = time.monotonic() - (start + (skip + n - 1) / rate)
    await asyncio.gather(*tasks)
    print(json.dumps({"mode": mode, "rate": rate, "seconds": seconds, "warmup": warmup, "sent": n,
                      "answered": len(answers), "errors": errors[0], "statuses": statuses,
                      "connections": pool.opened, "schedule_lag_ms": round(lateness * 1000, 1),
                      "answer_ms": summary(answers), "visible_ms": summary(visible)}))


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.stderr.write(__doc__)
        sys.exit(2)
    asyncio.run(main(sys.argv))
