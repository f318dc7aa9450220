#!/usr/bin/env bash
# Spawn rate of a `hello` service with each sandbox feature on, against the same service without a
# sandbox, in one daemon and one run: rounds interleave every variant, and the table reports each
# variant's median conn/s and its ratio to the baseline's median. Results go in docs/SANDBOX.md.
#
# usage: sudo bash Scripts/bench-sandbox.sh [SECONDS-PER-RUN] [ROUNDS] [CONCURRENCY]
# Needs: root, gcc (static libc), a release build (swift build -c release), ../shared/bench.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
rounds=${2:-3}
concurrency=${3:-4}
bench=${BENCH:-../shared/bench}
swinetd=${SWINETD:-$(ls -t .build*/release/swinetd 2>/dev/null | head -n 1)}
[ -x "$swinetd" ] || { echo "no release swinetd (swift build -c release)"; exit 1; }

# Not under /tmp or /var/tmp: private_tmp would hide the program from its own child.
work=$(mktemp -d /run/swinetd-bench.XXXXXX)
daemon=
cleanup() {
    [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

gcc -O2 -o "$work/connload" "$bench/connload.c" -lpthread
gcc -O2 -static -o "$work/hello" "$bench/hello.c"
# A jail for chroot: the static hello is all it needs.
mkdir -p "$work/jail$work"
cp "$work/hello" "$work/jail$work/hello"

variants=(
    "baseline|tcp"
    "no_new_privileges|tcp,no_new_privileges"
    "capabilities (root)|tcp,capabilities=CAP_NET_BIND_SERVICE"
    "private_tmp|tcp,private_tmp"
    "protect_system=full|tcp,protect_system=full"
    "protect_system=strict|tcp,protect_system=strict"
    "private_network|tcp,private_network"
    "system_call_architectures|tcp,system_call_architectures=native"
    "system_call_filter deny|tcp,system_call_filter=~@mount:~@reboot:~@swap:~@module:~@raw-io:~@clock:~@debug:~@obsolete"
    "system_call_filter allow|tcp,system_call_filter=@system-service"
    "chroot|tcp,chroot=$work/jail"
    "hardened|tcp,hardened"
    "hardened+private_network|tcp,hardened,private_network"
)
# A run of free ports (other benchmarks may be running on the machine).
base_port=${BASE_PORT:-}
while [ -z "$base_port" ]; do
    candidate=$((20000 + RANDOM % 20000))
    busy=$(ss -Hltn "sport >= :$candidate and sport < :$((candidate + ${#variants[@]}))" 2>/dev/null | wc -l)
    [ "$busy" = 0 ] && base_port=$candidate
done
: >"$work/inetd.conf"
for i in "${!variants[@]}"; do
    proto=${variants[$i]#*|}
    echo "127.0.0.1:$((base_port + i)) stream $proto nowait root $work/hello hello" >>"$work/inetd.conf"
done
"$swinetd" check --quiet -f "$work/inetd.conf" >/dev/null
"$swinetd" --foreground -f "$work/inetd.conf" >"$work/log" 2>&1 &
daemon=$!
for _ in $(seq 100); do grep -q 'ready:' "$work/log" && break; sleep 0.1; done

declare -A results
for round in $(seq "$rounds"); do
    for i in "${!variants[@]}"; do
        out=$("$work/connload" 127.0.0.1 $((base_port + i)) "$seconds" "$concurrency")
        rate=$(echo "$out" | sed -n 's/.* rate=\([0-9.]*\)\/s.*/\1/p')
        errors=$(echo "$out" | sed -n 's/.* errors=\([0-9]*\) .*/\1/p')
        [ "$errors" = 0 ] || echo "warning: ${variants[$i]%%|*}: $errors errors" >&2
        results[$i]="${results[$i]:-} $rate"
        echo "round $round: ${variants[$i]%%|*}: $rate conn/s" >&2
    done
done

median() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
baseline=$(median "${results[0]}")
printf '| %-28s | %10s | %8s | %s |\n' "variant" "conn/s" "vs base" "runs"
printf '|%s|%s|%s|%s|\n' "------------------------------" "------------" "----------" "------"
for i in "${!variants[@]}"; do
    m=$(median "${results[$i]}")
    printf '| %-28s | %10.0f | %7.0f%% | %s |\n' "${variants[$i]%%|*}" "$m" "$(echo "$m / $baseline * 100" | bc -l)" "${results[$i]# }"
done
grep -c 'FAIL' "$work/log" | sed 's/^/FAIL lines in the log: /' >&2 || true
