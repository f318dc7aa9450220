#!/usr/bin/env python3
"""Client for the UDP GSO checks of swinetd's echo builtin, run inside a private network namespace
(in_netns.sh, which passes the daemon's pid in SWINETD_PID) by BuiltinThroughputTests.swift.

usage: udp_gso_client.py PORT

For 127.0.0.1 and ::1: stops the daemon (SIGSTOP), queues a burst from one socket, resumes it,
and checks every reply byte for byte and in order. The namespace's own UDP counters
(/proc/net/snmp, snmp6) tell how many datagrams the daemon handed to the kernel: a run of equal
replies to one sender must leave as one GSO send. Then lo's MTU is lowered below the echo size:
GSO must be refused by the kernel and every reply still arrive (sent one by one, fragmented).
Prints "ok NAME" / "FAIL NAME: why" lines, then "ALL OK"; exits 1 if any check failed.
"""
import os
import signal
import socket
import subprocess
import sys
import time

PORT = int(sys.argv[1])
PID = int(os.environ["SWINETD_PID"])
failures = []


def check(name, condition, why=""):
    print(("ok " if condition else "FAIL ") + name + ("" if condition else ": " + why))
    if not condition:
        failures.append(name)


def out_datagrams(family):
    """The namespace's count of UDP datagrams sent (per GSO send, not per segment)."""
    if family == socket.AF_INET:
        lines = [l.split() for l in open("/proc/net/snmp") if l.startswith("Udp:")]
        return int(lines[1][lines[0].index("OutDatagrams")])
    for line in open("/proc/net/snmp6"):
        name, value = line.split()
        if name == "Udp6OutDatagrams":
            return int(value)
    raise RuntimeError("no Udp6OutDatagrams")


def queued_at_daemon():
    """Bytes (kernel accounting) waiting in the daemon's receive queues on PORT (/proc/net/udp, udp6)."""
    total = 0
    for line in list(open("/proc/net/udp"))[1:] + list(open("/proc/net/udp6"))[1:]:
        fields = line.split()
        if fields[1].endswith(":%04X" % PORT):
            total += int(fields[4].split(":")[1], 16)
    return total


def wait_until_queued(timeout=3.0):
    """Waits until the burst sits in the daemon's queue: loopback delivery can be deferred to
    ksoftirqd on a loaded machine, so the queue must stop growing (checked 50 ms apart)."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        now = queued_at_daemon()
        if now > 0 and now == last:
            return
        last = now
        time.sleep(0.05)


def burst(host, payloads):
    """Sends payloads while the daemon is stopped; returns (replies, datagrams the daemon sent)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.connect((host, PORT))
    s.settimeout(2)
    before = out_datagrams(family)
    os.kill(PID, signal.SIGSTOP)
    try:
        for p in payloads:
            s.send(p)
        wait_until_queued()
    finally:
        os.kill(PID, signal.SIGCONT)
    replies = []
    try:
        while len(replies) < len(payloads):
            replies.append(s.recv(65536))
    except socket.timeout:
        pass
    time.sleep(0.1)
    sent_by_daemon = out_datagrams(family) - before - len(payloads)
    s.close()
    return replies, sent_by_daemon


def numbered(i, size):
    return (b"%06d" % i + bytes([65 + i % 26]) * size)[:size]


def expect(host, name, payloads, sends_wanted):
    """One stopped-daemon burst: every reply whole and in order, and the daemon's send count."""
    replies, sends = burst(host, payloads)
    check(f"{host} {name}: replies whole and in order", replies == payloads,
          f"{len(replies)} replies, sizes {[len(r) for r in replies]}")
    check(f"{host} {name}: {sends_wanted} send(s)", sends == sends_wanted, f"{sends} sends")


for host in ["127.0.0.1", "::1"]:
    expect(host, "24 equal echoes, one GSO send", [numbered(i, 200) for i in range(24)], 1)
    # A shorter one ends a run (and belongs to it); an empty one stands alone.
    expect(host, "runs split at a short and an empty datagram",
           [numbered(i, 300) for i in range(5)] + [b"short", b""] + [numbered(i, 300) for i in range(5, 9)], 3)
    # Three 30,000-byte echoes: two fit in one GSO send (65,507 bytes at most), the third alone.
    expect(host, "large echoes, at most 65,507 bytes per send", [numbered(i, 30000) for i in range(3)], 2)

# Segments larger than the path MTU: the kernel refuses GSO (EMSGSIZE); the daemon sends the run
# datagram by datagram, which IP fragments as it always did.
subprocess.run(["ip", "link", "set", "lo", "mtu", "1400"], check=True)
for host in ["127.0.0.1", "::1"]:
    expect(host, "echoes over the MTU, one send each", [numbered(i, 3000) for i in range(6)], 6)

if failures:
    sys.exit(1)
print("ALL OK")
