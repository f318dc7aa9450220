#!/usr/bin/env bash
# Checks the manual pages: they render with groff (and man-db's man -l, when installed) without a
# single warning, whatis can read their NAME lines, their version matches VERSION, and they
# document every command-line option of the built binary (when one is found) and every xinetd
# attribute the parser knows.
#
# Usage: bash Tests/packaging/test-man.sh        (SWINETD=path/to/swinetd to name the binary)
# Needs groff (Debian: groff-base). Ends with "N passed, N failed"; exits 1 on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

pages=(man/swinetd.8 man/swinetd.conf.5)
version=$(cat VERSION 2>/dev/null || echo unknown)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

if ! command -v groff >/dev/null; then
    fail "groff is not installed (apt-get install groff-base)"
    finish
fi

for page in "${pages[@]}"; do
    if [ ! -s "$page" ]; then
        fail "$page is missing"
        continue
    fi

    # 1. groff with every warning enabled: any output on stderr is a failure.
    if groff -man -Tutf8 -ww -z "$page" 2>"$scratch/warnings" && [ ! -s "$scratch/warnings" ]; then
        ok "$page: groff -man -Tutf8 -ww renders without warnings"
    else
        fail "$page: groff warnings:"
        sed 's/^/    /' "$scratch/warnings"
    fi

    # 2. The rendered text has the sections a manual page needs and no roff left over.
    groff -man -Tutf8 -P-c -P-b -P-u "$page" >"$scratch/text" 2>/dev/null
    missing=
    for section in NAME SYNOPSIS DESCRIPTION FILES "SEE ALSO"; do
        grep -q "^$section\$" "$scratch/text" || missing="$missing $section"
    done
    if [ -z "$missing" ]; then
        ok "$page: has NAME, SYNOPSIS, DESCRIPTION, FILES and SEE ALSO"
    else
        fail "$page: sections missing:$missing"
    fi
    if grep -nE '^\.[A-Za-z]|\\f[BIRP]|\\-' "$scratch/text" >"$scratch/leftover"; then
        fail "$page: unrendered roff in the output:"
        sed 's/^/    /' "$scratch/leftover" | head -n 5
    else
        ok "$page: no unrendered roff in the output"
    fi

    # 3. The version in the title line is VERSION's.
    if grep -q "^\.TH .*\"swinetd $version\"" "$page"; then
        ok "$page: title line names swinetd $version"
    else
        fail "$page: .TH does not name \"swinetd $version\" (VERSION file)"
    fi

    # 4. man-db, as an admin reads it, also without warnings; lexgrog reads the NAME line for whatis.
    if command -v man >/dev/null && man --version >/dev/null 2>&1; then
        if MANWIDTH=80 man --warnings -l "$page" >"$scratch/man" 2>"$scratch/warnings" \
            && [ ! -s "$scratch/warnings" ] && [ -s "$scratch/man" ]; then
            ok "$page: man -l renders without warnings"
        else
            fail "$page: man -l:"
            sed 's/^/    /' "$scratch/warnings"
        fi
        if command -v lexgrog >/dev/null; then
            if lexgrog "$page" 2>&1 | grep -q ' - '; then
                ok "$page: whatis entry: $(lexgrog "$page" 2>/dev/null | sed 's/^[^"]*"//; s/"$//')"
            else
                fail "$page: lexgrog cannot parse the NAME section"
            fi
        fi
    else
        echo "note: man-db is not installed; man -l skipped"
    fi
done

# 5. Every option of the built binary is in swinetd(8). The binary is found in the usual build
#    folders; without one this check is skipped (CI builds before it runs this script).
binary=${SWINETD:-}
if [ -z "$binary" ]; then
    binary=$(ls -t .build/release/swinetd .build/debug/swinetd \
        .build/*/release/swinetd .build/*/debug/swinetd 2>/dev/null | head -n 1)
fi
if [ -n "$binary" ] && [ -x "$binary" ]; then
    undocumented=
    checked=0
    # The subcommands the binary has, from its --help ("  run (default)  Run the daemon.").
    commands=$("$binary" --help 2>/dev/null | sed -n '/^SUBCOMMANDS:/,/^$/p' | sed -n 's/^  \([a-z][a-z-]*\).*/\1/p')
    for command in $commands; do
        "$binary" "$command" --help >"$scratch/help" 2>/dev/null || continue
        grep -q "^\.B $command\$\|^\.B $command " man/swinetd.8 \
            || undocumented="$undocumented $command(command)"
        for option in $(grep -oE '(^|[ ,])--[a-z][a-z0-9-]*' "$scratch/help" | sed 's/^[ ,]*//' | sort -u); do
            [ "$option" = --help ] || [ "$option" = --version ] && continue
            checked=$((checked + 1))
            grep -qF -- "$(printf '%s' "$option" | sed 's/-/\\-/g')" man/swinetd.8 \
                || undocumented="$undocumented $command $option;"
        done
    done
    if [ "$checked" -eq 0 ]; then
        fail "$binary: no options found in its --help"
    elif [ -z "$undocumented" ]; then
        ok "swinetd(8) documents all $checked options of $binary"
    else
        fail "swinetd(8) lacks:$undocumented"
    fi
    binary_version=$("$binary" --version 2>/dev/null)
    if [ "$binary_version" = "$version" ]; then
        ok "$binary --version is $version, as VERSION"
    else
        fail "$binary --version says '$binary_version', VERSION says '$version'"
    fi
else
    echo "note: no built swinetd found (set SWINETD=path); the option check is skipped"
fi

# 6. Every xinetd attribute and flag the parser accepts is in swinetd.conf(5).
parser=Sources/SwinetdCore/Config/XinetdConfParser.swift
if [ -f "$parser" ]; then
    words=$(awk '/static let (serviceAttributes|allowedInDefaults|knownFlags|knownTypes)/,/\]/' "$parser" \
        | grep -oE '"[A-Za-z0-9_]+"' | tr -d '"' | sort -u)
    undocumented=
    count=0
    for word in $words; do
        count=$((count + 1))
        grep -qE "(^|[ (\"])$word([ ,).]|$)" man/swinetd.conf.5 || undocumented="$undocumented $word"
    done
    if [ "$count" -eq 0 ]; then
        fail "found no attribute lists in $parser"
    elif [ -z "$undocumented" ]; then
        ok "swinetd.conf(5) documents all $count xinetd attributes, flags and types"
    else
        fail "swinetd.conf(5) lacks:$undocumented"
    fi
else
    echo "note: $parser not found; the attribute check is skipped"
fi

finish
