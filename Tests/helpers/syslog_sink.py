#!/usr/bin/env python3
"""A stand-in for syslogd: binds a Unix datagram socket at PATH and appends each message it
receives, as one line, to OUT (unbuffered). Ends after a message that contains "shutting down"
(swinetd on SIGTERM), or after SECONDS (default 30), whichever comes first.

usage: syslog_sink.py PATH OUT [SECONDS]"""
import socket
import sys
import time

path, out = sys.argv[1], sys.argv[2]
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
sink = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sink.bind(path)
deadline = time.monotonic() + seconds
with open(out, "ab", buffering=0) as lines:
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sink.settimeout(left)
        try:
            message = sink.recv(65536)
        except socket.timeout:
            break
        lines.write(message.replace(b"\n", b" ").rstrip(b"\0") + b"\n")
        if b"shutting down" in message:
            break
