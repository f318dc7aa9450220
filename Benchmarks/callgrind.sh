#!/bin/bash
# Instructions per connection of swinetd's own code, counted exactly with valgrind's callgrind:
# the daemon serves the static hello service to connload (1 client, then 16), counters zeroed
# after a second of warm-up, so only the connections are counted. Machine noise does not touch the count.
#
#   sudo Benchmarks/callgrind.sh [SECONDS]      (default 5 s per case; results in .build-callgrind/results)
#
# valgrind cannot run swinetd's spawn (a general clone() with CLONE_VM|CLONE_VFORK|CLONE_PIDFD|
# CLONE_FILES), so this builds a profiling binary (-DSW_PROFILE_VFORK: plain vfork, no pidfd, no
# shared descriptor table; reaped through SIGCHLD) in .build-callgrind, and strips its debug info
# (valgrind 3.19 cannot read Swift 6.3's). The children are not traced; what is counted is the
# daemon: its event loop, its spawn threads and its side of the clone. Under valgrind the threads
# run one at a time, so this counts work, not time.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
YARDSTICK=${YARDSTICK:-$(cd "$REPO/../shared/bench" 2>/dev/null && pwd || true)}
CACHE=${SWINETD_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/swinetd-bench}
SCRATCH=$REPO/.build-callgrind
SECS=${1:-5}
case $SECS in -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
for t in valgrind callgrind_annotate callgrind_control gcc strip; do
  command -v $t >/dev/null || { echo "callgrind.sh: needs $t (apt-get install valgrind binutils gcc)" >&2; exit 1; }
done
[ -f "$YARDSTICK/connload.c" ] || { echo "callgrind.sh: the yardstick (../shared/bench) is missing; set YARDSTICK=DIR" >&2; exit 1; }
OUT=$SCRATCH/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT" "$CACHE/bin"

echo "building the profiling swinetd in $SCRATCH ..."
(cd "$REPO" && swift build -c release --static-swift-stdlib --product swinetd --scratch-path "$SCRATCH" \
  -Xcc -DSW_PROFILE_VFORK) >"$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log"; exit 1; }
strip --strip-debug -o "$OUT/swinetd" "$SCRATCH/release/swinetd"
[ "$CACHE/bin/connload" -nt "$YARDSTICK/connload.c" ] || gcc -O2 -Wall -o "$CACHE/bin/connload" "$YARDSTICK/connload.c" -lpthread
[ "$CACHE/bin/hello" -nt "$YARDSTICK/hello.c" ] || gcc -O2 -static -o "$CACHE/bin/hello" "$YARDSTICK/hello.c"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '127.0.0.1:%s stream tcp nowait root %s hello\n' "$PORT" "$CACHE/bin/hello" > "$OUT/hello.conf"

for clients in 1 16; do
  out=$OUT/callgrind.$clients.out
  valgrind --tool=callgrind --callgrind-out-file="$out" "$OUT/swinetd" --foreground -f "$OUT/hello.conf" \
    --control none > "$OUT/daemon.$clients.log" 2>&1 &
  vg=$!
  for _ in $(seq 200); do grep -q "ready:" "$OUT/daemon.$clients.log" 2>/dev/null && break; sleep 0.1; done
  grep -q "ready:" "$OUT/daemon.$clients.log" || { tail "$OUT/daemon.$clients.log"; kill $vg; exit 1; }
  # A second of the same load first: tables grow and the Swift runtime instantiates its types
  # once, which is not what a connection costs.
  "$CACHE/bin/connload" 127.0.0.1 "$PORT" 1 $clients >/dev/null
  sleep 0.5
  callgrind_control -z $vg >/dev/null
  load=$("$CACHE/bin/connload" 127.0.0.1 "$PORT" "$SECS" $clients)
  sleep 1  # the last exits are reaped and logged
  callgrind_control -d $vg >/dev/null
  kill -TERM $vg; wait $vg || true
  conns=$(echo "$load" | sed 's/.*conns=\([0-9]*\).*/\1/')
  dump=$(ls -t "$out".* 2>/dev/null | head -1)
  [ -n "$dump" ] || { echo "callgrind.sh: no dump for $clients clients" >&2; exit 1; }
  callgrind_annotate --threshold=100 --inclusive=no "$dump" > "$OUT/annotate.$clients.txt" 2>/dev/null
  callgrind_annotate --threshold=100 --inclusive=yes "$dump" > "$OUT/inclusive.$clients.txt" 2>/dev/null
  total=$(grep -m1 "PROGRAM TOTALS" "$OUT/annotate.$clients.txt" | awk '{gsub(",", "", $1); print $1}')
  echo
  echo "== $clients client(s): $load"
  echo "instructions counted: $total over $conns connections = $((total / conns)) per connection"
  echo "top functions, self (instructions per connection):"
  # callgrind_annotate 3.19 also lists the threads' entry points (main, start_thread) with
  # everything below them; those lines are not a function's own cost.
  awk -v n="$conns" '/^-+$/ {sep++; next} sep >= 3 && $1 ~ /^[0-9,]+$/ {
      if ($0 ~ /libc-start|below main|ParsableCommand|RunV3run|swinetd_main|ld-linux|clone\.S|start_thread|startThread|startDetachedThread/) next
      v=$1; gsub(",", "", v); f=$0; sub(/^ *[0-9,]+ +(\([^)]*\) +)?/, "", f); sub(/^\?\?\?:/, "", f); sub(/ \[.*$/, "", f)
      printf "  %8.0f  %s\n", v / n, f; if (++k == 25) exit }' "$OUT/annotate.$clients.txt" |
    { command -v swift >/dev/null && swift demangle --simplified || cat; } | cut -c1-120
done
echo
echo "raw: $OUT"
