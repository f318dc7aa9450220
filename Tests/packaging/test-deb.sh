#!/usr/bin/env bash
# Builds the .deb (make deb), installs it with dpkg, checks what it installed, runs the installed
# daemon on a tiny configuration on 127.0.0.1 and talks to it, then removes and purges the
# package and checks that nothing is left.
#
# Usage (as root): bash Tests/packaging/test-deb.sh
#   DEB=path.deb   test that package instead of building one
#   SCRATCH=dir    build folder for make (default .build)
#
# It installs and then purges the package named swinetd: run it on a CI or scratch machine.
# An installed swinetd is purged first, so the script can be run again after any failure. Every
# step has a time limit. Ends with "N passed, N failed"; exits 1 on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }
check() { # check DESCRIPTION COMMAND...: ok when the command succeeds
    local description=$1
    shift
    if "$@"; then ok "$description"; else fail "$description"; fi
}
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

scratch=$(mktemp -d)
daemon_pid=
cleanup() {
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid" 2>/dev/null
        sleep 1
        kill -KILL "$daemon_pid" 2>/dev/null
    fi
    if dpkg-query -W -f='${Status}' swinetd 2>/dev/null | grep -qv 'not-installed'; then
        timeout 120 dpkg -P swinetd >/dev/null 2>&1
    fi
    rm -rf "$scratch"
}
trap cleanup EXIT

if [ "$(id -u)" != 0 ]; then
    fail "must run as root (it installs the package with dpkg)"
    finish
fi
for tool in dpkg dpkg-deb timeout; do
    command -v "$tool" >/dev/null || { fail "$tool is not installed"; finish; }
done

version=$(cat VERSION)
arch=$(dpkg --print-architecture)

# Idempotent: leftovers of an earlier run go first.
if dpkg-query -W -f='${Status}' swinetd 2>/dev/null | grep -qv 'not-installed'; then
    echo "note: purging an installed swinetd first"
    timeout 120 dpkg -P swinetd >/dev/null
fi

# --- Build ------------------------------------------------------------------------------------
deb=${DEB:-dist/swinetd_${version}_${arch}.deb}
if [ -z "${DEB:-}" ]; then
    rm -f "$deb"
    started=$SECONDS
    if timeout 1200 make --no-print-directory deb ${SCRATCH:+SCRATCH="$SCRATCH"} >"$scratch/build.log" 2>&1; then
        ok "make deb built $deb in $((SECONDS - started)) s"
    else
        fail "make deb failed; the end of its output:"
        tail -n 30 "$scratch/build.log" | sed 's/^/    /'
        finish
    fi
fi
[ -f "$deb" ] || { fail "$deb does not exist"; finish; }

# --- The package as built ---------------------------------------------------------------------
field() { dpkg-deb -f "$deb" "$1"; }
check "Package: swinetd" test "$(field Package)" = swinetd
check "Version: $version" test "$(field Version)" = "$version"
check "Architecture: $arch" test "$(field Architecture)" = "$arch"
check "Provides: inet-superserver" test "$(field Provides)" = inet-superserver
check "no Conflicts or Replaces" test -z "$(field Conflicts)$(field Replaces)"
depends=$(field Depends)
check "Depends names libc6 ($depends)" grep -q 'libc6' <<<"$depends"
dpkg-deb --ctrl-tarfile "$deb" | tar -tf - >"$scratch/control-files"
for member in control md5sums conffiles postinst prerm postrm; do
    check "control member $member" grep -qx "\./$member" "$scratch/control-files"
done
dpkg-deb -I "$deb" conffiles >"$scratch/conffiles" 2>/dev/null
check "conffiles lists /etc/swinetd.conf" grep -qx /etc/swinetd.conf "$scratch/conffiles"
dpkg-deb -c "$deb" | awk '{print $1, $2, $NF}' >"$scratch/contents"
check "every file is owned by root:root" bash -c "! awk '\$2 != \"root/root\"' '$scratch/contents' | grep -q ."

# --- Install ----------------------------------------------------------------------------------
if timeout 300 dpkg -i "$deb" >"$scratch/install.log" 2>&1; then
    ok "dpkg -i $deb"
else
    fail "dpkg -i failed:"
    sed 's/^/    /' "$scratch/install.log"
    finish
fi
check "dpkg says installed" test "$(dpkg-query -W -f='${Status}' swinetd)" = "install ok installed"

files=(
    /usr/sbin/swinetd
    /usr/share/man/man8/swinetd.8.gz
    /usr/share/man/man5/swinetd.conf.5.gz
    /lib/systemd/system/swinetd.service
    /etc/swinetd.conf
    /usr/share/bash-completion/completions/swinetd
    /usr/share/zsh/vendor-completions/_swinetd
    /usr/share/fish/vendor_completions.d/swinetd.fish
    /usr/share/doc/swinetd/copyright
    /usr/share/doc/swinetd/MIGRATING.md
)
for file in "${files[@]}"; do
    check "installed $file" test -s "$file"
done
check "/usr/sbin/swinetd is executable" test -x /usr/sbin/swinetd
check "swinetd --version is $version" test "$(/usr/sbin/swinetd --version)" = "$version"
check "the unit runs /usr/sbin/swinetd --foreground -f /etc/swinetd.conf" \
    grep -qx 'ExecStart=/usr/sbin/swinetd --foreground -f /etc/swinetd.conf' /lib/systemd/system/swinetd.service
check "the unit is Type=notify" grep -qx 'Type=notify' /lib/systemd/system/swinetd.service
check "bash completion script defines a completion for swinetd" grep -q 'complete .*swinetd' \
    /usr/share/bash-completion/completions/swinetd
if command -v man >/dev/null && man --version >/dev/null 2>&1; then
    check "man -w swinetd finds the installed page" bash -c 'man -w swinetd | grep -q /usr/share/man/man8/swinetd.8.gz'
    check "man -w 5 swinetd.conf finds the installed page" bash -c 'man -w 5 swinetd.conf | grep -q man5/swinetd.conf.5.gz'
fi
if command -v systemd-analyze >/dev/null; then
    if timeout 60 systemd-analyze verify /lib/systemd/system/swinetd.service >"$scratch/verify" 2>&1; then
        ok "systemd-analyze verify accepts the unit"
    else
        fail "systemd-analyze verify:"
        sed 's/^/    /' "$scratch/verify"
    fi
fi
if command -v deb-systemd-helper >/dev/null; then
    check "postinst enabled the unit (multi-user.target.wants link)" \
        test -L /etc/systemd/system/multi-user.target.wants/swinetd.service
fi

# --- The shipped configuration ----------------------------------------------------------------
if timeout 30 /usr/sbin/swinetd check -f /etc/swinetd.conf >"$scratch/check" 2>&1; then
    ok "swinetd check -f /etc/swinetd.conf: $(tail -n 1 "$scratch/check")"
else
    fail "swinetd check -f /etc/swinetd.conf:"
    sed 's/^/    /' "$scratch/check"
fi
check "the shipped configuration enables nothing" grep -q '^0 services' "$scratch/check"
# Its commented builtin examples are valid when uncommented.
sed -n 's/^#\([a-z0-9.:]*[[:space:]].*[[:space:]]internal\)/\1/p' /etc/swinetd.conf >"$scratch/builtins.conf"
if [ -s "$scratch/builtins.conf" ] \
    && timeout 30 /usr/sbin/swinetd check --quiet -f "$scratch/builtins.conf" >"$scratch/check" 2>&1; then
    ok "the example's builtin entries check clean: $(tail -n 1 "$scratch/check")"
else
    fail "the example's builtin entries:"
    sed 's/^/    /' "$scratch/check"
fi

# --- Run the installed daemon -----------------------------------------------------------------
free_ports() {
    python3 - 2>/dev/null <<'EOF' || echo "$((20000 + RANDOM % 20000)) $((40000 + RANDOM % 20000))"
import socket
held = []
for _ in range(2):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
EOF
}
read -r echo_port env_port < <(free_ports)
cat >"$scratch/tiny.conf" <<EOF
127.0.0.1:$echo_port  stream  tcp4  nowait  nobody  internal  echo
127.0.0.1:$env_port   stream  tcp4  nowait  nobody  /usr/bin/env  env
EOF
/usr/sbin/swinetd --foreground -f "$scratch/tiny.conf" --dump-file "$scratch/dump" \
    >"$scratch/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do
    [ "$(grep -c 'listening on' "$scratch/daemon.log")" -ge 2 ] && break
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
done
if [ "$(grep -c 'listening on' "$scratch/daemon.log")" -ge 2 ]; then
    ok "swinetd --foreground listens on 127.0.0.1:$echo_port and :$env_port"
else
    fail "swinetd did not start listening; its log:"
    sed 's/^/    /' "$scratch/daemon.log"
fi

reply=$(timeout 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$echo_port; printf 'hello swinetd\n' >&3; IFS= read -r line <&3; printf '%s' \"\$line\"" 2>&1)
check "echo builtin answers (got '$reply')" test "$reply" = "hello swinetd"

timeout 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$env_port; cat <&3" >"$scratch/env" 2>&1
check "a spawned child gets TCPREMOTEIP=127.0.0.1" grep -qx 'TCPREMOTEIP=127.0.0.1' "$scratch/env"
check "a spawned child gets TCPLOCALPORT=$env_port" grep -qx "TCPLOCALPORT=$env_port" "$scratch/env"
check "a spawned child gets PROTO=TCP" grep -qx 'PROTO=TCP' "$scratch/env"
check "a spawned child gets the clean PATH" \
    grep -qx 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "$scratch/env"

for _ in $(seq 50); do grep -q 'EXIT: ' "$scratch/daemon.log" && break; sleep 0.1; done
check "the log has a START: line for the child" grep -q "START: $env_port pid=" "$scratch/daemon.log"
check "the log has an EXIT: line with its status" grep -q "EXIT: $env_port status=0" "$scratch/daemon.log"

kill -USR1 "$daemon_pid" 2>/dev/null
for _ in $(seq 50); do [ -s "$scratch/dump" ] && break; sleep 0.1; done
check "SIGUSR1 writes the state dump" grep -q "^service " "$scratch/dump"

kill -HUP "$daemon_pid" 2>/dev/null
for _ in $(seq 50); do grep -q 'reloaded' "$scratch/daemon.log" && break; sleep 0.1; done
check "SIGHUP reloads" grep -q 'reloaded 2 services' "$scratch/daemon.log"

kill -TERM "$daemon_pid" 2>/dev/null
status=timeout
for _ in $(seq 100); do
    if ! kill -0 "$daemon_pid" 2>/dev/null; then
        wait "$daemon_pid"
        status=$?
        break
    fi
    sleep 0.1
done
check "SIGTERM stops it with status 0 (status: $status)" test "$status" = 0
[ "$status" = timeout ] || daemon_pid=

# --- Remove, then purge -----------------------------------------------------------------------
if timeout 120 dpkg -r swinetd >"$scratch/remove.log" 2>&1; then
    ok "dpkg -r swinetd"
else
    fail "dpkg -r swinetd:"
    sed 's/^/    /' "$scratch/remove.log"
fi
for file in "${files[@]}"; do
    [ "$file" = /etc/swinetd.conf ] && continue
    check "removed $file" test ! -e "$file"
done
check "no /usr/share/doc/swinetd left" test ! -e /usr/share/doc/swinetd
check "the conffile /etc/swinetd.conf stays until purge" test -f /etc/swinetd.conf
check "dpkg says config-files" test "$(dpkg-query -W -f='${Status}' swinetd 2>/dev/null)" = "deinstall ok config-files"

if timeout 120 dpkg -P swinetd >"$scratch/purge.log" 2>&1; then
    ok "dpkg -P swinetd"
else
    fail "dpkg -P swinetd:"
    sed 's/^/    /' "$scratch/purge.log"
fi
check "purge removed /etc/swinetd.conf" test ! -e /etc/swinetd.conf
check "dpkg no longer knows swinetd" \
    bash -c "! dpkg-query -W -f='\${Status}' swinetd 2>/dev/null | grep -q 'installed\|config-files'"
leftovers=$(find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled \
    /var/lib/systemd/deb-systemd-helper-masked -name 'swinetd*' 2>/dev/null)
check "no enable or mask links left${leftovers:+: $leftovers}" test -z "$leftovers"

finish
