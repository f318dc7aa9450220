#!/bin/bash
# sanitizers.sh: the whole test suite (unit + integration: the daemon and the probe are built with
# the same sanitizer, so the real binary runs instrumented) under AddressSanitizer and under
# ThreadSanitizer, each in its own scratch path (.build-asan, .build-tsan).
#
# Sanitizer reports of every process (test runner, swinetd, probe children) go to
# $OUT/<mode>/report.<pid> (log_path), so a report from a daemon that a test then kills is not
# lost; the test harness passes ASAN_OPTIONS/TSAN_OPTIONS on to the daemons it starts
# (Tests/SwinetdIntegrationTests/Support/Processes.swift).
#
# usage: Scripts/sanitizers.sh [asan] [tsan] [-- swift test args, e.g. --filter Builtin]
#
# Known (docs/RELIABILITY.md §4): the ASan run passes whole. Under TSan every test that spawns a child fails: TSan's clone interceptor cannot run in the
# clone(CLONE_VM|CLONE_VFORK) child of the spawn shim (a tool limit, not a race).
# env:   OUT (default /tmp/swinetd-sanitizers)
# exit:  0 when every mode's tests passed and no report was written
set -u
cd "$(dirname "$0")/.."
MODES=()
EXTRA=()
while [ $# -gt 0 ]; do
    case $1 in
        asan|tsan) MODES+=("$1") ;;
        --) shift; EXTRA=("$@"); break ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[ ${#MODES[@]} -gt 0 ] || MODES=(asan tsan)
OUT=${OUT:-/tmp/swinetd-sanitizers}
status=0
for mode in "${MODES[@]}"; do
    case $mode in
        asan) sanitize=address; scratch=.build-asan ;;
        tsan) sanitize=thread; scratch=.build-tsan ;;
    esac
    dir=$OUT/$mode
    rm -rf "$dir"; mkdir -p "$dir"
    echo "== $mode: building ($scratch)"
    if ! swift build --build-tests --sanitize=$sanitize --scratch-path $scratch >"$dir/build.log" 2>&1; then
        tail -30 "$dir/build.log"; status=1; continue
    fi
    # Leak checking is off: LeakSanitizer cannot see pointers that Swift stores with tag bits in
    # their spare bits (multi-payload enums), so it reports live objects as leaks.
    export ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:log_path=$dir/report:handle_abort=1"
    export TSAN_OPTIONS="log_path=$dir/report:halt_on_error=0:second_deadlock_stack=1"
    echo "== $mode: testing"
    start=$(date +%s)
    swift test --skip-build --sanitize=$sanitize --scratch-path $scratch "${EXTRA[@]}" >"$dir/test.log" 2>&1
    rc=$?
    unset ASAN_OPTIONS TSAN_OPTIONS
    reports=$(ls "$dir"/report.* 2>/dev/null | wc -l)
    echo "   exit $rc after $(( $(date +%s) - start )) s; $(grep -c '^✘ Test .* failed' "$dir/test.log") failed tests; $reports sanitizer reports"
    grep -E '^✘ Test .* (failed|recorded)' "$dir/test.log" | sed 's/^/   /' | head -40
    for r in "$dir"/report.*; do
        [ -f "$r" ] || continue
        echo "   --- $(basename "$r"): $(grep -m1 -E 'ERROR|WARNING|SUMMARY' "$r")"
        grep -m1 SUMMARY "$r" | sed 's/^/       /'
    done
    [ $rc -eq 0 ] && [ "$reports" -eq 0 ] || status=1
done
exit $status
