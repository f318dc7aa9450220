#!/usr/bin/env python3
"""A test service for swinetd, run as an external server with the connection on fd 0.

usage: xinetd_service.py MODE
  sockopt   print the connection's TCP_NODELAY and SO_KEEPALIVE as `nodelay=N` / `keepalive=N`,
            then `end`, and exit (shows what swinetd set on the accepted socket)
  count     read fd 0 to EOF, then print `count=N sha256=HEX` and exit (a server that writes only
            after the client's half-close, for relays)
"""
import hashlib
import os
import socket
import sys


def main() -> int:
    mode = sys.argv[1] if len(sys.argv) > 1 else "sockopt"
    if mode == "sockopt":
        # Duplicate fd 0 so closing the Python socket object leaves fd 0 alone.
        s = socket.socket(fileno=os.dup(0))
        nodelay = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        keepalive = s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        os.write(1, f"nodelay={1 if nodelay else 0}\nkeepalive={1 if keepalive else 0}\nend\n".encode())
        return 0
    if mode == "count":
        digest = hashlib.sha256()
        total = 0
        while True:
            chunk = os.read(0, 65536)
            if not chunk:
                break
            total += len(chunk)
            digest.update(chunk)
        os.write(1, f"count={total} sha256={digest.hexdigest()}\n".encode())
        return 0
    os.write(2, f"unknown mode {mode}\n".encode())
    return 2


if __name__ == "__main__":
    sys.exit(main())
