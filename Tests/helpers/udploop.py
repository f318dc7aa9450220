#!/usr/bin/env python3
"""UDP loop recipe (security.md section 3, item 1), run inside a private network namespace where
swinetd serves the UDP builtins on their standard ports (echo 7, discard 9, daytime 13,
chargen 19, time 37), IPv4 and IPv6.

For each (family, source port, destination port) it sends ONE datagram from a raw socket (so the
source port can be anything, including another builtin's port or the destination itself) and
counts UDP datagrams delivered in this namespace over WINDOW seconds (/proc/net/snmp InDatagrams,
/proc/net/snmp6 Udp6InDatagrams). A loop shows as thousands; a guarded daemon as 1 (the spoofed
datagram itself). Before that, a control exchange from an ordinary port must be answered, so a
dead daemon cannot pass.

usage: udploop.py [WINDOW]      prints `v4 19->7 datagrams=N` lines, then `DONE`
exit status: 0, or 2 when the control exchange failed
"""
import socket
import struct
import sys
import time

WINDOW = float(sys.argv[1]) if len(sys.argv) > 1 else 0.25
CASES = [(19, 7), (7, 7), (13, 7), (37, 7), (7, 19), (19, 19), (7, 13), (7, 37), (53, 7), (1019, 19), (9, 7)]


def delivered(family):
    if family == 6:
        for line in open("/proc/net/snmp6"):
            if line.startswith("Udp6InDatagrams"):
                return int(line.split()[1])
        raise SystemExit("no Udp6InDatagrams")
    rows = [line.split() for line in open("/proc/net/snmp") if line.startswith("Udp:")]
    return int(rows[1][rows[0].index("InDatagrams")])


def control(family):
    host = "::1" if family == 6 else "127.0.0.1"
    s = socket.socket(socket.AF_INET6 if family == 6 else socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    try:
        s.sendto(b"control", (host, 7))
        data, _ = s.recvfrom(100)
        return data == b"control"
    except OSError:
        return False
    finally:
        s.close()


def raw_send(family, sport, dport, payload=b"X"):
    packet = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    if family == 6:
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_UDP)
        s.setsockopt(socket.IPPROTO_IPV6, 7, 6)  # IPV6_CHECKSUM at offset 6: the kernel fills it in
        s.sendto(packet, ("::1", 0))
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
        s.sendto(packet, ("127.0.0.1", 0))  # IPv4 UDP checksum 0: none
    s.close()


def main():
    for family in (4, 6):
        if not control(family):
            print(f"v{family} control exchange with echo failed", flush=True)
            sys.exit(2)
    time.sleep(0.1)
    for family in (4, 6):
        for sport, dport in CASES:
            before = delivered(family)
            raw_send(family, sport, dport)
            time.sleep(WINDOW)
            after = delivered(family)
            print(f"v{family} {sport}->{dport} datagrams={after - before}", flush=True)
    print("DONE", flush=True)


main()
