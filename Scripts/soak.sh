#!/bin/bash
# soak.sh: the long proof of docs/RELIABILITY.md. One swinetd serves, for N connections in all
# (default 1,000,000), a mix of
#   - a spawned service (../shared/bench/hello.c, static: writes one line and exits),
#   - the builtins echo (with a payload) and daytime,
#   - connections refused by an ACL: xinetd `only_from` and tcpd hosts.deny (libwrap),
# driven by ../shared/bench/connload.c (compiled with gcc). Every SAMPLE connections (default
# 100,000) the load pauses, the daemon settles for 1 s, and the script samples its zombies,
# open descriptors (/proc/PID/fd), threads and RSS (VmRSS). It then asserts: 0 zombies at every
# sample, and from the first sample on the descriptor count, thread count and RSS are flat
# (descriptors and threads equal; RSS within RSS_SLACK_KIB, default 2048).
#
# usage: Scripts/soak.sh [TOTAL [SAMPLE]]
# env:   SPAWN_S, OTHER_S: seconds of connload per round on the spawned service (2) and on each
#        other one (0.4): the mix
#        SWINETD=path (default: a release build in .build-rel5, built if missing)
#        OUT=dir for the log and the CSV (default: a temporary directory, printed)
# exit:  0 all assertions held, 1 one failed, 2 setup failed
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TOTAL=${1:-1000000}
SAMPLE=${2:-100000}
RSS_SLACK_KIB=${RSS_SLACK_KIB:-2048}
SPAWN_S=${SPAWN_S:-2}     # seconds of load per round on the spawned service
OTHER_S=${OTHER_S:-0.4}   # ... and on each of the four others
BENCH=$ROOT/../shared/bench
OUT=${OUT:-$(mktemp -d /tmp/swinetd-soak.XXXXXX)}
mkdir -p "$OUT"
if [ -z "${SWINETD:-}" ]; then
    swift build -c release --scratch-path .build-rel5 --product swinetd >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; exit 2; }
    SWINETD=$ROOT/.build-rel5/release/swinetd
fi
gcc -O2 -o "$OUT/connload" "$BENCH/connload.c" -lpthread || exit 2
gcc -O2 -static -o "$OUT/hello" "$BENCH/hello.c" || exit 2

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_SPAWN=$(free_port); P_ECHO=$(free_port); P_DAYTIME=$(free_port); P_ONLYFROM=$(free_port); P_TCPD=$(free_port)
cat >"$OUT/inetd.conf" <<C
127.0.0.1:$P_SPAWN stream tcp nowait root $OUT/hello hello
127.0.0.1:$P_ECHO stream tcp nowait root internal echo
127.0.0.1:$P_DAYTIME stream tcp nowait root internal daytime
C
cat >"$OUT/xinetd.conf" <<C
defaults
{
    instances = UNLIMITED
    per_source = UNLIMITED
    cps = 1000000 1
    log_on_success =
    log_on_failure = HOST
}
service daytime
{
    type = INTERNAL UNLISTED
    id = onlyfrom
    socket_type = stream
    wait = no
    bind = 127.0.0.1
    port = $P_ONLYFROM
    only_from = 10.255.0.1
    flags = NOLIBWRAP
}
service daytime
{
    type = INTERNAL UNLISTED
    id = tcpd-denied
    socket_type = stream
    wait = no
    bind = 127.0.0.1
    port = $P_TCPD
    libwrap = soakd
}
C
printf 'ALL: 10.255.0.1\n' >"$OUT/hosts.allow"
printf 'soakd: ALL\n' >"$OUT/hosts.deny"

"$SWINETD" --foreground -f "$OUT/inetd.conf" -f "$OUT/xinetd.conf" \
    --hosts-allow "$OUT/hosts.allow" --hosts-deny "$OUT/hosts.deny" --dump-file "$OUT/dump" \
    >"$OUT/swinetd.log" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null' EXIT
for _ in $(seq 100); do grep -q 'ready:' "$OUT/swinetd.log" && break; sleep 0.05; done
grep -q 'ready: 5 services' "$OUT/swinetd.log" || { echo "swinetd did not start:"; cat "$OUT/swinetd.log"; exit 2; }

zombies() { ps --ppid "$PID" -o stat= | grep -c Z; }
fds() { ls "/proc/$PID/fd" | wc -l; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$PID/status"; }
hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$PID/status"; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$PID/status"; }

declare -A OK ERR
for k in spawn echo daytime onlyfrom tcpd; do OK[$k]=0; ERR[$k]=0; done
# One round: each kind for a few seconds (the spawned service gets more time: it is the slowest).
round() {
    local line
    for spec in "spawn $P_SPAWN $SPAWN_S 8" "echo $P_ECHO $OTHER_S 8 ping" "daytime $P_DAYTIME $OTHER_S 8" "onlyfrom $P_ONLYFROM $OTHER_S 8" "tcpd $P_TCPD $OTHER_S 8"; do
        set -- $spec
        line=$("$OUT/connload" 127.0.0.1 "$2" "$3" "$4" ${5:-})
        local ok=${line#conns=}; ok=${ok%% *}
        local err=${line#*errors=}; err=${err%% *}
        OK[$1]=$(( ${OK[$1]} + ok )); ERR[$1]=$(( ${ERR[$1]} + err ))
        DONE=$(( DONE + ok + err ))
        echo "$(date -u +%H:%M:%S) $1 $line" >>"$OUT/connload.log"
    done
}

# What is measured: the tree now and the binary (which may be older than the tree).
TREE="$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- Sources 2>/dev/null || echo '+dirty')"
BINARY="$SWINETD, built $(date -u -r "$SWINETD" +%Y-%m-%dT%H:%M:%SZ), sha256 $(sha256sum "$SWINETD" | cut -c1-12)"
START=$(date -u +%Y-%m-%dT%H:%M:%SZ); T0=$(date +%s)
echo "soak: swinetd pid $PID, $TOTAL connections, sample every $SAMPLE; output in $OUT"
echo "connections,seconds,zombies,fds,threads,rss_kib,hwm_kib" >"$OUT/samples.csv"
printf '%s,%s,%s,%s,%s,%s,%s\n' 0 0 "$(zombies)" "$(fds)" "$(threads)" "$(rss)" "$(hwm)" >>"$OUT/samples.csv"
DONE=0; NEXT=$SAMPLE
while [ "$DONE" -lt "$TOTAL" ]; do
    round
    kill -0 "$PID" 2>/dev/null || { echo "swinetd died"; tail "$OUT/swinetd.log"; exit 1; }
    if [ "$DONE" -ge "$NEXT" ] || [ "$DONE" -ge "$TOTAL" ]; then
        sleep 1
        row="$DONE,$(( $(date +%s) - T0 )),$(zombies),$(fds),$(threads),$(rss),$(hwm)"
        echo "$row" >>"$OUT/samples.csv"
        echo "sample: $row"
        NEXT=$(( NEXT + SAMPLE ))
    fi
done
END=$(date -u +%Y-%m-%dT%H:%M:%SZ); ELAPSED=$(( $(date +%s) - T0 ))
kill -USR1 "$PID"; sleep 0.5

echo
echo "== soak $START .. $END ($ELAPSED s), swinetd $("$SWINETD" --version 2>/dev/null), tree $TREE at start"
echo "  binary: $BINARY"
echo "  mix per round: spawn ${SPAWN_S} s, echo/daytime/onlyfrom/tcpd ${OTHER_S} s each, 8 connload threads"
for k in spawn echo daytime onlyfrom tcpd; do echo "  $k: served ${OK[$k]}, closed/failed ${ERR[$k]}"; done
echo "  total: $DONE connections"
echo "  samples (connections,seconds,zombies,fds,threads,rss_kib,hwm_kib):"
sed 's/^/    /' "$OUT/samples.csv"
echo "  log: $(wc -l <"$OUT/swinetd.log") lines, $(grep -c 'FAIL: onlyfrom' "$OUT/swinetd.log") FAIL onlyfrom, $(grep -c 'FAIL: tcpd-denied' "$OUT/swinetd.log") FAIL tcpd-denied, $(grep -c 'error' "$OUT/swinetd.log") error lines"

# Assertions.
status=0
# Served must be served; refused must be refused.
for k in spawn echo daytime; do
    [ "${ERR[$k]}" -eq 0 ] || { echo "FAIL: $k had ${ERR[$k]} failed connections"; status=1; }
done
for k in onlyfrom tcpd; do
    [ "${OK[$k]}" -eq 0 ] || { echo "FAIL: $k served ${OK[$k]} connections it must refuse"; status=1; }
done
awk -F, -v slack="$RSS_SLACK_KIB" 'NR == 1 { next }
    $1 == 0 { next }
    !base_set { base_set = 1; fd = $4; th = $5; rss = $6; next }
    { if ($3 != 0) { print "FAIL: " $3 " zombies at " $1; bad = 1 }
      if ($4 != fd) { print "FAIL: fds " $4 " at " $1 " (" fd " at the first sample)"; bad = 1 }
      if ($5 != th) { print "FAIL: threads " $5 " at " $1 " (" th " at the first sample)"; bad = 1 }
      if ($6 - rss > slack) { print "FAIL: RSS " $6 " KiB at " $1 " (" rss " KiB at the first sample, slack " slack ")"; bad = 1 } }
    END { exit bad }' "$OUT/samples.csv" || status=1
# Zombies at the first sample too.
awk -F, 'NR > 1 && $3 != 0 { exit 1 }' "$OUT/samples.csv" || { echo "FAIL: zombies"; status=1; }
[ $status -eq 0 ] && echo "SOAK PASSED" || echo "SOAK FAILED"
exit $status
