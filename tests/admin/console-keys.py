#!/usr/bin/env python3
"""Times photovote-admin's console answering keys, from outside, on a pseudo-terminal.

console-keys.py ADMIN N [KEY-BEFORE]: starts ADMIN (80x24, TERM=xterm) on a pty, waits for the
streams screen, optionally sends KEY-BEFORE (e.g. "r": a rebuild that may hang), then N times
sends "?" and waits for the help screen's text, then q (or Esc) and waits for the streams'
column heads.  Prints for each: count, median, 95th percentile and slowest time from the key's
write to the screen's answer arriving on the terminal, in milliseconds (Esc includes the
console's 25 ms ESC delay, which tells it from the start of a sequence).  Ends the console with
SIGTERM and prints how long it took to exit."""
import os, pty, select, signal, struct, sys, time, fcntl, termios

admin, n = sys.argv[1], int(sys.argv[2])
before = sys.argv[3] if len(sys.argv) > 3 else ""
pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "xterm"
    os.execv(admin, [admin])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
os.kill(pid, signal.SIGWINCH)


def wait_for(marker, limit=15.0):
    seen, t0 = b"", time.monotonic()
    while time.monotonic() - t0 < limit:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
            if marker in seen:
                return time.monotonic()
    sys.exit("console-keys: %r never showed" % marker)


wait_for(b"STREAM")
time.sleep(0.5)
if before:
    os.write(fd, before.encode())
    time.sleep(1.0)
for back, name in ((b"q", "? and q"), (b"\x1b", "? and Esc")):
    times = []
    for i in range(n):
        for key, marker in ((b"?", b"Keys on the"), (back, b"STREAM")):
            t0 = time.monotonic()
            os.write(fd, key)
            times.append((wait_for(marker) - t0) * 1000)
            time.sleep(0.05)
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    print("%s, %d keys: median %.1f ms, p95 %.1f ms, slowest %.1f ms"
          % (name, len(times), times[len(times) // 2], p95, times[-1]))
t0 = time.monotonic()
os.kill(pid, signal.SIGTERM)
_, status = os.waitpid(pid, 0)
print("SIGTERM to exit: %.1f ms, exit status %d" % ((time.monotonic() - t0) * 1000,
                                                     os.waitstatus_to_exitcode(status)))
