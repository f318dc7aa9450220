#!/bin/sh
# Builds the libFuzzer targets out of tree: a snapshot of Sources/SwinetdCore and Sources/CSwinetd
# (so concurrent edits cannot change a build half-way), swift-log from the package checkout, and
# Fuzz/FuzzEntry.swift, compiled as ONE Swift module with -sanitize=fuzzer,address. Nothing is
# added to Package.swift and nothing in Sources is changed.
#
# usage: Fuzz/build.sh [TARGET...]     TARGET: inetd xinetd hosts proxy tcpmux (default: all)
# output: $OUT/fuzz-TARGET (OUT defaults to .build-fuzz in the repository)
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${OUT:-$ROOT/.build-fuzz}
TARGETS=${*:-inetd xinetd hosts proxy tcpmux}
LOG_SRC=""
for candidate in .build-rel5 .build .build-tests; do
    if [ -d "$candidate/checkouts/swift-log/Sources/Logging" ]; then LOG_SRC=$ROOT/$candidate/checkouts/swift-log/Sources/Logging; break; fi
done
[ -n "$LOG_SRC" ] || { echo "swift-log checkout not found: run swift build first" >&2; exit 1; }

mkdir -p "$OUT/src" "$OUT/mods" "$OUT/cmod" "$OUT/obj"
rm -rf "$OUT/src/SwinetdCore" "$OUT/src/CSwinetd"
cp -R Sources/SwinetdCore Sources/CSwinetd "$OUT/src/"
git rev-parse HEAD > "$OUT/src/COMMIT" 2>/dev/null || true
git status --porcelain Sources > "$OUT/src/DIRTY" 2>/dev/null || true

# C shim: no sanitizer (the spawn child runs on a private stack inside the parent's memory after
# clone(CLONE_VM|CLONE_VFORK); ASan's shadow writes there would corrupt the parent's).
for c in "$OUT"/src/CSwinetd/*.c; do
    clang -c -O1 -g -fPIC -I "$OUT/src/CSwinetd/include" "$c" -o "$OUT/obj/$(basename "$c" .c).o"
done
cat > "$OUT/cmod/module.modulemap" <<MAP
module CSwinetd {
    header "$OUT/src/CSwinetd/include/CSwinetd.h"
    export *
}
MAP

# swift-log, as a plain module (not instrumented: it is not under test).
if [ ! -f "$OUT/obj/Logging.o" ] || [ "$LOG_SRC" -nt "$OUT/obj/Logging.o" ]; then
    swiftc -parse-as-library -module-name Logging -package-name swift_log -wmo -O -c $(find "$LOG_SRC" -name '*.swift') \
        -emit-module -emit-module-path "$OUT/mods/Logging.swiftmodule" -o "$OUT/obj/Logging.o"
fi

CORE=$(find "$OUT/src/SwinetdCore" -name '*.swift' | sort)
for target in $TARGETS; do
    flag=$(echo "FUZZ_$target" | tr '[:lower:]' '[:upper:]')
    echo "building fuzz-$target" >&2
    swiftc -sanitize=fuzzer,address -parse-as-library -module-name SwinetdFuzz -swift-version 6 \
        -enable-upcoming-feature ExistentialAny -enable-upcoming-feature MemberImportVisibility \
        -O -g -D "$flag" -I "$OUT/mods" -I "$OUT/cmod" \
        $CORE Fuzz/FuzzEntry.swift "$OUT/obj/Logging.o" "$OUT"/obj/spawn.o "$OUT"/obj/syscalls.o \
        -o "$OUT/fuzz-$target"
done
ls -la "$OUT"/fuzz-* >&2
