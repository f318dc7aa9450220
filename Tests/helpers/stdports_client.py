#!/usr/bin/env python3
"""Client for swinetd's builtins on their standard ports (1, 7, 9, 13, 19, 37), run inside a
private network namespace by NamespaceTests.swift.

usage: stdports_client.py HOST

Prints one line per check, "ok NAME" or "FAIL NAME: why", then "ALL OK" when every check passed;
exits 1 if any failed. Byte-exact: echo must return exactly what was sent, chargen's first 200
lines must match RFC 864's ring, daytime/time must be within 2 s of now (the daemon runs with
TZ=UTC), UDP replies must come from the port asked.
"""
import socket
import sys
import time

HOST = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
FAMILY = socket.AF_INET6 if ":" in HOST else socket.AF_INET
DEADLINE = 5.0
failures = []


def check(name, condition, why=""):
    if condition:
        print(f"ok {name}")
    else:
        print(f"FAIL {name}: {why}")
        failures.append(name)


def tcp(port, payload=b"", half_close=True, limit=None):
    """Connect, send, optionally shut down writing, read to EOF (or `limit` bytes)."""
    s = socket.socket(FAMILY, socket.SOCK_STREAM)
    s.settimeout(DEADLINE)
    s.connect((HOST, port))
    if payload:
        s.sendall(payload)
    if half_close:
        s.shutdown(socket.SHUT_WR)
    data = b""
    eof = False
    try:
        while limit is None or len(data) < limit:
            chunk = s.recv(65536)
            if not chunk:
                eof = True
                break
            data += chunk
    except (socket.timeout, ConnectionResetError) as error:
        print(f"  (port {port}: {error!r})")
    s.close()
    return data, eof


def udp(port, payload=b"x", source_port=0, timeout=1.0):
    s = socket.socket(FAMILY, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((HOST, source_port))
    s.settimeout(timeout)
    s.sendto(payload, (HOST, port))
    try:
        data, sender = s.recvfrom(65536)
    except socket.timeout:
        data, sender = None, None
    s.close()
    return data, sender


RING = bytes(range(32, 127))


def chargen_line(n):
    start = n % 95
    return (RING + RING)[start:start + 72] + b"\r\n"


def daytime_candidates():
    now = int(time.time())
    return {time.strftime("%a %b %e %H:%M:%S %Y\r\n", time.gmtime(t)).encode() for t in range(now - 2, now + 3)}


def time_ok(data):
    if data is None or len(data) != 4:
        return False
    value = int.from_bytes(data, "big")
    now = (int(time.time()) + 2208988800) % 2**32
    return abs(((value - now + 2**31) % 2**32) - 2**31) <= 2


# TCP echo: every byte value.
payload = bytes(range(256)) * 64 + b"\x00\xff\x00"
data, eof = tcp(7, payload)
check("tcp echo 7", data == payload and eof, f"got {len(data)} bytes, eof={eof}")

# TCP discard.
data, eof = tcp(9, b"discard me" * 1000)
check("tcp discard 9", data == b"" and eof, f"got {data[:40]!r} eof={eof}")

# TCP daytime.
data, eof = tcp(13, half_close=False)
check("tcp daytime 13", data in daytime_candidates() and eof, f"got {data!r}")

# TCP chargen: first 200 lines.
expected = b"".join(chargen_line(n) for n in range(200))
data, _ = tcp(19, half_close=False, limit=len(expected))
check("tcp chargen 19", data[: len(expected)] == expected,
      f"first difference at byte {next((i for i, (a, b) in enumerate(zip(data, expected)) if a != b), len(data))}")

# TCP time.
data, eof = tcp(37, half_close=False)
check("tcp time 37", time_ok(data) and eof, f"got {data!r}")

# UDP echo / daytime / time / chargen / discard.
data, sender = udp(7, payload[:1000])
check("udp echo 7", data == payload[:1000] and sender and sender[1] == 7, f"got {data!r:.60} from {sender}")
data, _ = udp(13)
check("udp daytime 13", data in daytime_candidates(), f"got {data!r}")
data, _ = udp(37)
check("udp time 37", time_ok(data), f"got {data!r}")
data, _ = udp(19)
lines_ok = (data is not None and 0 < len(data) <= 512 and len(data) % 74 == 0
            and all(data[i:i + 74] in {chargen_line(n) for n in range(95)} for i in range(0, len(data), 74)))
check("udp chargen 19", lines_ok, f"got {len(data) if data else None} bytes")
data, _ = udp(9, timeout=0.3)
check("udp discard 9", data is None, f"got {data!r}")

# The UDP loop guard: no answer to a reserved source port.
data, _ = udp(7, b"from 1019", source_port=1019, timeout=0.5)
check("udp echo ignores source port 1019", data is None, f"got {data!r}")

# tcpmux on port 1.
data, eof = tcp(1, b"HELP\r\n")
check("tcpmux 1 HELP", data == b"hello\r\n" and eof, f"got {data!r}")
data, eof = tcp(1, b"hello\r\n")
report = dict(line.split("=", 1) for line in data[5:].decode(errors="replace").split("\n") if "=" in line)
uid = report.get("Uid", "").split()
check("tcpmux 1 +hello", data.startswith(b"+Go\r\n") and uid[:1] == ["65534"] and data.endswith(b"end\n"),
      f"got {data[:80]!r}")
data, eof = tcp(1, b"nosuch\r\n")
check("tcpmux 1 unknown", data == b"-Service name not found\r\n", f"got {data!r}")

if failures:
    print(f"{len(failures)} FAILED: {', '.join(failures)}")
    sys.exit(1)
print("ALL OK")
