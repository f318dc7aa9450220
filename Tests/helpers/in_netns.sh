#!/bin/sh
# Runs inside `unshare -n` (a private network namespace with only lo): brings lo up, starts
# swinetd in the foreground, waits (bounded) for "ready:", runs the client (with the daemon's pid
# in SWINETD_PID), stops swinetd.
#
# usage: in_netns.sh SWINETD CONF LOG CLIENT [CLIENT ARGS...]
# Exit status: the client's; 90-93 for setup failures. SWINETD_EXIT=N is printed at the end.
swinetd=$1 conf=$2 log=$3
shift 3

ip link set lo up || exit 90
"$swinetd" --foreground -f "$conf" >"$log" 2>&1 &
daemon=$!
i=0
until grep -q 'ready:' "$log"; do
    i=$((i + 1))
    if [ $i -gt 200 ] || ! kill -0 $daemon 2>/dev/null; then
        echo "swinetd did not become ready:"; cat "$log"
        kill $daemon 2>/dev/null
        exit 91
    fi
    sleep 0.05
done

SWINETD_PID=$daemon timeout 60 "$@"
rc=$?

kill -TERM $daemon
wait $daemon
echo "SWINETD_EXIT=$?"
exit $rc
