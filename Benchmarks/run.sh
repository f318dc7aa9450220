#!/usr/bin/env bash
# The swinetd benchmark suite: swinetd against openbsd-inetd, xinetd, tcpserver and the C floor, side by
# side in one run. See BENCHMARKS.md for what each scenario measures and the latest results.
#
#   Benchmarks/run.sh [--quick] [--rounds N] [--pairs N] [--seconds S] [--out DIR] [--no-build] [--no-nice] [SCENARIO...]
#
# Scenarios (default: all but profile):
#   spawn     spawn per connection, static hello service, 1/16/64 clients (connload)
#   script    the same with a /bin/sh script service
#   stream    builtin TCP echo (1 and 4 connections, 64 KiB writes) and chargen, bytes/s
#   udp       builtin UDP echo datagrams/s over ::1 (udpload, plain and with GSO requests; udprate.py)
#   children  spawn rate with 10,000 live children held open vs 10
#   services  spawn rate with 10,000 configured services vs 10
#   startup   start-up time and RSS with 10, 1,000 and 10,000 services
#   reload    SIGHUP reload time with 1,000 services; failed connections during 100 reloads under load
#   policy    xinetd-format service with only_from, per_source, cps (and libwrap) vs without
#   pairs     8 more back-to-back pairs (AB BA ...) for the two targets closest to their line:
#             hello spawn vs limitd spawn 2 at 16 clients, UDP echo 8 x 16 (plain client) vs openbsd-inetd
#   profile   strace -c, perf stat and perf record of swinetd under the 16-client hello load
# --quick: 1 round of 1 s per measurement (under 3 minutes). Default: 3 rounds of 4 s and 8 pairs (about 30 minutes).
#
# What it does: builds swinetd in release mode (static Swift stdlib, as `make` ships it) in
# .build-bench, unpacks the peers from their Debian packages into a cache (not installed), compiles
# the yardstick (../shared/bench: connload, limitd, hello) and the tools in Benchmarks/tools with gcc,
# then runs Benchmarks/bench.py as root in a private network namespace (so builtins can use their
# standard ports and nothing else on the machine can collide with them) at nice -20 (so the compile
# jobs of other users disturb all servers alike, and less). Results: DIR/results.jsonl (every
# measurement) and DIR/report.md (the tables, medians over rounds), DIR defaulting to
# .build-bench/results/DATE.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
YARDSTICK=${YARDSTICK:-$(cd "$REPO/../shared/bench" 2>/dev/null && pwd || true)}
CACHE=${SWINETD_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/swinetd-bench}
SCRATCH=${SCRATCH:-$REPO/.build-bench}
OUT="" BUILD=1 NICE=1 ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --no-nice) NICE=0; shift ;;
    --rounds|--pairs|--seconds) ARGS+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run.sh: run as root (network namespace, nice -20, 10,000 children)" >&2; exit 1; }
[ -f "$YARDSTICK/connload.c" ] || { echo "run.sh: the yardstick (../shared/bench) is missing; set YARDSTICK=DIR" >&2; exit 1; }
for t in gcc python3 unshare ip apt-get dpkg; do
  command -v $t >/dev/null || { echo "run.sh: needs $t" >&2; exit 1; }
done
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-$SCRATCH/results/$STAMP}
mkdir -p "$OUT" "$CACHE/bin"
OUT=$(cd "$OUT" && pwd)

# 1. swinetd, release. Another engineer may be editing sources during the build: retry.
if [ $BUILD = 1 ]; then
  echo "building swinetd (release, static stdlib) in $SCRATCH ..."
  for try in 1 2 3; do
    if (cd "$REPO" && swift build -c release --static-swift-stdlib --product swinetd --scratch-path "$SCRATCH") >"$OUT/build.log" 2>&1; then
      break
    fi
    [ $try = 3 ] && { tail -20 "$OUT/build.log"; echo "run.sh: build failed (see $OUT/build.log)" >&2; exit 1; }
    sleep 5
  done
fi
[ -x "$SCRATCH/release/swinetd" ] || { echo "run.sh: no $SCRATCH/release/swinetd" >&2; exit 1; }
# A private copy: a rebuild during the run must not change the binary under test.
cp "$SCRATCH/release/swinetd" "$OUT/swinetd"

# 2. The peers, from Debian packages, unpacked into the cache.
P=$CACHE/root
if [ ! -x "$P/usr/sbin/inetd" ] || [ ! -x "$P/usr/sbin/xinetd" ] || [ ! -x "$P/usr/bin/tcpserver" ]; then
  echo "fetching openbsd-inetd, xinetd, ucspi-tcp into $CACHE ..."
  (cd "$CACHE" && { apt-get download openbsd-inetd xinetd ucspi-tcp >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get download openbsd-inetd xinetd ucspi-tcp; }; })
  for f in "$CACHE"/openbsd-inetd_*.deb "$CACHE"/xinetd_*.deb "$CACHE"/ucspi-tcp_*.deb; do dpkg -x "$f" "$P"; done
fi

# 3. Load tools and services: the yardstick's and ours.
build_tool() { # name source [static]
  local out=$CACHE/bin/$1
  if [ ! "$out" -nt "$2" ]; then
    if [ "${3:-}" = static ]; then gcc -O2 -static -o "$out" "$2"; else gcc -O2 -Wall -o "$out" "$2" -lpthread; fi
  fi
}
build_tool connload "$YARDSTICK/connload.c"
build_tool limitd "$YARDSTICK/limitd.c"
build_tool hello "$YARDSTICK/hello.c" static
build_tool hold "$HERE/tools/hold.c" static
for t in holdconns echoload udpload reapd sessiond; do build_tool $t "$HERE/tools/$t.c"; done

# 4. Limits for 10,000 connections and children, then the harness in its own network namespace.
# (This machine's hard RLIMIT_NOFILE is 20,000 and CAP_SYS_RESOURCE is not ours: take the hard limit.)
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge 12000 ] || echo "run.sh: warning: RLIMIT_NOFILE $(ulimit -n) < 12000: the 10,000-connection scenarios will fail" >&2
ulimit -u unlimited 2>/dev/null || ulimit -u "$(ulimit -Hu)"
ulimit -c 0
rev=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(cd "$REPO" && git status --porcelain -- Sources Package.swift 2>/dev/null | wc -l)
INFO=$(python3 - "$rev" "$dirty" "$*" "${ARGS[*]:-}" <<'PY'
import json, os, platform, sys, time
rev, dirty, _, args = sys.argv[1:]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(json.dumps({
    "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    "command": "Benchmarks/run.sh " + args,
    "machine": f"{os.cpu_count()} CPUs, {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB",
    "kernel": platform.release(),
    "cpu": cpu,
    "swinetd": f"git {rev}" + (f" + {dirty} uncommitted source files" if int(dirty) else ""),
    "load_before": open("/proc/loadavg").read().split()[0:3].__str__(),
}))
PY
)
echo "results in $OUT"
run=(unshare -n python3 "$HERE/bench.py" --out "$OUT" --cache "$CACHE" --swinetd "$OUT/swinetd" --yardstick "$YARDSTICK" --info "$INFO")
[ $NICE = 1 ] && run=(nice -n -20 "${run[@]}")
exec "${run[@]}" ${ARGS[@]+"${ARGS[@]}"}
