#!/bin/bash
# Runs the libFuzzer targets built by Fuzz/build.sh, one after the other, each for SECONDS
# (default 600), from Fuzz/seeds/TARGET plus the corpus grown by earlier runs
# (.build-fuzz/corpus/TARGET). Crashes, leaks of time (hangs are fatalErrors in the tcpmux
# harness) and ASan reports are saved to .build-fuzz/artifacts/TARGET/; a summary line per target
# is printed (executions, coverage, corpus, artifacts). Inputs worth keeping go into
# Tests/SwinetdCoreTests/FuzzRegressionTests.swift by hand, inline.
#
# usage: Fuzz/run.sh [SECONDS [TARGET...]]
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${OUT:-$ROOT/.build-fuzz}
SECONDS_EACH=${1:-600}
shift || true
TARGETS=${*:-inetd xinetd hosts proxy tcpmux}
NETNS=""
if unshare -n true 2>/dev/null; then NETNS="unshare -n $ROOT/Fuzz/lo-up.sh"; fi
status=0
for target in $TARGETS; do
    bin=$OUT/fuzz-$target
    [ -x "$bin" ] || { echo "$bin missing: run Fuzz/build.sh $target"; status=2; continue; }
    corpus=$OUT/corpus/$target
    artifacts=$OUT/artifacts/$target
    mkdir -p "$corpus" "$artifacts" "$OUT/work-$target"
    case $target in tcpmux) maxlen=4096 ;; hosts) maxlen=8192 ;; *) maxlen=16384 ;; esac
    log=$OUT/run-$target.log
    started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    # The run's cwd is an empty directory: relative include paths in fuzzed configs resolve there.
    # It runs in a fresh network namespace (loopback only): host names in fuzzed configs must not
    # turn into DNS queries (slow, and traffic off the machine). Leak checking is off (LeakSanitizer
    # cannot see Swift's spare-bit-tagged pointers and reports live globals).
    (cd "$OUT/work-$target" && ASAN_OPTIONS=detect_leaks=0 SWIFT_BACKTRACE=enable=no $NETNS nice -n 5 "$bin" -max_total_time="$SECONDS_EACH" \
        -rss_limit_mb=2048 -detect_leaks=0 -max_len=$maxlen -timeout=20 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "$corpus" "$ROOT/Fuzz/seeds/$target") >"$log" 2>&1
    rc=$?
    execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
    persec=$(grep -m1 'stat::average_exec_per_sec' "$log" | awk '{print $2}')
    cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*')
    found=$(ls "$artifacts" | wc -l)
    echo "$target: started $started, ${SECONDS_EACH} s, exit $rc, $execs executions ($persec/s), $cov, $found artifacts"
    [ $rc -eq 0 ] && [ "$found" -eq 0 ] || status=1
done
exit $status
