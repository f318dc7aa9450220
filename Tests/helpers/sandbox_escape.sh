#!/bin/sh
# A service that tries to get out of its sandbox, run by the sandbox integration tests
# (Tests/SwinetdIntegrationTests/SandboxTests.swift) as an ordinary program: /bin/sh and the tools
# it calls, not the probe. Each attempt prints one line, NAME=blocked or NAME=ESCAPED, then "end".
#
# usage: sandbox_escape.sh escape MARKER PORT [SUID_ID]
#          usr    create a file in /usr                        (protect_system)
#          tmp    see MARKER, a file the test made in the host's /tmp   (private_tmp)
#          net    connect to 127.0.0.1:PORT, a port swinetd listens on  (private_network)
#          mount  mount a tmpfs on /mnt                        (system_call_filter ~@mount, capabilities)
#          suid   run SUID_ID, a setuid-root copy of id(1); escaped when it prints uid 0
#                                                              (no_new_privileges, capabilities)
#        sandbox_escape.sh bind PORT
#          bind   bind 127.0.0.1:PORT (below 1024) with python3 (capabilities=CAP_NET_BIND_SERVICE)
case "$1" in
escape)
    marker=$2 port=$3 suid=$4
    if touch /usr/.swinetd-escape.$$ 2>/dev/null; then
        rm -f /usr/.swinetd-escape.$$
        echo "usr=ESCAPED"
    else
        echo "usr=blocked"
    fi
    if [ -e "$marker" ]; then echo "tmp=ESCAPED"; else echo "tmp=blocked"; fi
    if python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2)' "$port" \
        2>/dev/null; then
        echo "net=ESCAPED"
    else
        echo "net=blocked"
    fi
    if mount -t tmpfs swinetd-escape /mnt 2>/dev/null; then
        umount /mnt
        echo "mount=ESCAPED"
    else
        echo "mount=blocked"
    fi
    if [ -n "$suid" ]; then
        if [ "$("$suid" -u 2>/dev/null)" = 0 ]; then echo "suid=ESCAPED"; else echo "suid=blocked"; fi
    fi
    ;;
bind)
    python3 -c '
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
    print("bind=ok")
except OSError as e:
    print("bind=" + type(e).__name__)
' "$2"
    ;;
esac
echo end
