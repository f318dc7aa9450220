#!/usr/bin/env bash
# The web console in a real browser: starts swinetd with --admin and an echo service, then
# console_driver.py drives headless Chromium (Debian: chromium, chromium-driver, python3-selenium)
# to sign in, pause the service (a real TCP connection is then refused), resume it (it answers
# again) and run the check. Needs those packages (.ci/run installs them): missing ones FAIL.
#
# Usage: bash Tests/console/test-console.sh      (SWINETD=path/to/swinetd to name the binary)
set -uo pipefail
cd "$(dirname "$0")/../.."

for tool in /usr/bin/chromium /usr/bin/chromedriver; do
    [ -x "$tool" ] || { echo "FAIL - $tool is missing (apt-get install chromium chromium-driver)"; exit 1; }
done
# Debian's interpreter, where python3-selenium installs (a python3 earlier in PATH may be another).
py=/usr/bin/python3
"$py" -c 'import selenium' 2>/dev/null || { echo "FAIL - python3-selenium is missing (apt-get install python3-selenium)"; exit 1; }

binary=${SWINETD:-}
if [ -z "$binary" ]; then
    for candidate in .build/debug/swinetd .build/release/swinetd; do
        [ -x "$candidate" ] && { binary=$candidate; break; }
    done
fi
[ -n "$binary" ] && [ -x "$binary" ] || { echo "FAIL - no built swinetd (swift build, or SWINETD=path)"; exit 1; }

scratch=$(mktemp -d)
daemon=
cleanup() {
    [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
echo_port=$(free_port)
admin_port=$(free_port)
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$token" > "$scratch/token"
chmod 600 "$scratch/token"
printf '127.0.0.1:%s stream tcp nowait root internal echo\n' "$echo_port" > "$scratch/inetd.conf"

"$binary" --foreground -f "$scratch/inetd.conf" --control none \
    --admin "127.0.0.1:$admin_port" --admin-token-file "$scratch/token" >"$scratch/log" 2>&1 &
daemon=$!
for _ in $(seq 100); do
    grep -q 'ready:' "$scratch/log" && break
    kill -0 "$daemon" 2>/dev/null || break
    sleep 0.1
done
if ! grep -q 'ready:' "$scratch/log"; then
    echo "FAIL - swinetd did not start:"; sed 's/^/    /' "$scratch/log"; exit 1
fi

status=0
timeout 90 "$py" Tests/console/console_driver.py "http://127.0.0.1:$admin_port/" "$token" "$echo_port" "$echo_port" || status=1
if [ "$status" -ne 0 ]; then
    echo "--- swinetd log ---"; sed 's/^/    /' "$scratch/log"
fi
# The console actions are in the daemon's log too.
grep -q "paused until resumed by an administrator" "$scratch/log" || { echo "FAIL - no pause line in the log"; status=1; }
[ "$status" -eq 0 ] && echo "console test passed" || echo "console test FAILED"
exit "$status"
