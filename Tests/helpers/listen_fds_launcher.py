#!/usr/bin/env python3
"""A systemd-style socket activation launcher for the tests (what systemd or
systemd-socket-activate does): binds the sockets named on the command line, puts them on fds
3, 4, ... in order, sets LISTEN_FDS, LISTEN_PID (this pid, which exec keeps) and LISTEN_FDNAMES,
and execs the program.

usage: listen_fds_launcher.py [--names A:B:...] [--wrong-pid] SPEC... -- PROGRAM [ARGS...]
SPEC: tcp:HOST:PORT (IPv4), tcp6:HOST:PORT (IPv6, v6-only), tcp46:HOST:PORT (IPv6, dual stack),
      udp:HOST:PORT, unix:PATH (stream)
--wrong-pid: LISTEN_PID names another process (the sockets must then be ignored).
"""
import os
import socket
import sys


def make(spec):
    kind, _, rest = spec.partition(":")
    if kind == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            os.unlink(rest)
        except FileNotFoundError:
            pass
        s.bind(rest)
        s.listen(16)
        return s
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if kind in ("tcp6", "tcp46") else socket.AF_INET
    stype = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
    s = socket.socket(family, stype)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if kind == "tcp6" else 0)
    s.bind((host, int(port)))
    if stype == socket.SOCK_STREAM:
        s.listen(16)
    return s


def main():
    args = sys.argv[1:]
    names = None
    wrong_pid = False
    while args and args[0].startswith("--") and args[0] != "--":
        if args[0] == "--names":
            names = args[1]
            args = args[2:]
        elif args[0] == "--wrong-pid":
            wrong_pid = True
            args = args[1:]
        else:
            sys.exit("unknown option " + args[0])
    split = args.index("--")
    specs, program = args[:split], args[split + 1:]
    sockets = [make(spec) for spec in specs]
    # Move the sockets above the target range first, then onto 3, 4, ...
    lifted = [os.dup(s.fileno()) for s in sockets]
    high = [fcntl_dup_above(fd, 100) for fd in lifted]
    for fd in lifted:
        os.close(fd)
    for s in sockets:
        s.close()
    for index, fd in enumerate(high):
        os.dup2(fd, 3 + index, inheritable=True)
        os.close(fd)
    env = dict(os.environ)
    env["LISTEN_FDS"] = str(len(specs))
    env["LISTEN_PID"] = str(os.getpid() + (1 if wrong_pid else 0))
    if names is not None:
        env["LISTEN_FDNAMES"] = names
    os.execve(program[0], program, env)


def fcntl_dup_above(fd, minimum):
    import fcntl
    return fcntl.fcntl(fd, fcntl.F_DUPFD, minimum)


if __name__ == "__main__":
    main()
