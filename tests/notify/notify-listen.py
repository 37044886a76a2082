#!/usr/bin/env python3
"""A service manager's end of the sd_notify protocol, for tests: binds the
Unix datagram socket PATH and appends every message it receives to LOG, one
line per assignment (READY=1, STATUS=..., STOPPING=1), until killed.

    notify-listen.py PATH LOG

The programs find the socket through $NOTIFY_SOCKET, as under systemd with
Type=notify.  "listening" on standard output once the socket is bound."""
import os
import socket
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: notify-listen.py PATH LOG")
    path, log = sys.argv[1], sys.argv[2]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    print("listening", flush=True)
    with open(log, "a", buffering=1) as out:
        while True:
            msg = sock.recv(4096).decode("utf-8", "replace")
            for line in msg.split("\n"):
                if line:
                    out.write(line + "\n")
                    out.flush()
                    os.fsync(out.fileno())


if __name__ == "__main__":
    main()
