#!/usr/bin/env bash
# Spawn-per-connection rate of swinetd against the real peers, side by side in one run.
# Uses the project's yardstick (../shared/bench/peers.sh: connload, limitd, hello, and the peers
# unpacked from Debian packages). Builds swinetd in release mode first.
#   Benchmarks/spawn-rate.sh [-s SECONDS] [-c CONCURRENCY] [-r ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nc >/dev/null || { apt-get update -qq && apt-get install -y -qq netcat-openbsd >/dev/null; }
swift build -c release --product swinetd >/dev/null
exec ../shared/bench/peers.sh "$@" "swinetd=17010=$PWD/.build/release/swinetd --foreground -f {conf}"
