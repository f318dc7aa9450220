#!/bin/sh
# Runs a command with a /dev/log that the test reads. Start it under `unshare -m` (a private
# mount namespace): it builds DIR/dev with the device nodes a daemon needs (bind mounts of the
# real ones) and a syslog socket served by syslog_sink.py, mounts that over /dev, and execs the
# command. Every syslog message becomes one line of DIR/syslog.txt; the sink ends by itself
# (syslog_sink.py). Nothing outside the namespace changes.
#
# usage: with_syslog.sh DIR COMMAND [ARGS...]      exit 90: setup failed
set -u
dir=$1
shift
mkdir -p "$dir/dev" || exit 90
for node in null zero random urandom; do
    : >"$dir/dev/$node" && mount --bind "/dev/$node" "$dir/dev/$node" || exit 90
done
/usr/bin/python3 "$(dirname "$0")/syslog_sink.py" "$dir/dev/log" "$dir/syslog.txt" 30 &
i=0
until [ -S "$dir/dev/log" ]; do
    i=$((i + 1))
    [ $i -gt 200 ] && exit 90
    sleep 0.02
done
mount --rbind "$dir/dev" /dev || exit 90
exec "$@"
